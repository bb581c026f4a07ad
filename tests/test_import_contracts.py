"""The import rules of STYLE.md, checked by import-linter (``.importlinter``): geo/ below the web layer, tiles/
beside api/, a core that imports no capability, no import circle in geo/ (models included)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def _lint_imports(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LINT_IMPORTS, "--config", str(config), "--no-cache"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_are_kept() -> None:
    done = _lint_imports(PROJECT_ROOT / ".importlinter")
    assert done.returncode == 0, done.stdout + done.stderr
    kept = [line for line in done.stdout.splitlines() if line.rstrip().endswith("KEPT")]
    assert len(kept) >= 5, done.stdout  # every contract of the file was checked


def test_a_broken_contract_fails_the_check(tmp_path: Path) -> None:
    # geo.validation imports geo.settings: a contract forbidding that must be reported broken (exit status 1),
    # which is what makes the test above able to fail.
    config = tmp_path / "broken.ini"
    config.write_text((PROJECT_ROOT / ".importlinter").read_text() + """
[importlinter:contract:deliberately-broken]
name = validation without settings (broken on purpose)
type = forbidden
source_modules =
    geo.validation
forbidden_modules =
    geo.settings
""")
    done = _lint_imports(config)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "validation without settings (broken on purpose) BROKEN" in done.stdout
    assert "geo.validation -> geo.settings" in done.stdout
