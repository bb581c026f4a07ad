"""The API's async read pool: autocommit connections whose prepared searches are planned with their values."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

from geo.db import make_read_pool
from geo.search import FacilityFilters, radius_statement, run_async
from geo.settings import Settings


def test_read_pool_prepares_searches_but_never_uses_a_generic_plan(settings: Settings, engine: Engine) -> None:
    statement = radius_statement(lat=37.5563, lon=126.9220, radius_m=1000, settings=settings,
                                 filters=FacilityFilters.parse(services=["extended_hours"]))

    async def scenario() -> tuple[str, bool, list[tuple[int, int]]]:
        pool = make_read_pool(settings, min_size=1, max_size=1)
        await pool.open()
        try:
            async with pool.connection() as conn:
                mode = await (await conn.execute("SHOW plan_cache_mode")).fetchone()
                for _ in range(8):  # PostgreSQL weighs a generic plan from the sixth execution on
                    await run_async(conn, statement)
                plans = await (await conn.execute(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                    "WHERE statement ILIKE '%knn AS MATERIALIZED%'")).fetchall()
                return str(mode[0]) if mode else "", conn.autocommit, [(int(g), int(c)) for g, c in plans]
        finally:
            await pool.close()

    mode, autocommit, plans = asyncio.run(scenario())
    assert mode == "force_custom_plan" and autocommit
    # Prepared once (the first execution is unprepared with prepare_threshold=1), then always a custom plan.
    assert plans and all(generic == 0 for generic, _ in plans) and sum(custom for _, custom in plans) >= 7
