"""A centre's public fields are defined once (geo/search/fields.py): search results, the facilities layer, the
detail panel and the API schema carry exactly the fields defined for them, under the same names and types."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from api.schemas.facilities import FacilityItem, FacilityProperties
from geo.layers.registry import LAYERS
from geo.search import sql as search_sql
from geo.search.fields import CENTRE_FIELDS, FIELDS, CentreField, fields_for
from geo.search.results import FacilityHit
from geo.settings import Settings
from tests.dbutil import client_on, rolled_back

RESULT_FIELDS = ["distance_m", "catchment_radius_m"]  # what a search adds about a centre
# What the detail computes beside the centre fields: class tables, free places by class with the note on mixed
# classes, and the date and source of the figures shown (여석 기준일).
DETAIL_EXTRA = {"id", "lon", "lat", "places_by_age", "free_by_class", "free_note", "vacancy_reported_at",
                "vacancy_source", "disclosures", "evaluations"}
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "array": (list,),
    "object": (dict,), "date": (str,), "date-time": (str,),
}


def names(fields: tuple[CentreField, ...]) -> list[str]:
    return [f.name for f in fields]


def _check_value(field: CentreField, value: Any) -> None:
    if value is None:
        assert field.nullable, f"{field.name} is null but defined as never null"
        return
    assert isinstance(value, JSON_TYPES[field.type]), (field.name, value)
    assert not (field.type in ("integer", "number") and isinstance(value, bool)), field.name
    if field.type == "date":
        date.fromisoformat(value)
    if field.type == "date-time":
        datetime.fromisoformat(value)


def test_every_output_derives_from_the_definition() -> None:
    assert len({f.name for f in CENTRE_FIELDS}) == len(CENTRE_FIELDS)
    assert all(f.outputs for f in CENTRE_FIELDS)
    # Search SQL: the centre's search fields, in order, then the search's own.
    assert [key for key, _ in search_sql.PROPERTIES] == [*names(fields_for("search")), *RESULT_FIELDS]
    # The layer: names, types and descriptions (queryables, TileJSON) as defined.
    layer = LAYERS["facilities"]
    assert [(p.name, p.type, p.description) for p in layer.properties] == [
        (f.name, f.type, f.description) for f in fields_for("layer")]
    # The Python result of a search (FacilityHit) reads the same keys.
    hit_fields = [name for name in FacilityHit.__dataclass_fields__ if name not in ("id", "lon", "lat")]
    assert sorted(hit_fields) == sorted([*names(fields_for("search")), *RESULT_FIELDS])
    # Tiles carry no objects.
    assert all(f.type != "object" for f in fields_for("layer"))


def _schema_type(prop: dict[str, Any]) -> tuple[str, bool]:
    """(JSON type as the definition names it, nullable) of an OpenAPI property."""
    options = prop.get("anyOf", [prop])
    nullable = any(o.get("type") == "null" for o in options)
    (main,) = [o for o in options if o.get("type") != "null"]
    kind = main["type"]
    if kind == "string" and main.get("format") in ("date", "date-time"):
        kind = main["format"]
    return kind, nullable


def test_api_schema_equals_the_definition() -> None:
    schema = FacilityProperties.model_json_schema()
    assert list(schema["properties"]) == [*names(fields_for("search")), *RESULT_FIELDS]
    for field in fields_for("search"):
        prop = schema["properties"][field.name]
        assert _schema_type(prop) == (field.type, field.nullable), field.name
        assert prop["description"] == field.description, field.name
        assert field.name in schema["required"]
    item = FacilityItem.model_json_schema()
    assert set(item["properties"]) == {*schema["properties"], "id", "lon", "lat"}


@pytest.fixture()
def seoul_client(settings: Settings, seoul_engine: Engine) -> Iterator[tuple[TestClient, Connection]]:
    with rolled_back(seoul_engine) as conn, client_on(settings, conn) as client:
        yield client, conn


def test_real_responses_carry_exactly_the_defined_fields(seoul_client: tuple[TestClient, Connection]) -> None:
    client, conn = seoul_client
    # Search results (GeoJSON and compact items).
    body = client.get("/facilities/radius", params={"lat": 37.5326, "lon": 126.99, "radius_m": 1500}).json()
    assert body["features"]
    for feature in body["features"]:
        props = feature["properties"]
        assert list(props) == [*names(fields_for("search")), *RESULT_FIELDS]
        for field in fields_for("search"):
            _check_value(field, props[field.name])
        FacilityProperties.model_validate(props)
    items = client.get("/facilities/radius", params={"lat": 37.5326, "lon": 126.99, "radius_m": 1500, "f": "json"})
    assert items.json()["items"]
    for item in items.json()["items"]:
        assert list(item) == ["id", "lon", "lat", *names(fields_for("search")), *RESULT_FIELDS]
        FacilityItem.model_validate(item)
    # The layer (OGC API Features).
    layer = client.get("/ogc/collections/facilities/items", params={"limit": 20}).json()
    assert layer["features"]
    for feature in layer["features"]:
        assert set(feature["properties"]) == set(names(fields_for("layer")))
        for field in fields_for("layer"):
            _check_value(field, feature["properties"][field.name])
    # The detail panel: the detail fields and the panel's own.
    facility_id = conn.execute(text("SELECT id FROM facilities WHERE staff_count > 0 ORDER BY code LIMIT 1")
                               ).scalar_one()
    detail = client.get(f"/facilities/{facility_id}").json()
    assert set(detail) == {*names(fields_for("detail")), *DETAIL_EXTRA}
    for field in fields_for("detail"):
        _check_value(field, detail[field.name])
    # The same fact under the same name everywhere: what two outputs share agrees for one centre.
    same = client.get("/ogc/collections/facilities/items", params={"filter": f"code = '{detail['code']}'"}).json()
    (layer_props,) = [f["properties"] for f in same["features"]]
    for name in set(layer_props) & set(detail):
        assert layer_props[name] == detail[name] or name == "updated_at", name
    assert layer_props["free_total"] == detail["free_by_age"]["total"]
    assert FIELDS["free_total"].free_key == "total"
