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

from geo.admission.chain import ChainProblem, ChainRow, verify_chain
from geo.admission.events import child_pseudonym, claim_salt, priority_fields, rules_event, secret
from geo.admission.queue import QueueEntry, QueueKey, public_rows, queues
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
    problems: list[ChainProblem]


def _load(conn: Connection, facility_ids: Sequence[int]) -> list[_Centre]:
    """The centres with their chains folded and checked (three queries, whatever the number of centres)."""
    ids = list(facility_ids)
    rows: dict[int, list[ChainRow]] = {}
    for r in conn.execute(text("SELECT facility_id, seq, event, digest, hash FROM waitlist_chain "
                               "WHERE facility_id = ANY(:f) ORDER BY facility_id, seq"), {"f": ids}):
        rows.setdefault(r.facility_id, []).append(ChainRow(r.seq, r.event, r.digest, r.hash))
    heads: dict[int, list[Any]] = {}
    for h in conn.execute(text("SELECT facility_id, day, seq, hash FROM waitlist_chain_heads "
                               "WHERE facility_id = ANY(:f) ORDER BY facility_id, day"), {"f": ids}):
        heads.setdefault(h.facility_id, []).append(h)
    out = []
    for f in conn.execute(text("SELECT id, code, facility_type FROM facilities WHERE id = ANY(:f) ORDER BY code"),
                          {"f": ids}):
        chain = rows.get(f.id, [])
        problems = verify_chain(chain)
        by_seq = {r.seq: r for r in chain}
        for h in heads.get(f.id, []):
            if h.seq not in by_seq or by_seq[h.seq].hash != h.hash:
                problems.append(ChainProblem(h.seq, f"published head of {h.day} does not match the chain"))
        events = [r.event for r in chain]
        out.append(_Centre(f.id, f.code, f.facility_type, fold(events), events, problems))
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
    offers = _live_offers(conn, facility_ids)
    served = _served(conn, centres, live)
    served_at: dict[int, dict[tuple[int, int], list[QueueEntry]]] = {}
    for (f, y, a), ranked in served.items():
        served_at.setdefault(f, {})[(y, a)] = ranked
    out: list[Difference] = []
    for c in centres:
        out.extend(_centre_differences(key, c, live.get(c.id, {}), mapped, claims))
        out.extend(_offer_differences(c, offers.get(c.id, {})))
        out.extend(_queue_differences(c, served_at.get(c.id, {})))
    return out


def _served(conn: Connection, centres: Sequence[_Centre],
            live: dict[int, dict[str, dict[str, Any]]]) -> dict[QueueKey, list[QueueEntry]]:
    """Every queue the tables serve or the logs hold, ranked as they are served (one query)."""
    keys = {(c.id, y, a) for c in centres for y, a in c.state.queue_keys()}
    keys |= {(f, e["year"], e["age_class"]) for f, by in live.items() for e in by.values() if e["status"] in ACTIVE}
    return queues(conn, sorted(keys))


def _centre_differences(key: bytes, c: _Centre, live: dict[str, dict[str, Any]],
                        mapped: dict[tuple[int, str], tuple[int, str]],
                        claims: dict[int, list[tuple[str, str, str | None]]]) -> list[Difference]:
    out: list[Difference] = []

    def diff(entry: str, field: str, expected: Any, found: Any) -> None:
        out.append(Difference(c.code, entry, field, _value(expected), _value(found)))

    for p in c.problems:
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
    return out


def _category_names(key: bytes, child_pid: str, facility_id: int, year: int) -> dict[str, str]:
    """Commitment -> category for every category of the year's rules (the operator holds the key)."""
    return {commitment(claim_salt(key, child_pid, facility_id, code), code): code
            for code in rules_for(year).categories}


