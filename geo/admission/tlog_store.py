"""The waitlist's transparency log on the database: one global log over every centre's chain rows, its sequencer,
signed checkpoints, proofs, witness cosignatures and parents' receipts (the math and formats: ``geo.admission.tlog``).

Sequencing (as Trillian's): a trigger queues each chain row in ``waitlist_log_pending`` in the writer's own
transaction; ``integrate`` (after the write commits, from the public feed and from ``dolbom waitlist checkpoint``)
gives the committed rows their log indexes in the order it finds them, under one global advisory lock that no
request's write transaction ever waits on. It stores the hash of every full subtree, so a root or a proof reads
O(log n) stored hashes in one query instead of rehashing the log.

A log entry is ``tlog.entry_bytes(centre code, chain seq, event)``: the event is opaque here.
"""

from __future__ import annotations

import base64
import os
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from geo.admission import tlog
from geo.errors import InvalidQuery, NotFound
from geo.settings import Settings

LOG_LOCK = (7011, 1)  # advisory lock of the sequencer (one for the whole log)
BATCH = 5000  # chain rows integrated per round


# --- keys -------------------------------------------------------------------------------------------------------

_keys_lock = threading.Lock()


def development_key_file(settings: Settings) -> Path:
    """Where the development signing key lives when DOLBOM_LOG_KEY_FILE is unset."""
    return settings.local.data_dir / "waitlist-log.key"


