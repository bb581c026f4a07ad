"""Write an nginx configuration that caches tiles in front of the dolbom API (optional; see docs/layers.md).

    python scripts/nginx_tile_cache.py --upstream 127.0.0.1:8000 --listen 8080 --prefix /var/cache/dolbom-nginx \
        > /etc/dolbom/nginx-tiles.conf
    nginx -p /var/cache/dolbom-nginx -c /etc/dolbom/nginx-tiles.conf
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tiles.nginx import tile_cache_config


def main(argv: list[str] | None = None) -> int:
    """Print the configuration."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", default="127.0.0.1:8000", help="the API's host:port")
    parser.add_argument("--listen", default="8080", help="where nginx listens (port or host:port)")
    parser.add_argument("--prefix", type=Path, required=True, help="directory for the cache, temp files, pid, log")
    parser.add_argument("--valid-s", type=int, default=1, help="seconds a tile is served before revalidation")
    parser.add_argument("--workers", type=int, default=1, help="nginx worker processes")
    parser.add_argument("--user", help="user of the worker processes (when nginx starts as root)")
    args = parser.parse_args(argv)
    print(tile_cache_config(upstream=args.upstream, listen=args.listen, prefix=args.prefix.resolve(),
                            valid_s=args.valid_s, worker_processes=args.workers, user=args.user), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
