"""A watcher of a dolbom waitlist log that a parents' association or a newspaper runs on its own machine: it needs
the server's URL, the log's verifier key and a folder of its own, and nothing of the server but its public feed.

Each run fetches the latest checkpoint and checks, keeping its own copy of every checkpoint and entry it accepted:

- the signature, by a pinned log key (a checkpoint that no pinned key signed is refused);
- that the log only grew: the checkpoint of the size it holds has the root it holds, and a larger one comes with a
  consistency proof from it (otherwise: a fork, two histories signed by the same log);
- that every entry it holds is served unchanged (otherwise: a rewrite), and that its entries hash to the signed
  root (otherwise the server signs a tree it does not show);
- that the log's rank events follow from the log (``geo.watch.ranks.rank_mismatches``).

Alarms are lines of text. The copy moves on only with a log that verifies (signature, consistency, unchanged
entries, root), so an alarm about the log repeats until someone looks; rank alarms repeat anyway, since every run
re-checks the whole log. Imports nothing from the server's code but the pure log formats (``geo.admission.tlog``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from geo.admission import tlog
from geo.watch.ranks import LoggedEvent, rank_mismatches

PAGE = 1000


@dataclass
class Report:
    """What one run found: alarms (empty when all is well) and notes."""

    alarms: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No alarm."""
        return not self.alarms


class FeedError(RuntimeError):
    """The feed could not be read (network, HTTP error): no statement about the log."""


@dataclass
class State:
    """The watcher's own copy: the last accepted checkpoint note and every entry up to its size."""

    folder: Path

    @property
    def checkpoint_file(self) -> Path:
        """The last accepted checkpoint (a signed note)."""
        return self.folder / "checkpoint"

    @property
    def entries_file(self) -> Path:
        """Accepted entries, one JSON object per line, in log order."""
        return self.folder / "entries.jsonl"

    def load(self) -> tuple[str | None, list[dict[str, Any]]]:
        """The held checkpoint note and entries."""
        note = self.checkpoint_file.read_text(encoding="utf-8") if self.checkpoint_file.exists() else None
        entries = []
        if self.entries_file.exists():
            entries = [json.loads(line) for line in self.entries_file.read_text(encoding="utf-8").splitlines()
                       if line.strip()]
        return note, entries

    def save(self, note: str, entries: Sequence[dict[str, Any]]) -> None:
        """Replace the held copy (after a run without alarms); the previous checkpoints stay in history.txt."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.entries_file.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries),
                       encoding="utf-8")
        tmp.replace(self.entries_file)
        with (self.folder / "history.txt").open("a", encoding="utf-8") as history:
            history.write(note + "\n")
        tmp = self.checkpoint_file.with_suffix(".tmp")
        tmp.write_text(note, encoding="utf-8")
        tmp.replace(self.checkpoint_file)


def _leaf(entry: dict[str, Any]) -> bytes:
    return tlog.leaf_hash(tlog.entry_bytes(entry["centre"], entry["seq"], entry["event"]))


def _get(client: httpx.Client, path: str, **params: Any) -> httpx.Response:
    try:
        response = client.get(path, params=params or None)
    except httpx.HTTPError as exc:
        raise FeedError(f"cannot read {path}: {exc}") from None
    if response.status_code != 200:
        raise FeedError(f"{path} answered {response.status_code}: {response.text[:200]}")
    return response


def _entries(client: httpx.Client, start: int, end: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while start + len(out) < end:
        at = start + len(out)
        page = _get(client, "/waitlist/log/entries", start=at, end=min(end, at + PAGE)).json()
        if not page or [e["index"] for e in page] != list(range(at, at + len(page))):
            raise FeedError(f"the feed does not serve entries {at} onwards although its checkpoint holds {end}")
        out.extend({"index": e["index"], "centre": e["centre"], "seq": e["seq"], "event": e["event"]} for e in page)
    return out


def watch(client: httpx.Client, state: State, verifiers: Sequence[tlog.Verifier], *,
          origin: str | None = None) -> Report:
    """One run against the feed ``client`` points at (its base URL); the state moves on only when all is well."""
    report = Report()
    note = _get(client, "/waitlist/log/checkpoint").text
    try:
        checkpoint, signed, cosigned = tlog.open_checkpoint(note, verifiers, origin=origin)
    except tlog.NoteError as exc:
        report.alarms.append(f"bad checkpoint signature: {exc}")
        return report
    report.notes.append(f"checkpoint {checkpoint.size} signed by {', '.join(signed)}"
                        + "".join(f"; cosigned by {c.name} at {c.timestamp}" for c in cosigned))
    held_note, held = state.load()
    old = tlog.open_checkpoint(held_note, verifiers)[0] if held_note else None
    if old is not None:
        if checkpoint.size < old.size:
            report.alarms.append(f"rollback: the log shows {checkpoint.size} entries after it signed {old.size}")
            return report
        if checkpoint.size == old.size and checkpoint.root_hash != old.root_hash:
            report.alarms.append(f"fork: two checkpoints of size {old.size} with different roots")
            return report
        if checkpoint.size > old.size:
            proof = _get(client, "/waitlist/log/proof/consistency", old=old.size, new=checkpoint.size).json()
            hashes = [base64.b64decode(p) for p in proof["proof"]]
            if not tlog.verify_consistency(old.size, checkpoint.size, old.root_hash, checkpoint.root_hash, hashes):
                report.alarms.append(f"fork: checkpoint {checkpoint.size} does not extend the held checkpoint "
                                     f"{old.size} (no valid consistency proof)")
    served = _entries(client, 0, checkpoint.size)
    for mine, theirs in zip(held, served, strict=False):
        if _leaf(mine) != _leaf(theirs):
            report.alarms.append(f"rewrite: entry {mine['index']} ({mine['centre']} seq {mine['seq']}) changed "
                                 f"since this watcher copied it")
    entries = held + served[len(held):] if old is not None else served
    if tlog.root_of([_leaf(e) for e in served]) != checkpoint.root_hash:
        report.alarms.append(f"the served entries do not hash to the signed root of checkpoint {checkpoint.size}")
    if report.ok:  # the copy moves on with a log that verifies, whatever its rank events say
        state.save(note, entries)
        report.notes.append(f"{len(entries)} entries held, root verified")
    for mismatch in rank_mismatches([LoggedEvent(e["index"], e["centre"], e["seq"], e["event"]) for e in entries]):
        report.alarms.append(f"rank not justified by the log: entry {mismatch.index} ({mismatch.centre}, "
                             f"{mismatch.queue[0]} age {mismatch.queue[1]}): {mismatch.reason}")
    return report


def run(url: str, state_dir: Path, keys: Sequence[str], *, origin: str | None = None,
        timeout_s: float = 30.0) -> int:
    """One run printed for a person or a cron mail: 0 all well, 1 alarms (one ``ALARM:`` line each), 2 the feed
    could not be read or the keys are malformed (nothing said about the log)."""
    try:
        verifiers = [tlog.parse_verifier(k) for k in keys]
    except tlog.NoteError as exc:
        print(f"error: {exc}")
        return 2
    try:
        with httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s) as client:
            report = watch(client, State(state_dir), verifiers, origin=origin)
    except FeedError as exc:
        print(f"error: {exc}")
        return 2
    for line in report.notes:
        print(line)
    for line in report.alarms:
        print(f"ALARM: {line}")
    return 0 if report.ok else 1
