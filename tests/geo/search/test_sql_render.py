"""The JSON shapes of the search SQL are rendered once at import; they must be the SQL the composed trees give."""

from __future__ import annotations

import psycopg
from sqlalchemy import Engine

from geo.search import sql as q


def test_rendered_shapes_are_the_composed_sql(engine: Engine) -> None:
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        assert q.SHAPES["feature"].as_bytes(conn) == q.FEATURE_JSON.as_bytes(conn)
        assert q.SHAPES["item"].as_bytes(conn) == q.ITEM_JSON.as_bytes(conn)
        # Every property key is in the rendered SQL once, quoted as a literal.
        rendered = q.SHAPES["feature"].as_string(conn)
        assert all(rendered.count(f"'{key}', ") == 1 for key, _ in q.PROPERTIES)
