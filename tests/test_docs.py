"""The documentation: README is the front door (short, with the screenshot and the two commands), the manual in
docs/ builds with ``mkdocs build --strict`` (every page in the nav, every link and anchor found), and the package
tree of docs/architecture.md names exactly the packages and modules of the code."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from api.app import create_app
from geo.settings import PROJECT_ROOT, Settings

README = PROJECT_ROOT / "README.md"


def _architecture_tree() -> ModuleType:
    spec = importlib.util.spec_from_file_location("architecture_tree", PROJECT_ROOT / "scripts" / "architecture_tree.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_the_front_door() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 150
    for command in ("scripts/run", "scripts/test", 'scripts/test -m "not slow"'):
        assert command in text, command
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images and all((PROJECT_ROOT / image).is_file() for image in images)
    assert any(image.startswith("docs/img/") for image in images)


def test_readme_links_point_at_files_that_exist() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    assert local and [link for link in local if not (PROJECT_ROOT / link).exists()] == []


def test_architecture_tree_matches_the_code() -> None:
    """Regenerate with ``.venv/bin/python scripts/architecture_tree.py --write`` after moving a module."""
    tree = _architecture_tree()
    in_code = {path for path, _ in tree.entries()}
    documented = tree.parse(tree.documented_block((PROJECT_ROOT / "docs" / "architecture.md").read_text("utf-8")))
    assert sorted(documented - in_code) == [] and sorted(in_code - documented) == []
    # Every package of the three roots and every top-level module is there, each with its purpose.
    packages = {p.parent.relative_to(PROJECT_ROOT).as_posix() + "/" for root in ("geo", "api", "tiles")
                for p in (PROJECT_ROOT / root).rglob("__init__.py")}
    modules = {p.relative_to(PROJECT_ROOT).as_posix() for root in ("geo", "api", "tiles")
               for p in (PROJECT_ROOT / root).glob("*.py") if p.name != "__init__.py"}
    assert packages | modules <= in_code
    assert all(purpose for _, purpose in tree.entries())


def test_architecture_tree_parses_back_to_its_entries(tmp_path: Path) -> None:
    tree = _architecture_tree()
    (tmp_path / "geo" / "search").mkdir(parents=True)
    (tmp_path / "geo" / "__init__.py").write_text('"""Core. More."""\n')
    (tmp_path / "geo" / "db.py").write_text('"""Database\naccess. Details."""\n')
    (tmp_path / "geo" / "search" / "__init__.py").write_text('"""Search."""\n')
    (tmp_path / "geo" / "search" / "sql.py").write_text('"""Not listed: below the top level."""\n')
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "__init__.py").write_text("")
    (tmp_path / "tiles").mkdir()
    (tmp_path / "tiles" / "__init__.py").write_text('"""Tiles."""\n')
    entries = tree.entries(tmp_path)
    assert entries == [("geo/", "Core."), ("geo/db.py", "Database access."), ("geo/search/", "Search."),
                       ("api/", ""), ("tiles/", "Tiles.")]
    assert tree.parse(tree.tree(tmp_path)) == {path for path, _ in entries}


def test_mkdocs_builds_strict(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    pages = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("index.html")}
    for page in ("index.html", "architecture/index.html", "roles/parent/index.html", "settings/index.html",
                 "benchmarks/index.html"):
        assert page in pages, page
    # The benchmarks page is benchmarks/README.md itself (included), not a copy.
    assert "bench_load" in (tmp_path / "benchmarks" / "index.html").read_text(encoding="utf-8")


# "GET /path", "GET/POST /path", "POST /x/{id}/accept|decline", "GET /ogc/collections[/{id}]" in the manual.
ENDPOINT = re.compile(r"\b((?:GET|POST|PUT|PATCH|DELETE)(?:/(?:GET|POST|PUT|PATCH|DELETE))*) (/[^\s`?),]*)")
PAGES = ("/", "/docs", "/redoc", "/openapi.json")


def _mentioned_endpoints(text: str) -> set[tuple[str, str]]:
    text = re.sub(r"\{[^}]*\}", "{}", text)
    found = set()
    for methods, path in ENDPOINT.findall(text):
        path = path.rstrip(".:;")
        paths = [path.replace("[/{}]", ""), path.replace("[/{}]", "/{}")] if "[/{}]" in path else [path]
        head, _, tail = paths[0].rpartition("/")
        if "|" in tail:
            paths = [f"{head}/{alternative}" for alternative in tail.split("|")]
        found |= {(method, p) for method in methods.split("/") for p in paths}
    return found


def test_every_endpoint_the_manual_names_exists() -> None:
    spec = create_app(Settings()).openapi()
    served = {(method.upper(), re.sub(r"\{[^}]+\}", "{}", path)) for path, item in spec["paths"].items()
              for method in item} | {("GET", page) for page in PAGES}
    named: dict[tuple[str, str], str] = {}
    for page in sorted((PROJECT_ROOT / "docs").rglob("*.md")):
        for endpoint in _mentioned_endpoints(page.read_text(encoding="utf-8")):
            named.setdefault(endpoint, page.relative_to(PROJECT_ROOT).as_posix())
    assert len(named) > 40
    assert {e: p for e, p in named.items() if e not in served} == {}


@pytest.mark.parametrize("role", ["parent", "centre-staff", "district-officer", "city-admin", "gis", "operator"])
def test_every_role_walkthrough_names_only_real_endpoints_and_says_what_exists_today(role: str) -> None:
    text = (PROJECT_ROOT / "docs" / "roles" / f"{role}.md").read_text(encoding="utf-8")
    assert "**Today**" in text or "**Today:**" in text
    assert (PROJECT_ROOT / "docs" / "roles" / "index.md").read_text(encoding="utf-8").count(f"({role}.md)") == 1
