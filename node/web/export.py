"""Tables as files: CSV (UTF-8 with a byte-order mark, so Excel reads the Chinese) and Excel.

Every export starts with what a table needs to stand on its own: its title,
the unit, the period and when it was made, then the headers (in the
user's language, Chinese by default) and the rows. Excel files are written
by XlsxWriter (write-only, pure Python, no template to ship).

The rows may be any iterable (the case lists read a page at a time): a CSV is sent as it
is made, and an Excel file is written row by row to a temporary file (XlsxWriter's
constant memory mode) and sent from it, so an export of a city's 300,000 cases does not
hold them all in the server's memory (issue 19).
"""

from __future__ import annotations

import csv
import io
import itertools
import tempfile
from collections.abc import Iterable
from urllib.parse import quote

import xlsxwriter
from flask import Response, stream_with_context
from werkzeug.wsgi import FileWrapper

from node.errors import N_, ValidationError

CHUNK = 500  # CSV rows made and sent at a time
FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="format",
                              value=str(fmt)[:20])
    return fmt


def response(fmt: str, filename: str, title: str, meta: list[tuple[str, str]],
             headers: list[str], rows: Iterable[list]) -> Response:
    """The table as a download in ``fmt`` (csv or xlsx)."""
    name = f"{filename}.{fmt}"
    heads = {"Content-Disposition": f"attachment; filename=\"{fmt}-export.{fmt}\"; "
                                    f"filename*=UTF-8''{quote(name)}"}
    if check_format(fmt) == "csv":
        made = _csv(title, meta, headers, rows)
        first = next(made)  # here, so that a refused filter is an error page, not a cut file
        return Response(stream_with_context(itertools.chain([first], made)),
                        mimetype=FORMATS[fmt], headers=heads)
    made = _xlsx(title, meta, headers, rows)
    heads["Content-Length"] = str(made.seek(0, io.SEEK_END))
    made.seek(0)
    return Response(FileWrapper(made), mimetype=FORMATS[fmt], headers=heads,
                    direct_passthrough=True)


def _csv(title, meta, headers, rows: Iterable[list]):
    """The CSV's bytes, a few hundred rows at a time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    out.write("\ufeff")
    writer.writerow([title])
    for key, value in meta:
        writer.writerow([key, value])
    writer.writerow([])
    writer.writerow(headers)
    rows = iter(rows)
    while True:
        chunk = list(itertools.islice(rows, CHUNK))
        writer.writerows(["" if v is None else v for v in row] for row in chunk)
        yield out.getvalue().encode("utf-8")
        if not chunk:
            return
        out.seek(0)
        out.truncate()


def _xlsx(title, meta, headers, rows: Iterable[list]):
    """The workbook, in a temporary file (deleted when closed) ready to be read."""
    made = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the response that sends it)
    rows = iter(rows)
    first = list(itertools.islice(rows, 200))  # the columns' widths follow the first rows
    book = xlsxwriter.Workbook(made, {"constant_memory": True})
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
        width = max([len(str(name))] + [len(str(r[col])) for r in first if col < len(r)])
        sheet.set_column(col, col, min(40, max(8, width * 1.6)))
    sheet.freeze_panes(top + 1, 1)
    for r, row in enumerate(itertools.chain(first, rows), start=top + 1):
        for c, value in enumerate(row):
            if value is not None:
                sheet.write(r, c, value)
    book.close()
    return made
