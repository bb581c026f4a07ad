"""``python -m geo.watch URL --state DIR --key VERIFIER_KEY``: the watcher without the rest of dolbom's command
line (the same as ``dolbom watch``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geo.watch.watcher import run


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run once; the exit status of ``run``."""
    parser = argparse.ArgumentParser(prog="python -m geo.watch", description=__doc__)
    parser.add_argument("url", help="base URL of the dolbom server")
    parser.add_argument("--state", type=Path, required=True, help="this watcher's own folder (its copy)")
    parser.add_argument("--key", action="append", required=True,
                        help="a verifier key of the log (name+id+key); repeat during a key rotation")
    parser.add_argument("--origin", help="the log's origin line (default: any the keys sign)")
    args = parser.parse_args(argv)
    return run(args.url, args.state, args.key, origin=args.origin)


if __name__ == "__main__":
    sys.exit(main())