def write_key(path: Path, name: str) -> tlog.Signer:
    """A new signing key named ``name``, written to ``path`` (mode 0600); refuses to overwrite one
    (``FileExistsError``). The key appears whole or not at all: it is written to a temporary file that is then
    linked to ``path``, so a process reading ``path`` meanwhile never sees it half written."""
    signer = tlog.Signer.generate(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(signer.text() + "\n")
        os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return signer


def signers(settings: Settings) -> list[tlog.Signer]:
    """The log's signing keys: DOLBOM_LOG_KEY_FILE (in development, unset: a key made on first use) and the
    DOLBOM_LOG_EXTRA_KEY_FILES of a key rotation. Every key must be named as the log's origin."""
    files = [settings.log.key_file] if settings.log.key_file else []
    files += [Path(f.strip()) for f in settings.log.extra_key_files.split(",") if f.strip()]
    found = []
    with _keys_lock:
        if settings.log.key_file is None:
            path = development_key_file(settings)
            if not path.exists():
                try:
                    write_key(path, settings.log.origin)
                except FileExistsError:
                    pass  # another process made it at the same moment: that one is the key
            files.insert(0, path)
        for path in files:
            try:
                signer = tlog.parse_signer(Path(path).read_text(encoding="ascii"))
            except OSError as exc:
                raise InvalidQuery(f"cannot read the log's signing key {path}: {exc.strerror}") from None
            if signer.name != settings.log.origin:
                raise InvalidQuery(f"signing key {path} is named {signer.name!r}, not the log's origin "
                                   f"{settings.log.origin!r}")
            found.append(signer)
    return found


def verifier_keys(settings: Settings) -> list[str]:
    """The verifier keys of the log (publish them; a watcher pins one)."""
    return [s.verifier.text() for s in signers(settings)]


def witness_verifiers(settings: Settings) -> list[tlog.Verifier]:
    """The configured witnesses' cosignature keys."""
    found = [tlog.parse_verifier(k) for k in settings.log.witness_keys.split(",") if k.strip()]
    for verifier in found:
        if verifier.sig_type != tlog.COSIGNATURE_V1:
            raise InvalidQuery(f"witness key {verifier.name} is not a cosignature/v1 key")
    return found


# --- sequencing -------------------------------------------------------------------------------------------------


def _read_hashes(conn: Connection, coords: Iterable[tlog.Coordinate]) -> dict[tlog.Coordinate, bytes]:
    wanted = list(dict.fromkeys(coords))
    if not wanted:
        return {}
    rows = conn.execute(text("""
        SELECT h.level, h.idx, h.hash FROM unnest(CAST(:l AS smallint[]), CAST(:i AS bigint[])) AS k(level, idx)
        JOIN waitlist_log_hashes h ON h.level = k.level AND h.idx = k.idx
    """), {"l": [c[0] for c in wanted], "i": [c[1] for c in wanted]}).all()
    return {(r.level, r.idx): bytes(r.hash) for r in rows}


def _dict_reader(known: dict[tlog.Coordinate, bytes]) -> tlog.HashReader:
    def read(level: int, index: int) -> bytes:
        return known[(level, index)]

    return read


def log_size(conn: Connection) -> int:
    """The number of entries integrated so far."""
    return int(conn.execute(text("SELECT COALESCE(max(idx) + 1, 0) FROM waitlist_log_leaves")).scalar_one())


def integrate(conn: Connection, *, wait: bool = True) -> int | None:
    """Give the committed, queued chain rows their log indexes and store the hashes they complete; the new
    size. With ``wait=False``: None at once when another sequencer holds the lock."""
    done = _integrate(conn, wait=wait)
    return None if done is None else done[0]


def _integrate(conn: Connection, *, wait: bool) -> tuple[int, bytes | None] | None:
    """``integrate``, with the new root when entries were added (computed from the hashes at hand and the
    stored ones read with the siblings, in the same query), else None. Few round trips: one runs per write."""
    if wait:
        conn.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": LOG_LOCK[0], "b": LOG_LOCK[1]})
    elif not conn.execute(text("SELECT pg_try_advisory_xact_lock(:a, :b)"),
                          {"a": LOG_LOCK[0], "b": LOG_LOCK[1]}).scalar_one():
        return None
    size = log_size(conn)
    root = None
    while True:
        rows = conn.execute(text("""
            SELECT p.id, p.facility_id, p.seq, c.event, f.code FROM waitlist_log_pending p
            LEFT JOIN waitlist_chain c ON c.facility_id = p.facility_id AND c.seq = p.seq
            LEFT JOIN facilities f ON f.id = p.facility_id
            ORDER BY p.id LIMIT :n
        """), {"n": BATCH}).all()
        if not rows:
            return size, root
        live = [r for r in rows if r.event is not None]  # a chain row deleted with its centre is not logged
        new_size = size + len(live)
        stored = [c for i in range(size, new_size) for c in tlog.appended_sibling_coordinates(i)]
        stored += tlog.coordinates(lambda read, n=new_size: tlog.tree_hash(n, read))  # type: ignore[misc]
        known = _read_hashes(conn, (c for c in stored if (c[1] + 1) << c[0] <= size))
        read = _dict_reader(known)
        leaves: dict[str, list[Any]] = {"i": [], "f": [], "s": [], "h": []}
        hashes: dict[str, list[Any]] = {"l": [], "i": [], "h": []}
        for index, r in zip(range(size, new_size), live, strict=True):
            leaf = tlog.leaf_hash(tlog.entry_bytes(r.code, r.seq, r.event))
            for level, i, h in tlog.stored_hashes_for(index, leaf, read):
                known[(level, i)] = h
                for k, v in zip("lih", (level, i, h), strict=True):
                    hashes[k].append(v)
            for k, v in zip("ifsh", (index, r.facility_id, r.seq, leaf), strict=True):
                leaves[k].append(v)
        conn.execute(text("""
            WITH leaves AS (
                INSERT INTO waitlist_log_leaves (idx, facility_id, seq, leaf_hash)
                SELECT * FROM unnest(CAST(:i AS bigint[]), CAST(:f AS int[]), CAST(:s AS int[]), CAST(:h AS bytea[]))
            ), hashes AS (
                INSERT INTO waitlist_log_hashes (level, idx, hash)
                SELECT * FROM unnest(CAST(:hl AS smallint[]), CAST(:hi AS bigint[]), CAST(:hh AS bytea[]))
            )
            DELETE FROM waitlist_log_pending WHERE id = ANY(:ids)
        """), {**leaves, "hl": hashes["l"], "hi": hashes["i"], "hh": hashes["h"], "ids": [r.id for r in rows]})
        size = new_size
        root = tlog.tree_hash(size, read) if live else root
        if len(rows) < BATCH:
            return size, root


# --- roots, proofs, entries -------------------------------------------------------------------------------------


def _computed(conn: Connection, compute: Any) -> Any:
    """Run a stored-hash computation after fetching every hash it reads in one query."""
    return compute(_dict_reader(_read_hashes(conn, tlog.coordinates(compute))))


def root_hash(conn: Connection, size: int) -> bytes:
    """The tree hash of the first ``size`` entries."""
    _check_size(conn, size)
    return bytes(_computed(conn, lambda read: tlog.tree_hash(size, read)))


def _check_size(conn: Connection, size: int) -> None:
    current = log_size(conn)
    if not 0 <= size <= current:
        raise NotFound(f"the log has {current} entries, not {size}", param="size", value=size)


def inclusion_proof(conn: Connection, *, index: int, size: int) -> list[bytes]:
    """The inclusion proof of entry ``index`` in the tree of ``size`` entries."""
    _check_size(conn, size)
    if not 0 <= index < size:
        raise InvalidQuery(f"entry {index} is not in a tree of {size}", param="index", value=index)
    return list(_computed(conn, lambda read: tlog.inclusion_proof(index, size, read)))


def consistency_proof(conn: Connection, *, old_size: int, new_size: int) -> list[bytes]:
    """The proof that the tree of ``new_size`` entries extends the tree of ``old_size``."""
    _check_size(conn, new_size)
    if not 0 <= old_size <= new_size:
        raise InvalidQuery(f"no consistency proof from {old_size} to {new_size}", param="old", value=old_size)
    return list(_computed(conn, lambda read: tlog.consistency_proof(old_size, new_size, read)))


def entries(conn: Connection, *, start: int, end: int) -> list[dict[str, Any]]:
    """Entries ``[start, end)`` of the log: index, centre, chain seq and the event (read from the chain, so an
    edited chain shows: its bytes no longer hash to the logged leaf; a deleted one is served as nulls)."""
    rows = conn.execute(text("""
        SELECT l.idx, f.code, l.seq, c.event FROM waitlist_log_leaves l
        LEFT JOIN facilities f ON f.id = l.facility_id
        LEFT JOIN waitlist_chain c ON c.facility_id = l.facility_id AND c.seq = l.seq
        WHERE l.idx >= :s AND l.idx < :e ORDER BY l.idx
    """), {"s": start, "e": end}).all()
    return [{"index": r.idx, "centre": r.code, "seq": r.seq, "event": r.event} for r in rows]


# --- checkpoints ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedCheckpoint:
    """A checkpoint as published: size, root, the signed note with any cosignatures, and when."""

    size: int
    root_hash: bytes
    note: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"size": self.size, "root_hash": base64.b64encode(self.root_hash).decode(), "note": self.note,
                "created_at": self.created_at}


