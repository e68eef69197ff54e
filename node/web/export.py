"""Tables as files: CSV (UTF-8 with a byte-order mark, so Excel reads the Chinese) and Excel.

Every export starts with what a table needs to stand on its own: its title,
the unit, the period and when it was made, then the headers (in the
user's language, Chinese by default) and the rows. Excel files are written
by XlsxWriter (write-only, pure Python, no template to ship).
"""

from __future__ import annotations

import csv
import io
from urllib.parse import quote

import xlsxwriter
from flask import Response

from node.errors import N_, ValidationError

FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="format",
                              value=str(fmt)[:20])
    return fmt


def response(fmt: str, filename: str, title: str, meta: list[tuple[str, str]],
             headers: list[str], rows: list[list]) -> Response:
    """The table as a download in ``fmt`` (csv or xlsx)."""
    data = (_csv if check_format(fmt) == "csv" else _xlsx)(title, meta, headers, rows)
    name = f"{filename}.{fmt}"
    return Response(data, mimetype=FORMATS[fmt], headers={
        "Content-Disposition": f"attachment; filename=\"{fmt}-export.{fmt}\"; "
                               f"filename*=UTF-8''{quote(name)}"})


def _csv(title, meta, headers, rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([title])
    for key, value in meta:
        writer.writerow([key, value])
    writer.writerow([])
    writer.writerow(headers)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _xlsx(title, meta, headers, rows) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet(title[:31].replace("/", "-") or "sheet")
    bold = book.add_format({"bold": True})
    head = book.add_format({"bold": True, "bg_color": "#F0EFE9", "border": 1,
                            "text_wrap": True, "valign": "top"})
    sheet.write(0, 0, title, book.add_format({"bold": True, "font_size": 14}))
    for i, (key, value) in enumerate(meta, start=1):
        sheet.write(i, 0, key, bold)
        sheet.write(i, 1, value)
    top = len(meta) + 2
    for col, name in enumerate(headers):
        sheet.write(top, col, name, head)
        width = max([len(str(name))] + [len(str(r[col])) for r in rows[:200] if col < len(r)])
        sheet.set_column(col, col, min(40, max(8, width * 1.6)))
    for r, row in enumerate(rows, start=top + 1):
        for c, value in enumerate(row):
            if value is not None:
                sheet.write(r, c, value)
    sheet.freeze_panes(top + 1, 1)
    book.close()
    return buffer.getvalue()
