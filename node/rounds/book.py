"""The register (登记造册) as an Excel workbook, both ways.

Export: one sheet in the layout offices keep by hand: a title row (the unit, 矛盾纠纷排查
登记表, the date), a header row, one row per entry, people of one entry joined by 、.
Import: the same layout (or any sheet whose header row has these columns, in Chinese or
English, in any order): a row with a number (编号) of this unit's register updates that
entry, a row without one records a new entry. Every row is checked first; if any is
wrong, nothing is imported and each wrong row is named with its reason.
"""

from __future__ import annotations

import io
from datetime import date, datetime

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils.exceptions import InvalidFileException

from node import i18n, store
from node.cases.vocab import CATEGORIES, code_of
from node.errors import N_, NodeError, ValidationError
from node.rounds import commands
from node.rounds.rules import ENTRY_KINDS, ENTRY_STATES, RISKS, clean_record, clean_update

# (key, Chinese header, English header, width)
COLUMNS = (("n", "序号", "No.", 6), ("id", "编号", "Number", 22),
           ("kind", "类别", "Kind", 12), ("title", "名称/事由", "Title", 30),
           ("names", "涉及人员", "People", 14), ("id_numbers", "身份证号码", "ID numbers", 22),
           ("phones", "联系电话", "Phones", 15), ("place", "地点", "Place", 16),
           ("category", "信访类别", "Category", 12), ("risk", "风险等级", "Risk", 9),
           ("responsible", "稳控责任人", "Responsible", 12),
           ("measures", "化解措施", "Measures", 30), ("status", "状态", "Status", 9),
           ("recorded_on", "首次登记", "Recorded", 12), ("last_round", "最近排查", "Last round",
                                                         22),
           ("note", "备注", "Note", 20))
HEADERS = {h: key for key, zh, en, _ in COLUMNS for h in (zh, en)}
MAX_ROWS = 5000
MAX_ERRORS = 20


class ImportRefused(ValidationError):
    """A workbook with wrong rows: nothing of it was imported."""

    code = "import_refused"


def _label(vocabulary: dict, code, lang: str) -> str:
    pair = vocabulary.get(code)
    return code if pair is None else pair[0 if lang == "zh" else 1]