def _with_cosignatures(conn: Connection, size: int, note: str) -> str:
    lines = conn.execute(text("SELECT line FROM waitlist_log_cosignatures WHERE size = :s ORDER BY witness"),
                         {"s": size}).scalars().all()
    return tlog.add_signatures(note, lines)


def latest_checkpoint(conn: Connection) -> PublishedCheckpoint | None:
    """The newest published checkpoint (with its cosignatures), if any."""
    row = conn.execute(text("""
        SELECT k.size, k.root_hash, k.note, k.created_at,
               ARRAY(SELECT line FROM waitlist_log_cosignatures s WHERE s.size = k.size ORDER BY witness) AS lines
        FROM waitlist_log_checkpoints k ORDER BY k.size DESC LIMIT 1""")).first()
    if row is None:
        return None
    return PublishedCheckpoint(row.size, bytes(row.root_hash), tlog.add_signatures(row.note, row.lines),
                               row.created_at)


def checkpoint_at(conn: Connection, size: int) -> PublishedCheckpoint:
    """The published checkpoint of ``size`` entries (with its cosignatures)."""
    row = conn.execute(text("SELECT size, root_hash, note, created_at FROM waitlist_log_checkpoints "
                            "WHERE size = :s"), {"s": size}).first()
    if row is None:
        raise NotFound(f"no checkpoint of size {size} was published", param="size", value=size)
    return PublishedCheckpoint(row.size, bytes(row.root_hash), _with_cosignatures(conn, row.size, row.note),
                               row.created_at)


