"""Every planner notebook executes against a real database, and its figures match SQL computed here."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from sqlalchemy import Engine, text

from geo.ingest.defaults import load_default_data
from geo.settings import PROJECT_ROOT

# A script or stylesheet loaded from the network (a folium map not made self-contained).
EXTERNAL_ASSET = re.compile(r'<(?:script src|link rel="stylesheet" href)="https?://')
NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def planner_engine(make_database) -> Engine:
    engine = make_database("notebooks")
    load_default_data(engine)
    return engine


def _execute(path: Path, engine: Engine, output: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    env = {"DATABASE_URL": engine.url.render_as_string(hide_password=False), "DOLBOM_NOTEBOOK_OUTPUT": str(output)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_there_are_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS] == ["district_supply.ipynb", "planner_accessibility.ipynb"]


def test_district_supply_notebook(planner_engine: Engine, tmp_path: Path) -> None:
    _execute(PROJECT_ROOT / "notebooks" / "district_supply.ipynb", planner_engine, tmp_path)
    with (tmp_path / "supply_by_district.csv").open(encoding="utf-8") as fh:
        rows = {r["code"]: r for r in csv.DictReader(fh)}
    with planner_engine.connect() as conn:
        expected = dict(conn.execute(text("""
            SELECT district_code, sum(capacity) FROM facilities
            WHERE status IN ('active', 'reopened') GROUP BY district_code""")).all())
        pop = dict(conn.execute(text(
            "SELECT district_code, sum(population_0_5) FROM admin_dongs GROUP BY district_code")).all())
    assert set(rows) == set(expected) and len(rows) == 25
    for code, row in rows.items():
        assert int(row["capacity"]) == expected[code]
        assert float(row["places_per_100_children"]) == pytest.approx(expected[code] / pop[code] * 100, abs=0.05)
    with (tmp_path / "blind_spots.csv").open(encoding="utf-8") as fh:
        spots = list(csv.DictReader(fh))
    assert len(spots) == 10
    ratios = [float(s["places_per_100_children"]) for s in spots]
    assert ratios == sorted(ratios) and all(int(s["population_0_5"]) >= 200 for s in spots)
    page = (tmp_path / "supply_map.html").read_text(encoding="utf-8")
    assert "leaflet" in page.lower() and "places per 100 children" in page
    assert not EXTERNAL_ASSET.findall(page)  # self-contained: renders offline


def test_planner_accessibility_notebook(planner_engine: Engine, tmp_path: Path) -> None:
    _execute(PROJECT_ROOT / "notebooks" / "planner_accessibility.ipynb", planner_engine, tmp_path)
    with planner_engine.connect() as conn:
        places = dict(conn.execute(text("""
            SELECT district_code, sum(capacity) FROM facilities
            WHERE status IN ('active', 'reopened') GROUP BY district_code""")).all())
        children = dict(conn.execute(text(
            "SELECT district_code, sum(population_0_5) FROM admin_dongs GROUP BY district_code")).all())
        h24 = conn.execute(text("""SELECT count(*) FROM facilities
                                   WHERE status IN ('active', 'reopened') AND 'twenty_four_hour' = ANY(services)""")).scalar_one()
        saved = conn.execute(text("""SELECT count(*) FILTER (WHERE blind_spot), sum(children) FROM planner_cells c
                                     JOIN planner_runs r ON r.id = c.run_id WHERE r.service = 'all'""")).one()
    with (tmp_path / "all" / "districts.csv").open(encoding="utf-8") as fh:
        rows = {r["code"]: r for r in csv.DictReader(fh)}
    assert set(rows) == set(places) and len(rows) == 25
    for code, row in rows.items():
        assert int(row["places"]) == places[code]
        assert float(row["children"]) == pytest.approx(children[code], abs=1e-6)
        per_place = children[code] / places[code]
        assert float(row["children_per_place"]) == pytest.approx(per_place)
        assert (row["desert"] == "True") == (children[code] > 50 and per_place > 3)
    with (tmp_path / "all" / "blind_spots.csv").open(encoding="utf-8") as fh:
        spots = list(csv.DictReader(fh))
    assert len(spots) == saved[0] > 0
    assert [int(float(s["blind_rank"])) for s in spots] == list(range(1, len(spots) + 1))
    assert all(float(s["children"]) >= 10 for s in spots)
    assert saved[1] == pytest.approx(sum(children.values()), rel=1e-9)
    with (tmp_path / "24h" / "sites.csv").open(encoding="utf-8") as fh:
        sites = list(csv.DictReader(fh))
    assert len(sites) == 3
    total = float(sites[0]["children_covered_total"])
    assert sum(float(s["children_newly_covered"]) for s in sites) == pytest.approx(total)
    report = (tmp_path / "24h" / "report.md").read_text(encoding="utf-8")
    assert f"{h24} centres" in report and "3 suggested sites" in report
    planner_map = (tmp_path / "planner_map.html").read_text(encoding="utf-8")
    assert "leaflet" in planner_map.lower() and not EXTERNAL_ASSET.findall(planner_map)
    for name in ("planner.gpkg", "cells.geojson", "dongs.geojson", "districts.geojson", "sites.geojson"):
        assert (tmp_path / "24h" / name).stat().st_size > 0
