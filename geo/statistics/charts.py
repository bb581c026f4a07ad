"""A statistics table as a Vega-Lite chart (built with altair): a bar chart of the table's main series, one bar per
area (or per the table's own x column), coloured by its colour column when it has one. The page shows the same
figures in an accessible table beside it."""

from __future__ import annotations

from typing import Any

from geo.statistics.tables import Level, Table, value_name

_AREA_NAME = {Level.city: "sido_name", Level.sigungu: "district_name", Level.dong: "dong_name"}


def chart_spec(table: Table, *, lang: str = "ko") -> dict[str, Any]:
    """The Vega-Lite specification (a dict) of ``table``'s chart, labels in ``lang``."""
    import altair as alt

    x_name, y_name, colour_name = table.definition.chart
    if x_name == "area":
        x_name = _AREA_NAME[table.level]
    if colour_name == "area":
        colour_name = _AREA_NAME[table.level]
    labels = {c.name: c.label(lang) for c in table.columns}
    keys = [k for k in (x_name, y_name, colour_name) if k]
    data = alt.Data(values=[{k: value_name(table.definition.id, k, row.get(k), lang) for k in keys}
                            for row in table.rows])
    x_type = "temporal" if x_name == "snapshot_date" else "nominal"
    encoding: dict[str, Any] = {
        "x": alt.X(f"{x_name}:{x_type[0].upper()}", title=labels.get(x_name, x_name), sort=None),
        "y": alt.Y(f"sum({y_name}):Q", title=labels.get(y_name, y_name)),
        "tooltip": [alt.Tooltip(f"{x_name}:{x_type[0].upper()}", title=labels.get(x_name, x_name)),
                    alt.Tooltip(f"sum({y_name}):Q", title=labels.get(y_name, y_name))],
    }
    if colour_name:
        encoding["color"] = alt.Color(f"{colour_name}:N", title=labels.get(colour_name, colour_name))
    title = table.definition.en if lang == "en" else table.definition.ko
    chart = alt.Chart(data, title=title, width="container", height=320).mark_bar().encode(**encoding)
    spec: dict[str, Any] = chart.to_dict()
    return spec