def checkpoints(conn: Connection, *, after: int = -1, limit: int = 100) -> list[PublishedCheckpoint]:
    """Published checkpoints in order of size (the append-only history), those of size above ``after``."""
    rows = conn.execute(text("SELECT size, root_hash, note, created_at FROM waitlist_log_checkpoints "
                             "WHERE size > :a ORDER BY size LIMIT :n"), {"a": after, "n": limit}).all()
    return [PublishedCheckpoint(r.size, bytes(r.root_hash), _with_cosignatures(conn, r.size, r.note), r.created_at)
            for r in rows]


def publish(conn: Connection, settings: Settings, *, wait: bool = True) -> PublishedCheckpoint | None:
    """Integrate what is queued and, when the log grew (or nothing was published yet), sign and store a checkpoint
    of its new size; the latest checkpoint. With ``wait=False`` a busy sequencer is not waited for."""
    done = _integrate(conn, wait=wait)
    if done is None:
        return latest_checkpoint(conn)
    size, root = done
    if root is None:  # nothing new: publish only if this size never was
        latest = latest_checkpoint(conn)
        if latest is not None and latest.size >= size:
            return latest
        root = root_hash(conn, size)
    note = tlog.sign_note(tlog.Checkpoint(settings.log.origin, size, root).text(), signers(settings))
    created = conn.execute(text("INSERT INTO waitlist_log_checkpoints (size, root_hash, note) VALUES (:s, :r, :n) "
                                "RETURNING created_at"), {"s": size, "r": root, "n": note}).scalar_one()
    return PublishedCheckpoint(size, root, note, created)


_publishing = threading.Lock()  # one publication at a time per process: a burst of writes shares the next one
_publish_again = threading.Event()


def publish_after_commit(engine: Engine, settings: Settings) -> None:
    """Integrate and publish in a transaction of its own, after a write committed. Writes of one process that
    commit while a publication runs share the next one (so a burst holds one pool connection for it, not one per
    write); a sequencer busy in another process is not waited for (it, the next write or the feed picks the rows
    up)."""
    _publish_again.set()
    while _publishing.acquire(blocking=False):
        try:
            while _publish_again.is_set():
                _publish_again.clear()
                with engine.begin() as conn:
                    publish(conn, settings, wait=False)
        finally:
            _publishing.release()
        if not _publish_again.is_set():  # set after the last round but before the release: run again
            return


def add_cosignature(conn: Connection, settings: Settings, *, size: int, lines: Sequence[str]) -> PublishedCheckpoint:
    """Store the witnesses' cosignature lines of the checkpoint of ``size`` after verifying each against the
    configured witness keys (a line of an unknown witness, or one that does not verify, is refused)."""
    checkpoint_at(conn, size)  # NotFound when never published
    witnesses = witness_verifiers(settings)
    base = conn.execute(text("SELECT note FROM waitlist_log_checkpoints WHERE size = :s"),
                        {"s": size}).scalar_one()
    for line in lines:
        candidate = tlog.add_signatures(base, [line])
        try:
            _, _, cosigned = tlog.open_note(candidate, [*witnesses, *(s.verifier for s in signers(settings))])
        except tlog.NoteError as exc:
            raise InvalidQuery(str(exc), param="cosignature") from None
        fresh = [c for c in cosigned if c.line == (line if line.endswith("\n") else line + "\n")]
        if not fresh:
            raise InvalidQuery("not a cosignature of a configured witness", param="cosignature")
        conn.execute(text("""INSERT INTO waitlist_log_cosignatures (size, witness, line, signed_at)
                             VALUES (:s, :w, :l, :t)
                             ON CONFLICT (size, witness) DO UPDATE SET line = EXCLUDED.line,
                                 signed_at = EXCLUDED.signed_at
                             WHERE waitlist_log_cosignatures.signed_at < EXCLUDED.signed_at"""),
                     {"s": size, "w": fresh[0].name, "l": fresh[0].line, "t": fresh[0].timestamp})
    return checkpoint_at(conn, size)


# --- receipts ---------------------------------------------------------------------------------------------------


