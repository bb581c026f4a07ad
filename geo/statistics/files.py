"""A statistics table as a file: CSV (UTF-8 with a byte-order mark, so Excel opens Korean text right) and XLSX
(one sheet, typed cells, labels in the header row and the table's definition in a second sheet)."""

from __future__ import annotations

import csv
import io

from geo.statistics.tables import Table, value_name


def to_csv(table: Table, *, lang: str = "ko") -> bytes:
    """The table as CSV: a header of the columns' labels in ``lang``, then the rows; empty cells for nulls."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.label(lang) for c in table.columns])
    for row in table.rows:
        writer.writerow(["" if row.get(c.name) is None else value_name(table.definition.id, c.name, row[c.name], lang)
                         for c in table.columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(table: Table, *, lang: str = "ko") -> bytes:
    """The table as an XLSX workbook: sheet 1 the data (numbers as numbers), sheet 2 what the table counts."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = table.definition.id[:31]
    sheet.append([c.label(lang) for c in table.columns])
    for row in table.rows:
        sheet.append([value_name(table.definition.id, c.name, row.get(c.name), lang) for c in table.columns])
    sheet.freeze_panes = "A2"
    for i, column in enumerate(table.columns, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = max(10, len(column.label(lang)) * 2)
    about = book.create_sheet("about")
    d = table.definition
    about.append(["table", d.id])
    about.append(["title", d.en if lang == "en" else d.ko])
    about.append(["definition", d.about_en if lang == "en" else d.about_ko])
    about.append(["level", table.level.value])
    about.append(["district", table.district_code or ""])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
