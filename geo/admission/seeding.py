"""Synthetic waitlist applications in bulk (COPY), for national-scale tests and benchmarks.

The rows follow the waitlist model (``geo.models.waitlist``) and the year's rules (``rules_for``): verified parent
accounts (``users``, role ``parent``, no usable password), their children with birth dates in a 0-5세 class of the
보육연도, priority claims drawn from the year's categories with an evidence state, and 1 to ``max_applications``
waiting entries per child (``max_applications_if_enrolled`` for enrolled children) at distinct operating centres of
one 시군구, numbered by preference, applied at times spread over the months before the 보육연도 starts, with the
age class the child's birth date gives. Ranking reads them like entries made through ``apply``.

The log is written as well, since the queue tables are its projection (``dolbom waitlist verify`` replays it):
per centre the ``rules`` event of the year, one ``apply`` event per entry in order of application (per-centre
pseudonym, committed claims, tier and points, as ``apply`` writes them) and, after them, one ``rank`` event per
queue (``apply`` appends a full rank order per application, quadratic in the queue length: a bulk load records the
final order once), with the private pseudonym map. Not written: offers and notices. Emails are
``seed<seed>-p<n>@synthetic.invalid`` (the reserved ``.invalid`` TLD), names ``[합성] 아동 <n>``.

The same seed, count, year and set of operating centres give the same rows (public ids included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, text

from geo.admission.chain import GENESIS, canonical, chain_rows, digest, link
from geo.admission.common import SEOUL
from geo.admission.events import child_pseudonym, priority_fields, rules_event, secret
from geo.admission.replay import CentreState, apply_event, fold
from geo.admission.rules import Centre, rules_for
from geo.admission.waitlist import age_class_in
from geo.db import driver_connection
from geo.errors import Conflict, InvalidQuery

# Share of children claiming each category (rough national magnitudes: 맞벌이 about half of families with young
# children, 다자녀 one in six, the welfare categories a few per cent); unknown codes of a year are skipped.
CLAIM_RATES: dict[str, float] = {
    "dual_income": 0.45, "multi_child": 0.16, "sibling_enrolled": 0.08, "multicultural": 0.04,
    "basic_livelihood": 0.03, "single_parent_protected": 0.03, "near_poverty": 0.03,
    "disabled_parent_or_sibling": 0.02, "other_single_parent_grandparent_adoptive": 0.02,
    "national_merit": 0.005, "child_welfare_facility": 0.003, "type1_diabetes": 0.002,
    "industrial_complex_resident": 0.02,
}
EVIDENCE_SHARES: dict[str, float] = {"claimed": 0.6, "verified_centre": 0.28, "verified_record": 0.1,
                                     "rejected": 0.02}
CHILDREN_PER_PARENT = 1.3
ENROLLED_SHARE = 0.2
# Applications are made over the 180 days before the 보육연도 starts (1 March).
APPLICATION_WINDOW_DAYS = 180


@dataclass(frozen=True)
class SeededApplications:
    """Row counts written by ``seed_applications``."""

    parents: int
    children: int
    claims: int
    entries: int
    centres: int
    year: int
    links: int = 0

    def summary(self) -> str:
        """One line for the CLI."""
        return (f"{self.entries:,} waiting entries for {self.year} at {self.centres:,} centres "
                f"({self.entries / max(self.centres, 1):.1f} per centre): {self.children:,} children of "
                f"{self.parents:,} parents, {self.claims:,} priority claims; {self.links:,} log events")


def _copy(conn: Connection, table: str, columns: tuple[str, ...], rows: Sequence[Sequence[object]]) -> None:
    from psycopg import sql

    driver = driver_connection(conn)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table),
                                                          sql.SQL(", ").join(map(sql.Identifier, columns)))
    with driver.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _ids(conn: Connection, table: str, count: int) -> list[int]:
    """``count`` fresh ids from the serial sequence of ``table`` (so COPY can link rows by id)."""
    return list(conn.execute(text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
                             {"t": table, "n": count}).scalars())


def seed_applications(bind: Engine | Connection, *, count: int, year: int, seed: int = 20260301) -> SeededApplications:
    """Write about ``count`` waiting entries for ``year`` (exactly ``count`` unless the centres run short) with
    their parents, children and claims, in one transaction.

    Raises
    ------
    InvalidQuery
        ``count`` is not positive.
    Conflict
        No operating centre, or this seed was already loaded (its parent e-mails exist).
    """
    if count < 1:
        raise InvalidQuery("the number of applications must be positive", param="count", value=count)
    if isinstance(bind, Connection):
        return _seed(bind, count=count, year=year, seed=seed)
    with bind.begin() as conn:
        return _seed(conn, count=count, year=year, seed=seed)


def _seed(conn: Connection, *, count: int, year: int, seed: int) -> SeededApplications:
    rules = rules_for(year)
    prefix = f"seed{seed}-p"
    if conn.execute(text("SELECT EXISTS (SELECT 1 FROM users WHERE email LIKE :p)"),
                    {"p": prefix + "%"}).scalar_one():
        raise Conflict(f"applications of seed {seed} are already loaded", seed=seed)
    centres = conn.execute(text("SELECT id, district_code, code, facility_type FROM facilities "
                                "WHERE status = 'active' AND district_code IS NOT NULL ORDER BY id")).all()
    if not centres:
        raise Conflict("no operating centre to apply to")
    code_of = {c.id: c.code for c in centres}
    rng = np.random.default_rng(seed)
    by_district: dict[str, np.ndarray] = {}
    for code in sorted({c.district_code for c in centres}):
        by_district[code] = np.array([c.id for c in centres if c.district_code == code])
    centre_ids = np.array([c.id for c in centres])
    district_of = {c.id: c.district_code for c in centres}

    # Children and their chosen centres: each child picks a first centre uniformly (so queues are about equally
    # long), then further distinct centres of the same 시군구.
    enrolled_limit, limit = rules.max_applications_if_enrolled, rules.max_applications
    plans: list[tuple[bool, list[int]]] = []
    total = 0
    while total < count:
        enrolled = bool(rng.random() < ENROLLED_SHARE)
        wanted = int(rng.integers(1, (enrolled_limit if enrolled else limit) + 1))
        first = int(centre_ids[rng.integers(len(centre_ids))])
        pool = by_district[district_of[first]]
        # A few random draws, deduplicated (O(k), not a shuffle of the 시군구's centres per child).
        others = list(dict.fromkeys(int(pool[j]) for j in rng.integers(len(pool), size=2 * wanted)
                                    if int(pool[j]) != first))[: wanted - 1]
        picks = [first, *others][: count - total]
        plans.append((enrolled, picks))
        total += len(picks)

    n_children = len(plans)
    n_parents = max(1, round(n_children / CHILDREN_PER_PARENT))
    parent_ids = _ids(conn, "users", n_parents)
    child_ids = _ids(conn, "children", n_children)
    now = datetime(year, 3, 1, tzinfo=UTC) - timedelta(days=1)
    _copy(conn, "users", ("id", "email", "password_hash", "role", "display_name", "verified_name",
                          "identity_provider", "verified_at", "created_at"),
          [(pid, f"{prefix}{n}@synthetic.invalid", "!synthetic", "parent", f"[합성] 부모 {n}", f"[합성] 부모 {n}",
            "synthetic", now, now) for n, pid in enumerate(parent_ids, start=1)])

    categories = [c for c in CLAIM_RATES if c in rules.categories]
    rates = np.array([CLAIM_RATES[c] for c in categories])
    evidence_names = list(EVIDENCE_SHARES)
    evidence_p = np.array(list(EVIDENCE_SHARES.values()))
    window_start = datetime(year, 3, 1, 9, tzinfo=UTC) - timedelta(days=APPLICATION_WINDOW_DAYS)
    child_rows, claim_rows, entry_rows = [], [], []
    parent_of = rng.integers(len(parent_ids), size=n_children)
    for n, ((enrolled, picks), child_id) in enumerate(zip(plans, child_ids, strict=True)):
        age_class = int(rng.integers(0, 6))
        born = date(year - age_class - 1, 1, 1) + timedelta(days=int(rng.integers(0, 365)))
        assert age_class_in(year, born) == age_class
        child_pid = rng.bytes(8).hex()
        child_rows.append((child_id, child_pid, parent_ids[int(parent_of[n])], f"[합성] 아동 {n + 1}", born, enrolled,
                           now))
        for code in (c for c, hit in zip(categories, rng.random(len(categories)) < rates, strict=True) if hit):
            state = evidence_names[int(rng.choice(len(evidence_names), p=evidence_p))]
            verified = state in ("verified_centre", "verified_record", "rejected")
            # A sibling is enrolled at the child's first choice (the claim names that centre and counts only there).
            detail = code_of[picks[0]] if code == "sibling_enrolled" and len(picks) else None
            claim_rows.append((child_id, code, state, now if verified else None, detail))
        applied = window_start + timedelta(seconds=int(rng.integers(0, APPLICATION_WINDOW_DAYS * 86400)))
        for preference, facility_id in enumerate(picks, start=1):
            at = applied + timedelta(minutes=5 * (preference - 1))
            entry_rows.append((rng.bytes(8).hex(), child_id, facility_id, year, age_class, preference, at,
                               "waiting", at))
    _copy(conn, "children", ("id", "public_id", "parent_user_id", "name", "birth_date", "enrolled", "created_at"),
          child_rows)
    _copy(conn, "claims", ("child_id", "category", "evidence", "verified_at", "detail"), claim_rows)
    _copy(conn, "waitlist_entries", ("public_id", "child_id", "facility_id", "year", "age_class", "preference",
                                     "applied_at", "status", "status_at"), entry_rows)
    claims_of: dict[int, list[tuple[str, str, str | None]]] = {}
    for child_id, code, state, _verified, detail in claim_rows:
        claims_of.setdefault(child_id, []).append((code, state, detail))
    pid_of = {row[0]: row[1] for row in child_rows}
    links = _write_logs(conn, entry_rows, claims_of, pid_of, {c.id: c for c in centres}, rng, year=year)
    conn.execute(text("ANALYZE users, children, claims, waitlist_entries, waitlist_chain, waitlist_pseudonyms"))
    used = len({row[2] for row in entry_rows})
    return SeededApplications(parents=n_parents, children=n_children, claims=len(claim_rows),
                              entries=len(entry_rows), centres=used, year=year, links=links)


def _write_logs(conn: Connection, entry_rows: Sequence[tuple[Any, ...]],
                claims_of: dict[int, list[tuple[str, str, str | None]]], pid_of: dict[int, str],
                centres: dict[int, Any], rng: np.random.Generator, *, year: int) -> int:
    """Each used centre's log: continued from its head when it has one (folded, so the rank events order every
    active entry), the year's rules event unless logged, the applications in order, one rank event per queue."""
    key = secret(conn)
    rules = rules_for(year)
    by_centre: dict[int, list[tuple[Any, ...]]] = {}
    for row in entry_rows:
        by_centre.setdefault(row[2], []).append(row)
    heads = {r.facility_id: r for r in conn.execute(text("""
        SELECT DISTINCT ON (facility_id) facility_id, seq, hash FROM waitlist_chain WHERE facility_id = ANY(:f)
        ORDER BY facility_id, seq DESC"""), {"f": list(by_centre)})}
    chain_out: list[tuple[object, ...]] = []
    head_out: dict[tuple[int, date], tuple[int, str]] = {}
    pseudonyms: list[tuple[int, str, int]] = []
    for facility_id in sorted(by_centre):
        rows = sorted(by_centre[facility_id], key=lambda r: (r[6], r[0]))
        centre = Centre(centres[facility_id].code, centres[facility_id].facility_type)
        head = heads.get(facility_id)
        state = fold(r.event for r in chain_rows(conn, facility_id)) if head else CentreState()
        seq, previous = (head.seq, head.hash) if head else (0, GENESIS)
        events: list[tuple[datetime, dict[str, Any]]] = []
        if year not in state.rules:
            events.append((rows[0][6], rules_event(year)))
        for pid, child_id, _f, y, age_class, preference, at, status, _status_at in rows:
            pseudonym = child_pseudonym(key, pid_of[child_id], facility_id)
            pseudonyms.append((facility_id, pseudonym, child_id))
            events.append((at, {"type": "apply", "entry": pid, "was": "new", "status": status, "child": pseudonym,
                                "year": y, "age_class": age_class, "applied_at": at.isoformat(),
                                "preference": preference,
                                **priority_fields(key, rules, centre, facility_id, pid_of[child_id],
                                                  claims_of.get(child_id, []))}))
        last = rows[-1][6]
        for at, event in events:
            full = {**event, "at": at.isoformat(), "nonce": rng.bytes(16).hex()}
            apply_event(state, seq + 1, full)
            seq, previous = _link(chain_out, head_out, facility_id, seq, previous, full, at)
        for y, age_class in state.queue_keys():
            order = [e.entry for e in state.queue(y, age_class)]
            full = {"type": "rank", "year": y, "age_class": age_class, "order": order, "at": last.isoformat(),
                    "nonce": rng.bytes(16).hex()}
            seq, previous = _link(chain_out, head_out, facility_id, seq, previous, full, last)
    _copy(conn, "waitlist_chain", ("facility_id", "seq", "event", "digest", "hash", "created_at"), chain_out)
    _copy(conn, "waitlist_pseudonyms", ("facility_id", "pseudonym", "child_id"), pseudonyms)
    conn.execute(text("""INSERT INTO waitlist_chain_heads (facility_id, day, seq, hash)
                         SELECT * FROM unnest(CAST(:f AS int[]), CAST(:d AS date[]), CAST(:s AS int[]),
                                              CAST(:h AS text[]))
                         ON CONFLICT (facility_id, day) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash"""),
                 {"f": [k[0] for k in head_out], "d": [k[1] for k in head_out],
                  "s": [v[0] for v in head_out.values()], "h": [v[1] for v in head_out.values()]})
    return len(chain_out)


def _link(out: list[tuple[object, ...]], heads: dict[tuple[int, date], tuple[int, str]], facility_id: int, seq: int,
          previous: str, event: dict[str, Any], at: datetime) -> tuple[int, str]:
    """Append one chain row to ``out`` (and move the day's head); the new (seq, hash)."""
    d = digest(event)
    h = link(previous, d)
    out.append((facility_id, seq + 1, canonical(event), d, h, at))
    heads[(facility_id, at.astimezone(SEOUL).date())] = (seq + 1, h)
    return seq + 1, h