def receipt_text(settings: Settings, *, entry: str, centre: str, seq: int, applied_at: str, leaf: bytes) -> str:
    """The text of an application's receipt: the log's promise to include this leaf (a note, not a checkpoint:
    its second line is not a size)."""
    return (f"{settings.log.origin}\nreceipt/v1\nentry {entry}\ncentre {centre}\nseq {seq}\n"
            f"applied {applied_at}\nleaf {base64.b64encode(leaf).decode()}\n")


def receipt(conn: Connection, settings: Settings, *, entry: str) -> dict[str, Any]:
    """A signed receipt of the application of ``entry`` (written in the same transaction): the note naming the
    entry, its centre, its chain position, the application time and the hash of its log leaf. Its log index
    follows once the sequencer integrates it (``parent_proofs``), as a CT log's signed promise."""
    row = conn.execute(text("""
        SELECT c.seq, c.event, f.code FROM waitlist_entries e
        JOIN waitlist_chain c ON c.facility_id = e.facility_id AND c.event->>'entry' = e.public_id
        JOIN facilities f ON f.id = c.facility_id
        WHERE e.public_id = :e AND c.event->>'type' = 'apply'
        ORDER BY c.seq DESC LIMIT 1
    """), {"e": entry}).first()
    if row is None:
        raise NotFound(f"no application of entry {entry} on the chain", param="entry", value=entry)
    leaf = tlog.leaf_hash(tlog.entry_bytes(row.code, row.seq, row.event))
    applied = str(row.event.get("applied_at") or row.event.get("at"))
    note = tlog.sign_note(receipt_text(settings, entry=entry, centre=row.code, seq=row.seq, applied_at=applied,
                                       leaf=leaf), signers(settings))
    return {"entry": entry, "centre": row.code, "seq": row.seq, "applied_at": applied,
            "leaf_hash": base64.b64encode(leaf).decode(), "note": note}


def parent_proofs(conn: Connection, *, parent_user_id: int) -> dict[str, Any]:
    """The latest checkpoint and, for each chain event about the parent's own entries and for the latest rank
    event of each of their queues that ranks them (``rank_of``: the entry, ``rank``: its position there), its log
    index, its entry bytes' parts and its inclusion proof against that checkpoint (``index`` None: not yet
    integrated). The parent's device recomputes all of it (api/static/tlog.js)."""
    latest = latest_checkpoint(conn)
    size = latest.size if latest else 0
    rows = conn.execute(text("""
        SELECT f.code, c.seq, c.event, l.idx, e.public_id, NULL AS rank_of FROM waitlist_chain c
        JOIN waitlist_entries e ON e.facility_id = c.facility_id AND c.event->>'entry' = e.public_id
        JOIN children ch ON ch.id = e.child_id
        JOIN facilities f ON f.id = c.facility_id
        LEFT JOIN waitlist_log_leaves l ON l.facility_id = c.facility_id AND l.seq = c.seq
        WHERE ch.parent_user_id = :p
        UNION ALL
        SELECT f.code, r.seq, r.event, l.idx, e.public_id, e.public_id AS rank_of FROM waitlist_entries e
        JOIN children ch ON ch.id = e.child_id
        JOIN facilities f ON f.id = e.facility_id
        CROSS JOIN LATERAL (
            SELECT c.seq, c.event FROM waitlist_chain c
            WHERE c.facility_id = e.facility_id AND c.event->>'type' = 'rank' AND c.event->'order' ? e.public_id
            ORDER BY c.seq DESC LIMIT 1) r
        LEFT JOIN waitlist_log_leaves l ON l.facility_id = e.facility_id AND l.seq = r.seq
        WHERE ch.parent_user_id = :p AND e.status IN ('waiting', 'offered')
        ORDER BY 1, 2
    """), {"p": parent_user_id}).all()
    events = []
    for r in rows:
        included = r.idx is not None and r.idx < size
        proof = inclusion_proof(conn, index=r.idx, size=size) if included else []
        item = {"entry": r.public_id, "centre": r.code, "seq": r.seq, "event": r.event,
                "index": r.idx if included else None, "proof": [base64.b64encode(p).decode() for p in proof]}
        if r.rank_of is not None:
            item |= {"rank_of": r.rank_of, "rank": r.event["order"].index(r.rank_of) + 1}
        events.append(item)
    return {"checkpoint": latest.note if latest else None, "size": size, "events": events}
