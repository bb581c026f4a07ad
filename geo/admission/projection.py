"""The queue tables as projections of the log: compare them with the replay of each centre's chain (``verify``) and
rebuild them from it (``rebuild``).

What the replay (``geo.admission.replay``) gives per centre, and what is compared with the live tables:

- entries (``waitlist_entries``): the child (its pseudonym at the centre, recomputed from the private key), year,
  age class, application time, preference, status and the time of the last change of status; an entry in the
  tables that the log never applied, or one of the log missing from the tables;
- the priority of every active entry: tier and points as ranking computes them from the live claims, and the
  claims themselves as commitments with their evidence state (named by category, which the operator may see);
- offers (``waitlist_offers``): entry, deadline, status, creation and answer times;
- every served rank and public queue: the live queue of each (year, age class) against the replay's order, and
  the public rows (rank, band, application date, status);
- the log itself: its hash chain and daily heads, events that do not follow from the ones before (``fold``), rank
  events that disagree with the replay (``rank_mismatches``) and rule-table events whose version or SHA-256 is
  not the published file.

Each difference is (``entry``, ``field``, ``expected`` from the log, ``found`` in the tables). Not projected:
``lapse_at`` (a deadline, not a rank: the lapse itself is an event), ``offered_by`` (staff, private), the places
(``facilities.free_by_age``) and notices. Children erased by their parent (``child_records.remove_child``) leave
their events in the log and nothing in the tables: their entries are neither expected nor rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.admission.chain import chain_rows, verify_centre
from geo.admission.events import child_pseudonym, claim_salt, priority_fields, rules_event, secret
from geo.admission.queue import public_rows, queues
from geo.admission.replay import (
    ACTIVE,
    CentreState,
    ReplayEntry,
    commitment,
    fold,
    public_queue,
    rank_mismatches,
)
from geo.admission.rules import Centre, rules_for

ENTRY_FIELDS = ("child", "year", "age_class", "applied_at", "preference", "status", "status_at")
OFFER_FIELDS = ("entry", "deadline", "status", "created_at", "answered_at")


@dataclass(frozen=True)
class Difference:
    """Where the live tables (or a served queue) differ from the log: ``entry`` (an entry id, ``offer <id>``,
    ``link <seq>`` or ``queue <year>/<age>``), ``field``, the value the log gives and the value found."""

    centre: str
    entry: str
    field: str
    expected: Any
    found: Any

    def line(self) -> str:
        """One tab-separated line for the CLI."""
        return f"{self.centre}\t{self.entry}\t{self.field}\texpected {self.expected}\tfound {self.found}"


@dataclass
class _Centre:
    id: int
    code: str
    facility_type: str
    state: CentreState
    events: list[dict[str, Any]]


def _load(conn: Connection, facility_ids: Sequence[int]) -> list[_Centre]:
    out = []
    for f in conn.execute(text("SELECT id, code, facility_type FROM facilities WHERE id = ANY(:f) ORDER BY code"),
                          {"f": list(facility_ids)}):
        events = [r.event for r in chain_rows(conn, f.id)]
        out.append(_Centre(f.id, f.code, f.facility_type, fold(events), events))
    return out


def centres_with_logs(conn: Connection) -> list[int]:
    """Ids of every centre with a log or with entries."""
    return list(conn.execute(text("""SELECT facility_id FROM waitlist_chain GROUP BY facility_id
                                     UNION SELECT facility_id FROM waitlist_entries GROUP BY facility_id
                                     ORDER BY 1""")).scalars())


def _value(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def _live_entries(conn: Connection, facility_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    rows = conn.execute(text("""
        SELECT e.id, e.public_id, e.facility_id, e.child_id, ch.public_id AS child_pid, e.year, e.age_class,
               e.applied_at, e.preference, e.status, e.status_at
        FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id WHERE e.facility_id = ANY(:f)"""),
                        {"f": list(facility_ids)}).mappings().all()
    by: dict[int, dict[str, Any]] = {}
    for r in rows:
        by.setdefault(r["facility_id"], {})[r["public_id"]] = dict(r)
    return by


def _claims_of(conn: Connection, child_ids: Sequence[int]) -> dict[int, list[tuple[str, str, str | None]]]:
    out: dict[int, list[tuple[str, str, str | None]]] = {c: [] for c in child_ids}
    for r in conn.execute(text("SELECT child_id, category, evidence, detail FROM claims WHERE child_id = ANY(:c) "
                               "ORDER BY child_id, category"), {"c": list(child_ids)}):
        out[r.child_id].append((r.category, r.evidence, r.detail))
    return out


def _mapped_children(conn: Connection, facility_ids: Sequence[int]) -> dict[tuple[int, str], tuple[int, str]]:
    """(facility, pseudonym) -> (child id, child public id) from the private map."""
    rows = conn.execute(text("""SELECT p.facility_id, p.pseudonym, ch.id, ch.public_id FROM waitlist_pseudonyms p
                                JOIN children ch ON ch.id = p.child_id WHERE p.facility_id = ANY(:f)"""),
                        {"f": list(facility_ids)}).all()
    return {(r.facility_id, r.pseudonym): (r.id, r.public_id) for r in rows}


def differences(conn: Connection, facility_ids: Sequence[int]) -> list[Difference]:
    """Every difference between the centres' logs and their live tables and served queues (empty when the tables
    are the projection of the logs)."""
    key = secret(conn)
    centres = _load(conn, facility_ids)
    live = _live_entries(conn, facility_ids)
    mapped = _mapped_children(conn, facility_ids)
    claims = _claims_of(conn, sorted({e["child_id"] for by in live.values() for e in by.values()}))
    out: list[Difference] = []
    for c in centres:
        d = _centre_differences(conn, key, c, live.get(c.id, {}), mapped, claims)
        out.extend(d)
    return out


def _centre_differences(conn: Connection, key: bytes, c: _Centre, live: dict[str, dict[str, Any]],
                        mapped: dict[tuple[int, str], tuple[int, str]],
                        claims: dict[int, list[tuple[str, str, str | None]]]) -> list[Difference]:
    out: list[Difference] = []

    def diff(entry: str, field: str, expected: Any, found: Any) -> None:
        out.append(Difference(c.code, entry, field, _value(expected), _value(found)))

    for p in verify_centre(conn, c.id):
        diff(f"link {p.seq}", "chain", "intact", p.reason)
    for lp in c.state.problems:
        diff(f"link {lp.seq}", "event", "follows from the log", lp.reason)
    for m in rank_mismatches(c.events):
        diff(f"link {m.seq}", f"rank {m.position} of queue {m.year}/{m.age_class}", m.expected, m.found)
    for year, logged in sorted(c.state.rules.items()):
        published = rules_event(year)
        for name in ("version", "sha256"):
            if logged[name] != published[name]:
                diff(f"rules {year}", name, published[name], logged[name])
    centre = Centre(c.code, c.facility_type)
    for pid, row in sorted(live.items()):
        r = c.state.entries.get(pid)
        if r is None:
            diff(pid, "entry", "absent from the log", "present")
            continue
        found = {"child": child_pseudonym(key, row["child_pid"], c.id), "year": row["year"],
                 "age_class": row["age_class"], "applied_at": row["applied_at"], "preference": row["preference"],
                 "status": row["status"], "status_at": row["status_at"]}
        for name in ENTRY_FIELDS:
            if getattr(r, name) != found[name]:
                diff(pid, name, getattr(r, name), found[name])
        if r.status in ACTIVE and row["status"] in ACTIVE:
            now = priority_fields(key, rules_for(row["year"]), centre, c.id, row["child_pid"],
                                  claims.get(row["child_id"], []))
            for name in ("tier", "points"):
                if getattr(r, name) != now[name]:
                    diff(pid, name, getattr(r, name), now[name])
            live_claims = {x["commitment"]: x["evidence"] for x in now["claims"]}
            if live_claims != r.claims:
                names = _category_names(key, row["child_pid"], c.id, row["year"])
                for cm in sorted(set(live_claims) | set(r.claims)):
                    if live_claims.get(cm) != r.claims.get(cm):
                        diff(pid, f"claim {names.get(cm, cm[:12])}", r.claims.get(cm, "absent"),
                             live_claims.get(cm, "absent"))
    for pid, r in sorted(c.state.entries.items()):
        if pid not in live and (c.id, r.child) in mapped:
            diff(pid, "entry", "present", "absent")
    out.extend(_offer_differences(conn, c))
    out.extend(_queue_differences(conn, c))
    return out


def _category_names(key: bytes, child_pid: str, facility_id: int, year: int) -> dict[str, str]:
    """Commitment -> category for every category of the year's rules (the operator holds the key)."""
    return {commitment(claim_salt(key, child_pid, facility_id, code), code): code
            for code in rules_for(year).categories}


