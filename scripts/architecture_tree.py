#!/usr/bin/env python3
"""Print the package tree of ``geo/``, ``api/`` and ``tiles/`` for docs/architecture.md: every package directory
(a directory with ``__init__.py``, and the Alembic ``geo/migrations``) and every module directly under the three
roots, each with the first sentence of its docstring.

    .venv/bin/python scripts/architecture_tree.py            # print the fenced block
    .venv/bin/python scripts/architecture_tree.py --write    # replace it in docs/architecture.md

``tests/test_docs.py`` checks that the block in docs/architecture.md names exactly these directories and modules;
after moving a module, run ``--write``.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("geo", "api", "tiles")
DOC = ROOT / "docs" / "architecture.md"
BEGIN = "<!-- architecture-tree: begin (scripts/architecture_tree.py --write) -->"
END = "<!-- architecture-tree: end -->"
WIDTH = 28


def _first_line(path: Path) -> str:
    """The first sentence of a module's docstring (of ``__init__.py``, or ``env.py`` for Alembic) on one line,
    or ''."""
    if path.is_dir():
        path = path / "__init__.py" if (path / "__init__.py").exists() else path / "env.py"
    if not path.exists():
        return ""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    if not doc:
        return ""
    paragraph = " ".join(line.strip() for line in doc.strip().split("\n\n")[0].splitlines())
    sentence, dot, _ = paragraph.partition(". ")
    return sentence + dot.strip()


def _is_package(path: Path) -> bool:
    return path.is_dir() and ((path / "__init__.py").exists() or path.relative_to(ROOT).as_posix() == "geo/migrations")


def entries(root: Path = ROOT) -> list[tuple[str, str]]:
    """(path relative to the project, one-line purpose): each root, its package directories (recursively) and
    the modules directly under it, in tree order."""
    found: list[tuple[str, str]] = []

    def walk(directory: Path, top: bool) -> None:
        found.append((directory.relative_to(root).as_posix() + "/", _first_line(directory)))
        if top:
            for module in sorted(directory.glob("*.py")):
                if module.name != "__init__.py":
                    found.append((module.relative_to(root).as_posix(), _first_line(module)))
        for child in sorted(p for p in directory.iterdir() if _is_package(p)):
            walk(child, top=False)

    for name in PACKAGES:
        walk(root / name, top=True)
    return found


def tree(root: Path = ROOT) -> str:
    """The fenced block: one line per entry, indented by depth, the purpose after the name."""
    lines = []
    for path, purpose in entries(root):
        depth = path.rstrip("/").count("/")
        name = path.rstrip("/").rsplit("/", 1)[-1] + ("/" if path.endswith("/") else "")
        label = "  " * depth + name
        lines.append(f"{label:<{WIDTH}} {purpose}".rstrip() if purpose else label)
    return "```text\n" + "\n".join(lines) + "\n```"


def parse(block: str) -> set[str]:
    """The paths a tree block names (the inverse of ``tree`` for the names; purposes are ignored)."""
    stack: list[str] = []
    paths: set[str] = set()
    for line in block.splitlines():
        if not line.strip() or line.startswith("```"):
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.strip().split()[0]
        stack = stack[:depth]
        path = "/".join([*stack, name.rstrip("/")])
        if name.endswith("/"):
            stack.append(name.rstrip("/"))
            paths.add(path + "/")
        else:
            paths.add(path)
    return paths


def documented_block(text: str) -> str:
    """The block between the markers of docs/architecture.md."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="replace the block in docs/architecture.md")
    args = parser.parse_args()
    block = tree()
    if not args.write:
        print(block)
        return 0
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + "\n" + block + "\n" + text[end:], encoding="utf-8")
    print(f"wrote the tree into {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
