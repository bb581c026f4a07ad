"""The ``dolbom`` Typer application and ``main``, its entry point: every error is one line on stderr."""

from __future__ import annotations

import sys

import typer

from geo.cli.common import describe, error_line
from geo.errors import DolbomError

app = typer.Typer(help="dolbom: childcare search and admission platform (PostGIS + FastAPI).",
                  no_args_is_help=True, pretty_exceptions_enable=False)


def main(argv: list[str] | None = None) -> None:
    """Run the ``dolbom`` command line; errors become one line on stderr and a non-zero exit status."""
    try:
        code = app(args=argv, prog_name="dolbom", standalone_mode=False)
    except typer.Abort:
        error_line("interrupted")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors (typer's click)
        if type(exc).__name__ == "NoArgsIsHelpError":  # `dolbom` or `dolbom db` alone: the help, not an error
            exc.show()  # type: ignore[attr-defined]
            sys.exit(2)
        error_line(getattr(exc, "format_message", exc.__str__)())
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except DolbomError as exc:
        error_line(exc.detail)
        sys.exit(1)
    except Exception as exc:  # the command line never shows a traceback
        error_line(describe(exc))
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