def export(node, entries: list[dict], lang: str = "zh", title: str | None = None,
           masked: bool = False) -> bytes:
    """The workbook of ``entries`` (commands.register's rows); ``masked`` hides ID numbers
    and phones (for a reader who may not see them)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "登记表" if lang == "zh" else "Register"
    heading = title or i18n.translate(N_("%(unit)s register of unstable factors and disputes "
                                         "(排查登记表), as of %(date)s"), lang,
                                      unit=node.settings["NODE_NAME"],
                                      date=node.today().isoformat())
    ws.append([heading])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(COLUMNS))
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = Alignment(horizontal="center")
    ws.append([zh if lang == "zh" else en for _, zh, en, _ in COLUMNS])
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for n, e in enumerate(entries, start=1):
        people = e.get("people") or []

        def joined(key, hide, people=people):
            values = [p.get(key) or "" for p in people]
            if masked:
                values = [hide(v) for v in values]
            return "、".join(values) if any(values) else ""
        row = {"n": n, "id": e["id"], "kind": _label(ENTRY_KINDS, e["kind"], lang),
               "title": e["title"], "names": joined("name", lambda v: v[:1] + "*" * (
                   len(v) - 1) if v else v),
               "id_numbers": joined("id_number", lambda v: v[:4] + "*" * 12 + v[-2:] if v
                                    else v),
               "phones": joined("phone", lambda v: v[:3] + "****" + v[-2:] if v else v),
               "place": e.get("place") or "", "category": _label(CATEGORIES, e["category"], lang),
               "risk": _label(RISKS, e["risk"], lang), "responsible": e["responsible"],
               "measures": e.get("measures") or "", "status": _label(ENTRY_STATES, e["status"],
                                                                      lang),
               "recorded_on": e["recorded_on"], "last_round": e.get("last_round") or "",
               "note": e.get("note") or ""}
        ws.append([row[key] for key, *_ in COLUMNS])
    for i, (_, _, _, width) in enumerate(COLUMNS, start=1):
        ws.column_dimensions[ws.cell(row=2, column=i).column_letter].width = width
    ws.freeze_panes = "A3"
    for row in ws.iter_rows(min_row=3):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _split(value) -> list[str]:
    text = _text(value) or ""
    return [p.strip() for p in text.replace(",", "、").replace("，", "、").split("、")]


def read_rows(data: bytes) -> list[tuple[int, dict]]:
    """(row number in the sheet, {column key: text}) of every filled row under the header."""
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError, TypeError):
        raise ValidationError(N_("%(field)s: not an Excel workbook (.xlsx)"),
                              field="file") from None
    ws = wb.worksheets[0]
    header, keys, out = None, {}, []
    for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
        cells = [_text(v) for v in values]
        if header is None:
            found = {i: HEADERS[c] for i, c in enumerate(cells) if c in HEADERS}
            if {"title", "responsible"} <= set(found.values()):
                header, keys = number, found
            continue
        row = {keys[i]: c for i, c in enumerate(cells) if i in keys and c is not None}
        if any(k not in ("n",) for k in row):
            out.append((number, row))
        if len(out) > MAX_ROWS:
            raise ValidationError(N_("%(field)s: more than %(n)s rows; split the workbook"),
                                  field="file", n=MAX_ROWS)
    wb.close()
    if header is None:
        raise ValidationError(N_("%(field)s: no header row with the columns 名称/事由 and "
                                 "稳控责任人 (or Title and Responsible)"), field="file")
    return out


def _fields(row: dict) -> dict:
    names, ids, phones = (_split(row.get(k)) for k in ("names", "id_numbers", "phones"))
    people = []
    for i, name in enumerate(names):
        if not name:
            continue
        person = {"name": name}
        if i < len(ids) and ids[i]:
            person["id_number"] = ids[i]
        if i < len(phones) and phones[i]:
            person["phone"] = phones[i]
        people.append(person)
    fields = {k: row[k] for k in ("title", "place", "responsible", "measures", "note")
              if row.get(k)}
    for key, vocabulary in (("kind", ENTRY_KINDS), ("category", CATEGORIES), ("risk", RISKS)):
        if row.get(key):
            fields[key] = code_of(vocabulary, key, row[key])
    if people:
        fields["people"] = people
    return fields


def import_rows(node, actor, data: bytes, round_id: str | None = None) -> dict:
    """Import a workbook into this unit's register: everything or nothing. Returns
    {"recorded": n, "updated": n, "unchanged": n}; raises ImportRefused naming the rows."""
    if round_id:
        commands.get(node, round_id)
    rows, plan, errors = read_rows(data), [], []
    for number, row in rows:
        try:
            fields = _fields(row)
            if row.get("id"):
                entry = commands.get_entry(node, row["id"])
                if entry["origin_node"] != node.id:
                    raise ValidationError(N_("%(field)s: %(value)s is not in this unit's "
                                             "register"), field="id", value=row["id"])
                changed = {k: v for k, v in fields.items()
                           if k in ("title", "place", "risk", "responsible", "measures", "note")
                           and v != entry.get(k)}
                if round_id:
                    changed["round"] = round_id
                if changed:
                    clean_update(dict(changed))
                plan.append(("update", row["id"], changed))
            else:
                if round_id:
                    fields["round"] = round_id
                clean_record(dict(fields))
                plan.append(("record", None, fields))
        except NodeError as e:
            errors.append((number, e))
    if errors:
        lines = "; ".join(f"{n}: {e.english()}" for n, e in errors[:MAX_ERRORS])
        raise ImportRefused(N_("%(n)s rows are wrong, nothing was imported: %(rows)s"),
                            n=len(errors), rows=lines, field="file")
    done = {"recorded": 0, "updated": 0, "unchanged": 0}
    with store.write(node.db):  # all rows or none (a savepoint inside the caller's)
        for what, entry_id, fields in plan:
            if what == "record":
                commands.record(node, actor, fields)
                done["recorded"] += 1
            elif fields:
                commands.update(node, actor, entry_id, fields)
                done["updated"] += 1
            else:
                done["unchanged"] += 1
    return done
