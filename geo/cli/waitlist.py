"""``dolbom waitlist``: the live tables verified against the logs and rebuilt from them, log checkpoints and keys,
offer expiry, year end, the intake round and its simulation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import text

from geo.cli.common import fail, migrated_engine
from geo.errors import DolbomError

app = typer.Typer(help="Admission waitlist: verify chains, sign log checkpoints, expire offers, year end, intake "
                  "round, simulation.",
                  no_args_is_help=True)


@app.command("verify")
def waitlist_verify(
    centre: Annotated[str | None, typer.Option(help="어린이집코드 (default: every centre with a log)")] = None,
) -> None:
    """Replay centres' logs with the published rule table and compare them with the live tables and every served
    rank and public queue; name each difference (centre, entry, field, expected, found) and exit 1 if any."""
    from geo.admission import waitlist as wl
    from geo.admission.projection import centres_with_logs, differences

    engine = migrated_engine()
    with engine.connect() as conn:
        ids = [wl.facility_by_code(conn, centre).id] if centre else centres_with_logs(conn)
        found = differences(conn, ids)
        for d in found:
            print(d.line())
        bad = {d.centre for d in found}
        links = conn.execute(text("SELECT count(*) FROM waitlist_chain WHERE facility_id = ANY(:f)"),
                             {"f": ids}).scalar_one()
    print(f"{len(ids) - len(bad)} of {len(ids)} centres match their logs ({links:,} links replayed)")
    if found:
        fail(DolbomError(f"{len(found)} differences at {len(bad)} of {len(ids)} centres"))


@app.command("rebuild")
def waitlist_rebuild(
    centre: Annotated[str | None, typer.Option(help="어린이집코드 (default: every centre with a log)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would change")] = False,
) -> None:
    """Rebuild the queue tables (entries, claims' evidence, offers) from the logs; list what differed."""
    from geo.admission import waitlist as wl
    from geo.admission.projection import centres_with_logs, rebuild

    engine = migrated_engine()
    with engine.begin() as conn:
        ids = [wl.facility_by_code(conn, centre).id] if centre else centres_with_logs(conn)
        found = rebuild(conn, ids, dry_run=dry_run)
        for d in found:
            print(d.line())
    what = "would be rebuilt" if dry_run else "rebuilt"
    print(f"{len({d.centre for d in found})} of {len(ids)} centres {what} from their logs ({len(found)} differences)")


@app.command("checkpoint")
def waitlist_checkpoint() -> None:
    """Integrate new chain events into the public transparency log and sign a checkpoint of its size (run it
    daily, e.g. from cron; writes also publish after they commit)."""
    from geo.admission import tlog_store
    from geo.settings import get_settings

    engine = migrated_engine()
    with engine.begin() as conn:
        published = tlog_store.publish(conn, get_settings())
    assert published is not None
    print(published.note, end="")


@app.command("keygen")
def waitlist_keygen(
    path: Annotated[Path, typer.Argument(help="File to write the private key to (refused if it exists)")],
    name: Annotated[str | None, typer.Option(help="Key name (default: DOLBOM_LOG_ORIGIN)")] = None,
) -> None:
    """Make an Ed25519 signing key for the transparency log (set DOLBOM_LOG_KEY_FILE to it; for a rotation add it
    to DOLBOM_LOG_EXTRA_KEY_FILES first). Prints the verifier key to publish."""
    from geo.admission import tlog_store
    from geo.settings import get_settings

    try:
        signer = tlog_store.write_key(path, name or get_settings().log.origin)
    except FileExistsError:
        fail(DolbomError(f"{path} exists; a signing key is never overwritten"))
    print(signer.verifier.text())


@app.command("expire")
def waitlist_expire() -> None:
    """Expire open offers past their deadline (the places move on) and lapse entries not kept after admission."""
    from geo.admission.waitlist import expire_offers

    engine = migrated_engine()
    with engine.begin() as conn:
        done = expire_offers(conn)
    print(f"{done['offers_expired']} offers expired, {done['entries_lapsed']} entries lapsed")


@app.command("year-end")
def waitlist_year_end(year: Annotated[int, typer.Option(help="The new 보육연도 (from 1 March)")]) -> None:
    """Drop the waiting entries not renewed for ``year``, with a notice to each parent."""
    from geo.admission.waitlist import drop_unrenewed

    engine = migrated_engine()
    with engine.begin() as conn:
        dropped = drop_unrenewed(conn, year=year)
    print(f"{dropped} entries not renewed for {year} dropped (parents notified)")


@app.command("intake")
def waitlist_intake(year: Annotated[int, typer.Option(help="The 보육연도 of the round")]) -> None:
    """Run the March intake round (deferred acceptance over every waiting entry and free place); one offer each."""
    from geo.admission.waitlist import intake_round

    engine = migrated_engine()
    with engine.begin() as conn:
        result = intake_round(conn, year=year)
    print(f"{result['children']} children, {result['seats']} free places: {result['offers']} offers, "
          f"{result['unplaced']} unplaced")


@app.command("simulate")
def waitlist_simulate(
    area: Annotated[str, typer.Option(help="Code prefix: 11 (Seoul) or a 구 such as 11440")] = "11",
    applicant_rate: Annotated[float, typer.Option(help="Applicants per child aged 0-5")] = 0.3,
    hold_out: Annotated[float, typer.Option(min=0.0, max=1.0, help="Chance a child declines a non-first choice "
                                                                   "(sequential offers)")] = 0.3,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Compare the intake round with per-centre sequential offers on the real centres (nothing is written)."""
    from geo.admission.simulation import build_market, compare, table

    engine = migrated_engine()
    with engine.connect() as conn:
        market = build_market(conn, area=area, applicant_rate=applicant_rate, seed=seed)
    print(f"area {area}: {market.centres} centres, {len(market.preferences):,} synthetic applicants")
    print(table(compare(market, hold_out=hold_out)))