def _live_offers(conn: Connection, facility_id: int) -> dict[int, dict[str, Any]]:
    rows = conn.execute(text("""SELECT o.id, e.public_id AS entry, o.deadline, o.status, o.created_at, o.answered_at
                                FROM waitlist_offers o JOIN waitlist_entries e ON e.id = o.entry_id
                                WHERE o.facility_id = :f"""), {"f": facility_id}).mappings().all()
    return {r["id"]: dict(r) for r in rows}


def _offer_differences(conn: Connection, c: _Centre) -> list[Difference]:
    out = []
    live = _live_offers(conn, c.id)
    for oid in sorted(set(live) | set(c.state.offers)):
        name = f"offer {oid}"
        o, row = c.state.offers.get(oid), live.get(oid)
        if o is None or row is None:
            out.append(Difference(c.code, name, "offer", "present" if o else "absent", "present" if row else "absent"))
            continue
        for field in OFFER_FIELDS:
            if getattr(o, field) != row[field]:
                out.append(Difference(c.code, name, field, _value(getattr(o, field)), _value(row[field])))
    return out


def _queue_differences(conn: Connection, c: _Centre) -> list[Difference]:
    out = []
    live_keys = conn.execute(text("""SELECT DISTINCT year, age_class FROM waitlist_entries WHERE facility_id = :f
                                     AND status = ANY(:st)"""), {"f": c.id, "st": list(ACTIVE)}).all()
    keys = sorted({(k.year, k.age_class) for k in live_keys} | set(c.state.queue_keys()))
    served = queues(conn, [(c.id, y, a) for y, a in keys])
    for y, a in keys:
        name = f"queue {y}/{a}"
        expected = [e.entry for e in c.state.queue(y, a)]
        found = [q.ranked.public_id for q in served[(c.id, y, a)]]
        found_rank = {pid: i for i, pid in enumerate(found, start=1)}
        expected_rank = {pid: i for i, pid in enumerate(expected, start=1)}
        for pid in dict.fromkeys([*expected, *found]):
            if expected_rank.get(pid) != found_rank.get(pid):
                out.append(Difference(c.code, pid, f"rank in {name}", expected_rank.get(pid), found_rank.get(pid)))
        shown, replayed = public_rows(served[(c.id, y, a)]), public_queue(c.state, y, a)
        for want, got in zip(replayed, shown, strict=False):
            if want != got:
                out.append(Difference(c.code, name, f"public row {want['rank']}", want, got))
        if len(shown) != len(replayed):
            out.append(Difference(c.code, name, "public rows", len(replayed), len(shown)))
    return out


