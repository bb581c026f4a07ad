// Checks the waitlist's transparency log on the parent's own device (docs/transparency-log.md), with WebCrypto
// only: SHA-256 for the RFC 6962 / RFC 9162 Merkle proofs and Ed25519 for the C2SP signed-note checkpoint.
// The same rules as geo/admission/tlog.py; no library, nothing fetched but what the page passes in.

const enc = new TextEncoder();

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export function fromBase64(text) {
  const raw = atob(text);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

export function toBase64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export async function leafHash(data) {
  return sha256(concat(Uint8Array.of(0), data));
}

export async function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

// Canonical JSON as Python's json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False).
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

// The bytes of a log entry: {"centre", "seq", "event"} in canonical JSON.
export function entryBytes(centre, seq, event) {
  return enc.encode(canonical({ centre, seq, event }));
}

// RFC 9162 §2.1.3.2: does `proof` lead from `leaf` at `index` to `root` of a tree of `size` leaves?
export async function verifyInclusion(leaf, index, size, proof, root) {
  if (!(index >= 0 && index < size)) return false;
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  return sn === 0n && equal(r, root);
}

// A verifier key "name+hexid+base64(0x01 || Ed25519 public key)".
export async function parseVerifierKey(vkey) {
  const text = vkey.trim();
  const first = text.indexOf("+");
  const second = text.indexOf("+", first + 1);
  if (first < 1 || second < 0) throw new Error("malformed verifier key");
  const [name, id, material] = [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)];
  if (!name || !/^[0-9a-f]{8}$/.test(id)) throw new Error("malformed verifier key");
  const raw = fromBase64(material);
  if (raw.length !== 33 || raw[0] !== 1) throw new Error("not an Ed25519 note key");
  const keyId = (await sha256(concat(enc.encode(`${name}\n`), raw))).slice(0, 4);
  if ([...keyId].map((b) => b.toString(16).padStart(2, "0")).join("") !== id) throw new Error("key ID mismatch");
  const key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
  return { name, keyId, key };
}

// The text of a signed note if a signature line of `verifier` verifies; throws otherwise.
export async function openNote(note, verifier) {
  const cut = note.lastIndexOf("\n\n");
  if (cut < 0) throw new Error("malformed note");
  const text = note.slice(0, cut + 1);
  for (const line of note.slice(cut + 2).split("\n")) {
    if (!line.startsWith("\u2014 ")) continue;
    const [name, blob] = line.slice(2).split(" ");
    if (name !== verifier.name) continue;
    const raw = fromBase64(blob);
    if (!equal(raw.slice(0, 4), verifier.keyId)) continue;
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, verifier.key, raw.slice(4), enc.encode(text));
    if (!ok) throw new Error(`signature of ${name} does not verify`);
    return text;
  }
  throw new Error("no signature of the log's key");
}

// A checkpoint's origin, size and root from its (verified) text.
export function parseCheckpoint(text) {
  const [origin, size, root] = text.split("\n");
  if (!/^(0|[1-9][0-9]*)$/.test(size)) throw new Error("malformed checkpoint");
  return { origin, size: Number(size), root: fromBase64(root) };
}

// The answer of GET /waitlist/log/mine checked against the log's verifier key: each event with `verified` (in the
// signed tree) and, for the latest rank event of each of my queues, `rank` as counted on this device.
export async function checkMine(mine, vkey) {
  const checkpoint = parseCheckpoint(await openNote(mine.checkpoint, await parseVerifierKey(vkey)));
  const out = [];
  for (const e of mine.events) {
    const leaf = await leafHash(entryBytes(e.centre, e.seq, e.event));
    const verified = e.index !== null
      && await verifyInclusion(leaf, e.index, checkpoint.size, e.proof.map(fromBase64), checkpoint.root);
    // A rank event ranking one of my entries: my rank is my position in its order, counted here.
    const rank = e.rank_of ? e.event.order.indexOf(e.rank_of) + 1 : undefined;
    out.push({ ...e, verified, rank });
  }
  return { checkpoint, events: out };
}