def _live_offers(conn: Connection, facility_ids: Sequence[int]) -> dict[int, dict[int, dict[str, Any]]]:
    rows = conn.execute(text("""SELECT o.id, o.facility_id, e.public_id AS entry, o.deadline, o.status, o.created_at,
                                       o.answered_at
                                FROM waitlist_offers o JOIN waitlist_entries e ON e.id = o.entry_id
                                WHERE o.facility_id = ANY(:f)"""), {"f": list(facility_ids)}).mappings().all()
    out: dict[int, dict[int, dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["facility_id"], {})[r["id"]] = dict(r)
    return out


def _offer_differences(c: _Centre, live: dict[int, dict[str, Any]]) -> list[Difference]:
    out = []
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


def _queue_differences(c: _Centre, served: dict[tuple[int, int], list[QueueEntry]]) -> list[Difference]:
    out = []
    keys = sorted(served)
    for y, a in keys:
        name = f"queue {y}/{a}"
        expected = [e.entry for e in c.state.queue(y, a)]
        found = [q.ranked.public_id for q in served[(y, a)]]
        found_rank = {pid: i for i, pid in enumerate(found, start=1)}
        expected_rank = {pid: i for i, pid in enumerate(expected, start=1)}
        for pid in dict.fromkeys([*expected, *found]):
            if expected_rank.get(pid) != found_rank.get(pid):
                out.append(Difference(c.code, pid, f"rank in {name}", expected_rank.get(pid), found_rank.get(pid)))
        shown, replayed = public_rows(served[(y, a)]), public_queue(c.state, y, a)
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
    child (checked against the key); entries and offers the logs do not hold are deleted. A fixed number of
    statements, whatever the number of centres."""
    found = differences(conn, facility_ids)
    if dry_run or not found:
        return found
    key = secret(conn)
    ids = list(facility_ids)
    mapped = _mapped_children(conn, ids)
    centres = _load(conn, ids)
    wanted: list[tuple[_Centre, ReplayEntry, int, str]] = []
    for c in centres:
        for e in c.state.entries.values():
            child = mapped.get((c.id, e.child))
            if child is not None and child_pseudonym(key, child[1], c.id) == e.child:
                wanted.append((c, e, *child))
    conn.execute(text("DELETE FROM waitlist_offers WHERE facility_id = ANY(:f)"), {"f": ids})
    conn.execute(text("DELETE FROM waitlist_entries WHERE facility_id = ANY(:f) AND NOT (public_id = ANY(:keep))"),
                 {"f": ids, "keep": [e.entry for _, e, _, _ in wanted]})
    conn.execute(text("""
        INSERT INTO waitlist_entries (public_id, child_id, facility_id, year, age_class, preference, applied_at,
                                      status, status_at)
        SELECT * FROM unnest(CAST(:pid AS text[]), CAST(:child AS int[]), CAST(:f AS int[]), CAST(:y AS int[]),
                             CAST(:a AS int[]), CAST(:pref AS int[]), CAST(:applied AS timestamptz[]),
                             CAST(:s AS text[]), CAST(:at AS timestamptz[]))
        ON CONFLICT (public_id) DO UPDATE SET child_id = EXCLUDED.child_id, facility_id = EXCLUDED.facility_id,
            year = EXCLUDED.year, age_class = EXCLUDED.age_class, preference = EXCLUDED.preference,
            applied_at = EXCLUDED.applied_at, status = EXCLUDED.status, status_at = EXCLUDED.status_at
    """), {"pid": [e.entry for _, e, _, _ in wanted], "child": [ch for _, _, ch, _ in wanted],
           "f": [c.id for c, _, _, _ in wanted], "y": [e.year for _, e, _, _ in wanted],
           "a": [e.age_class for _, e, _, _ in wanted], "pref": [e.preference for _, e, _, _ in wanted],
           "applied": [e.applied_at for _, e, _, _ in wanted], "s": [e.status for _, e, _, _ in wanted],
           "at": [e.status_at for _, e, _, _ in wanted]})
    _rebuild_claims(conn, key, [(c, e, ch, pid) for c, e, ch, pid in wanted if e.status in ACTIVE])
    entry_ids = {r.public_id: r.id for r in conn.execute(
        text("SELECT public_id, id FROM waitlist_entries WHERE facility_id = ANY(:f)"), {"f": ids})}
    child_of = {(c.id, e.entry): ch for c, e, ch, _ in wanted}
    offers = [(c, o) for c in centres for o in c.state.offers.values() if (c.id, o.entry) in child_of]
    conn.execute(text("""
        INSERT INTO waitlist_offers (id, entry_id, child_id, facility_id, age_class, deadline, status, created_at,
                                     answered_at)
        SELECT * FROM unnest(CAST(:id AS int[]), CAST(:e AS int[]), CAST(:c AS int[]), CAST(:f AS int[]),
                             CAST(:a AS int[]), CAST(:d AS timestamptz[]), CAST(:s AS text[]),
                             CAST(:at AS timestamptz[]), CAST(:ans AS timestamptz[]))
    """), {"id": [o.id for _, o in offers], "e": [entry_ids[o.entry] for _, o in offers],
           "c": [child_of[(c.id, o.entry)] for c, o in offers], "f": [c.id for c, _ in offers],
           "a": [c.state.entries[o.entry].age_class for c, o in offers], "d": [o.deadline for _, o in offers],
           "s": [o.status for _, o in offers], "at": [o.created_at for _, o in offers],
           "ans": [o.answered_at for _, o in offers]})
    return found


def _rebuild_claims(conn: Connection, key: bytes, active: Sequence[tuple[_Centre, ReplayEntry, int, str]]) -> None:
    """The claims that may count at the centre of an active entry become what its last priority event commits:
    evidence set (the claim written if missing), claims the log does not commit deleted."""
    keep: dict[tuple[int, str], tuple[str, str | None]] = {}
    drop: set[tuple[int, str, str]] = set()
    for c, e, child_id, child_pid in active:
        centre = Centre(c.code, c.facility_type)
        for code, category in rules_for(e.year).categories.items():
            detail = c.code if category.scope.kind == "named_centre" else None
            if not category.counts_at(centre, detail):
                continue
            cm = commitment(claim_salt(key, child_pid, c.id, code), code)
            if cm in e.claims:
                keep[(child_id, code)] = (e.claims[cm], detail)
            else:
                drop.add((child_id, code, c.code))
    drop = {d for d in drop if (d[0], d[1]) not in keep}
    conn.execute(text("""DELETE FROM claims c USING unnest(CAST(:c AS int[]), CAST(:cat AS text[]),
                                                         CAST(:code AS text[])) AS d(child_id, category, code)
                         WHERE c.child_id = d.child_id AND c.category = d.category
                           AND (c.detail IS NULL OR c.detail = d.code)"""),
                 {"c": [d[0] for d in drop], "cat": [d[1] for d in drop], "code": [d[2] for d in drop]})
    conn.execute(text("""INSERT INTO claims (child_id, category, evidence, detail)
                         SELECT * FROM unnest(CAST(:c AS int[]), CAST(:cat AS text[]), CAST(:ev AS text[]),
                                              CAST(:d AS text[]))
                         ON CONFLICT (child_id, category) DO UPDATE SET evidence = EXCLUDED.evidence"""),
                 {"c": [k[0] for k in keep], "cat": [k[1] for k in keep], "ev": [v[0] for v in keep.values()],
                  "d": [v[1] for v in keep.values()]})


def live_tables(conn: Connection, ids: list[int]) -> dict[str, Any]:
    """What the log projects to, as stored for centres ``ids``: entries, offers, and the claims that can move a
    rank (those counting at a centre the child applied to); two snapshots are equal when the projection is."""
    entries = conn.execute(text("""SELECT public_id, child_id, facility_id, year, age_class, preference, applied_at,
                                          status, status_at FROM waitlist_entries WHERE facility_id = ANY(:f)
                                   ORDER BY public_id"""), {"f": ids}).all()
    offers = conn.execute(text("""SELECT o.id, e.public_id, o.child_id, o.facility_id, o.age_class, o.deadline,
                                         o.status, o.created_at, o.answered_at
                                  FROM waitlist_offers o JOIN waitlist_entries e ON e.id = o.entry_id
                                  WHERE o.facility_id = ANY(:f) ORDER BY o.id"""), {"f": ids}).all()
    # The claims that can move a rank: those that count at a centre the child applied to (the others are in no log).
    rows = conn.execute(text("""SELECT c.child_id, c.category, c.evidence, c.detail, f.code, f.facility_type
                                FROM claims c JOIN waitlist_entries e ON e.child_id = c.child_id
                                JOIN facilities f ON f.id = e.facility_id WHERE e.facility_id = ANY(:f)"""),
                        {"f": ids}).all()
    categories = rules_for(2026).categories
    claims = sorted({(r.child_id, r.category, r.evidence, r.detail) for r in rows
                     if categories[r.category].counts_at(Centre(r.code, r.facility_type), r.detail)})
    return {"entries": entries, "offers": offers, "claims": claims}
