"""보육통계: the public statistics tables (JSON, CSV, XLSX), their charts (Vega-Lite) and the page at /statistics."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse

from api.deps import ReadSessionDep
from api.routers.map_page import STATIC_DIR
from api.schemas.statistics import StatisticsIndex, StatisticsTableOut
from geo.statistics.charts import chart_spec
from geo.statistics.files import to_csv, to_xlsx
from geo.statistics.tables import DEFINITIONS, Level, compute

router = APIRouter(prefix="/statistics", tags=["statistics"])


class Lang(StrEnum):
    """Language of labels and titles."""

    ko = "ko"
    en = "en"


class TableFormat(StrEnum):
    """What ``GET /statistics/{table}`` returns."""

    json = "json"
    csv = "csv"
    xlsx = "xlsx"


TableId = Annotated[str, Path(max_length=40, pattern=r"^[a-z_]+$", description="A table's id (GET /statistics)")]
LevelParam = Annotated[Level, Query(description="Area of each row: city (시도), sigungu (구) or dong (행정동)")]
DistrictParam = Annotated[str | None, Query(description="Only this 구 (5-digit 시군구 code, e.g. 11440)", max_length=5,
                                            pattern=r"^\d{5}$")]
LangParam = Annotated[Lang, Query(description="Language of labels (ko or en)")]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("", summary="The statistics tables", response_model=StatisticsIndex,
            responses={200: {"content": {"text/html": {}}}})
def index(request: Request, lang: LangParam = Lang.ko) -> Any:
    """Every table with what it counts, the levels it is published for and links to its data and chart. A
    browser (``Accept: text/html``) gets the statistics page: a chart and its table per statistics table."""
    if "text/html" in request.headers.get("accept", ""):
        return FileResponse(STATIC_DIR / "statistics.html", media_type="text/html")
    base = str(request.url_for("statistics_table", table_id="_")).removesuffix("/_")
    return {"tables": [
        {"id": d.id, "title": d.en if lang is Lang.en else d.ko, "about": d.about_en if lang is Lang.en else d.about_ko,
         "levels": [lvl.value for lvl in Level if d.finest is Level.dong or lvl is not Level.dong],
         "links": [{"rel": "data", "href": f"{base}/{d.id}", "type": "application/json"},
                   {"rel": "alternate", "href": f"{base}/{d.id}?format=csv", "type": "text/csv"},
                   {"rel": "alternate", "href": f"{base}/{d.id}?format=xlsx", "type": XLSX},
                   {"rel": "chart", "href": f"{base}/{d.id}/chart", "type": "application/vnd.vegalite+json"}]}
        for d in DEFINITIONS.values()]}


@router.get("/{table_id}", name="statistics_table", summary="One statistics table",
            response_model=StatisticsTableOut,
            responses={200: {"content": {"text/csv": {}, XLSX: {}}},
                       404: {"description": "No such table (problem+json, RFC 9457)"}})
def table(session: ReadSessionDep, table_id: TableId, level: LevelParam = Level.sigungu,
          district: DistrictParam = None, lang: LangParam = Lang.ko,
          format: Annotated[TableFormat, Query(description="json, csv or xlsx")] = TableFormat.json) -> Any:
    """The table per area of ``level``; ``format=csv`` (UTF-8 with BOM) or ``xlsx`` downloads it."""
    result = compute(session.connection(), table_id, level=level, district_code=district)
    if format is TableFormat.json:
        return result.as_dict(lang.value)
    name = f"dolbom-{table_id}-{level.value}{'-' + district if district else ''}"
    if format is TableFormat.csv:
        return Response(to_csv(result, lang=lang.value), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return Response(to_xlsx(result, lang=lang.value), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})


@router.get("/{table_id}/chart", summary="The table's chart (Vega-Lite)",
            responses={200: {"content": {"application/vnd.vegalite+json": {}}},
                       404: {"description": "No such table (problem+json, RFC 9457)"}})
def chart(session: ReadSessionDep, table_id: TableId, level: LevelParam = Level.sigungu,
          district: DistrictParam = None, lang: LangParam = Lang.ko) -> dict[str, Any]:
    """A Vega-Lite bar chart of the table's main figure (altair); the page renders it with vega-embed."""
    return chart_spec(compute(session.connection(), table_id, level=level, district_code=district), lang=lang.value)
