"""api/static/tlog.js in a real browser (Debian chromium driven by Playwright, other hosts aborted) against a live
uvicorn: the page verifies the signed checkpoint with WebCrypto Ed25519 and every entry's inclusion with WebCrypto
SHA-256, from the public feed, as a parent's page does with ``GET /waitlist/log/mine``; an edited checkpoint, a
foreign key and an edited entry are refused. Expected values come from the Python implementation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from playwright.sync_api import sync_playwright
from psycopg.types.json import Jsonb
from sqlalchemy import text

from geo.admission import tlog, tlog_store
from geo.admission import waitlist as wl
from tests.api.test_map_browser import CHROMIUM, CHROMIUM_ARGS
from tests.geo.admission.waitutil import parent
from tests.serverutil import uvicorn_server

ORIGIN = "browser.dolbom.test/waitlist"
NOW = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)

CHECK = """async ([vkey, other]) => {
  const t = await import('/static/tlog.js');
  const note = await (await fetch('/waitlist/log/checkpoint')).text();
  const checkpoint = t.parseCheckpoint(await t.openNote(note, await t.parseVerifierKey(vkey)));
  const entries = await (await fetch(`/waitlist/log/entries?start=0&end=${checkpoint.size}`)).json();
  const events = [];
  for (const e of entries) {
    const proof = await (await fetch(`/waitlist/log/proof/inclusion?index=${e.index}&size=${checkpoint.size}`)).json();
    events.push({...e, proof: proof.proof});
  }
  const mine = await t.checkMine({checkpoint: note, events}, vkey);
  const edited = {...events[0], event: {...events[0].event, applied_at: '2026-01-01T00:00:00+00:00'}};
  const tampered = await t.checkMine({checkpoint: note, events: [edited]}, vkey);
  let forged = 'accepted';
  try {
    await t.openNote(note.replace(`\\n${checkpoint.size}\\n`, `\\n${checkpoint.size + 1}\\n`),
                     await t.parseVerifierKey(vkey));
  } catch (e) { forged = e.message; }
  let foreign = 'accepted';
  try { await t.openNote(note, await t.parseVerifierKey(other)); } catch (e) { foreign = e.message; }
  return {size: checkpoint.size, root: t.toBase64(checkpoint.root), verified: mine.events.map(e => e.verified),
          tampered: tampered.events.map(e => e.verified), forged, foreign};
}"""


@pytest.fixture(scope="module")
def live(make_database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    engine = make_database("tlog_browser")
    key_file = tmp_path_factory.mktemp("browser") / "log.key"
    signer = tlog_store.write_key(key_file, ORIGIN)
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO facilities (code, name, facility_type, status, district_code, capacity, enrolled,
                classes_by_age, free_by_age, geocode_quality, source, geom_4326)
            VALUES ('BROWSER001', '확인어린이집', 'national_public', 'active', '11140', 40, 0, :c, :f, 'source',
                    'test', ST_SetSRID(ST_MakePoint(126.978, 37.566), 4326))
        """), {"c": Jsonb({"0": 1}), "f": Jsonb({"0": 0, "total": 0})})
        for i in range(3):
            mum = parent(conn, f"browser{i}@example.kr")
            kid = wl.register_child(conn, parent_user_id=mum, name="아기", birth_date=date(2025, 5, 1), now=NOW)
            wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code="BROWSER001",
                     now=NOW + timedelta(minutes=i))
    env = {"DOLBOM_LOG_KEY_FILE": str(key_file), "DOLBOM_LOG_ORIGIN": ORIGIN}
    with uvicorn_server(engine.url.render_as_string(hide_password=False), extra_env=env) as url:
        yield url, signer.verifier.text()


def test_the_parents_device_checks_the_log(live: tuple[str, str]) -> None:
    import httpx

    url, vkey = live
    other = tlog.Signer.generate(ORIGIN).verifier.text()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url)
                       else route.abort())
            page.goto(f"{url}/waitlist/log/keys")
            result = page.evaluate(CHECK, [vkey, other])
        finally:
            browser.close()
    note = httpx.get(f"{url}/waitlist/log/checkpoint", timeout=30).text
    checkpoint = tlog.open_checkpoint(note, [tlog.parse_verifier(vkey)])[0]
    assert (result["size"], result["root"]) == (checkpoint.size, tlog.Checkpoint(
        ORIGIN, checkpoint.size, checkpoint.root_hash).text().splitlines()[2])
    assert checkpoint.size >= 6 and result["verified"] == [True] * checkpoint.size
    assert result["tampered"] == [False]
    assert "does not verify" in result["forged"]
    assert result["foreign"] == "no signature of the log's key"
