"""The optional nginx tile cache: the generated configuration is one nginx accepts, caching only /tiles/."""

from __future__ import annotations

import getpass
import os
import subprocess
from pathlib import Path

import pytest

from tiles.nginx import find_nginx, tile_cache_config


def test_config_caches_tiles_only_and_revalidates(tmp_path: Path) -> None:
    text = tile_cache_config(upstream="127.0.0.1:8000", listen="127.0.0.1:8080", prefix=tmp_path, valid_s=2)
    tiles_block = text.split("location /tiles/ {")[1].split("}")[0]
    rest_block = text.split("location / {")[1].split("}")[0]
    assert "proxy_cache dolbom_tiles;" in tiles_block and "proxy_cache_valid 200 2s;" in tiles_block
    assert "proxy_cache_revalidate on;" in tiles_block
    assert "proxy_cache " not in rest_block and "proxy_pass http://dolbom;" in rest_block


@pytest.mark.skipif(find_nginx() is None, reason="Debian's nginx is not installed (it is optional)")
def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    user = getpass.getuser() if os.geteuid() == 0 else None
    conf = tmp_path / "nginx.conf"
    conf.write_text(tile_cache_config(upstream="127.0.0.1:8000", listen="127.0.0.1:18080", prefix=tmp_path,
                                      user=user), encoding="utf-8")
    nginx = find_nginx()
    assert nginx is not None
    result = subprocess.run([str(nginx), "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
