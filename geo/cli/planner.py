"""``dolbom planner``: the planner's measures, blind spots and suggested sites, written to files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo.cli.common import console, fail, migrated_engine
from geo.errors import DolbomError

app = typer.Typer(help="Planner analytics: accessibility, childcare deserts, blind spots, new sites.",
                  no_args_is_help=True)


@app.command("run")
def planner_run(
    out: Annotated[Path, typer.Option(help="Output directory (GeoPackage, GeoJSON, CSV, report.md, map.html)")] = Path(
        "planner-output"),
    service: Annotated[str, typer.Option(help="all, a service (24h, holiday, 휴일보육, ...) or disability")] = "all",
    catchment_m: Annotated[float, typer.Option(help="Catchment radius in metres")] = 1000.0,
    decay: Annotated[str, typer.Option(help="2SFCA decay inside the catchment: none or gaussian")] = "none",
    cell_m: Annotated[float, typer.Option(help="Grid cell size in metres (EPSG:5179)")] = 250.0,
    area: Annotated[str, typer.Option(help="Code prefix of the area: 11 (Seoul) or a 구 such as 11440")] = "11",
    sites: Annotated[int, typer.Option(help="Suggest this many new centre sites (0: none)")] = 0,
    save: Annotated[bool, typer.Option(help="Persist the cells in planner_cells (map layer)")] = True,
) -> None:
    """Compute the planner measures for one service type and write the outputs (and planner_cells)."""
    from geo.analysis.outputs import write_outputs
    from geo.analysis.planner import PlannerParams, run_planner, save_run
    from geo.analysis.sites import suggest_sites

    try:
        params = PlannerParams(area_code=area, cell_m=cell_m, service=service, catchment_m=catchment_m,
                               decay=decay)
        engine = migrated_engine()
        with engine.begin() as conn:
            result = run_planner(conn, params)
            run_id = save_run(conn, result) if save else None
        suggested = suggest_sites(result, k=sites) if sites > 0 else None
    except DolbomError as exc:
        fail(exc)
    paths = write_outputs(result, out, sites=suggested)
    s = result.summary
    console.print(f"{int(s['cells'])} cells, {int(s['children']):,} children, {int(s['centres'])} centres "
                  f"({service}), {int(s['blind_spots'])} blind-spot cells, {s['gap_places']:,.0f} places short"
                  + (f"; saved as planner run {run_id}" if run_id is not None else ""))
    if suggested is not None and len(suggested):
        console.print(f"{len(suggested)} sites cover {suggested['children_covered_total'].iloc[0]:,.0f} of "
                      f"{suggested['unserved_children'].iloc[0]:,.0f} unserved children")
    console.print(f"wrote {len(paths)} files to {out}")