# --- rebuild -----------------------------------------------------------------------------------------------------


def rebuild(conn: Connection, facility_ids: Sequence[int], *, dry_run: bool = False) -> list[Difference]:
    """Make the centres' entries, their claims' evidence and their offers the projection of the logs; returns the
    differences found before (``dry_run``: only finds them). The private map of pseudonyms gives each entry its
    child (checked against the key); entries the log does not hold are deleted, so are offers."""
    found = differences(conn, facility_ids)
    if dry_run or not found:
        return found
    key = secret(conn)
    mapped = _mapped_children(conn, facility_ids)
    for c in _load(conn, facility_ids):
        _rebuild_centre(conn, key, c, mapped)
    return found


def _rebuild_centre(conn: Connection, key: bytes, c: _Centre, mapped: dict[tuple[int, str], tuple[int, str]]) -> None:
    wanted: list[tuple[ReplayEntry, int, str]] = []
    for e in c.state.entries.values():
        child = mapped.get((c.id, e.child))
        if child is not None and child_pseudonym(key, child[1], c.id) == e.child:
            wanted.append((e, *child))
    keep = [e.entry for e, _, _ in wanted]
    conn.execute(text("DELETE FROM waitlist_offers WHERE facility_id = :f"), {"f": c.id})
    conn.execute(text("DELETE FROM waitlist_entries WHERE facility_id = :f AND NOT (public_id = ANY(:keep))"),
                 {"f": c.id, "keep": keep})
    if wanted:
        conn.execute(text("""
            INSERT INTO waitlist_entries (public_id, child_id, facility_id, year, age_class, preference, applied_at,
                                          status, status_at)
            VALUES (:pid, :child, :f, :y, :a, :pref, :applied, :s, :at)
            ON CONFLICT (public_id) DO UPDATE SET child_id = EXCLUDED.child_id, facility_id = EXCLUDED.facility_id,
                year = EXCLUDED.year, age_class = EXCLUDED.age_class, preference = EXCLUDED.preference,
                applied_at = EXCLUDED.applied_at, status = EXCLUDED.status, status_at = EXCLUDED.status_at
        """), [{"pid": e.entry, "child": child_id, "f": c.id, "y": e.year, "a": e.age_class, "pref": e.preference,
                "applied": e.applied_at, "s": e.status, "at": e.status_at} for e, child_id, _ in wanted])
    centre = Centre(c.code, c.facility_type)
    for e, child_id, child_pid in wanted:
        if e.status in ACTIVE:
            _rebuild_claims(conn, key, centre, c.id, e, child_id, child_pid)
    ids = {r.public_id: r.id for r in conn.execute(text("SELECT public_id, id FROM waitlist_entries "
                                                        "WHERE facility_id = :f"), {"f": c.id})}
    child_of = {e.entry: child_id for e, child_id, _ in wanted}
    offers = [o for o in c.state.offers.values() if o.entry in ids]
    if offers:
        conn.execute(text("""INSERT INTO waitlist_offers (id, entry_id, child_id, facility_id, age_class, deadline,
                                                          status, created_at, answered_at)
                             VALUES (:id, :e, :c, :f, :a, :d, :s, :at, :ans)"""),
                     [{"id": o.id, "e": ids[o.entry], "c": child_of[o.entry], "f": c.id,
                       "a": c.state.entries[o.entry].age_class, "d": o.deadline, "s": o.status, "at": o.created_at,
                       "ans": o.answered_at} for o in offers])


def _rebuild_claims(conn: Connection, key: bytes, centre: Centre, facility_id: int, e: ReplayEntry, child_id: int,
                    child_pid: str) -> None:
    """The child's claims that may count at this centre become what the entry's last priority event commits."""
    rules = rules_for(e.year)
    for code, category in rules.categories.items():
        detail = centre.code if category.scope.kind == "named_centre" else None
        if not category.counts_at(centre, detail):
            continue
        cm = commitment(claim_salt(key, child_pid, facility_id, code), code)
        if cm in e.claims:
            conn.execute(text("""INSERT INTO claims (child_id, category, evidence, detail) VALUES (:c, :cat, :ev, :d)
                                 ON CONFLICT (child_id, category) DO UPDATE SET evidence = EXCLUDED.evidence"""),
                         {"c": child_id, "cat": code, "ev": e.claims[cm], "d": detail})
        else:
            conn.execute(text("DELETE FROM claims WHERE child_id = :c AND category = :cat AND (detail IS NULL "
                              "OR detail = :code)"), {"c": child_id, "cat": code, "code": centre.code})
