"""Personal data typed into free text: ID numbers and phone numbers found by their shape,
and a petitioner's recorded name where it occurs. Pure.

Liaisons write what they hear, and what they hear includes "身份证11010519491231002X"
and "电话13800138000". ``find`` detects ID numbers (with a valid GB 11643 check digit,
so an invoice number of 18 digits is left alone) and mainland mobile and landline
numbers; the register form tells the liaison and offers to move each into the
petitioner's own field, and what stays in the text is committed like a limited
petitioner field (node/disclosure.py) and masked for a masked viewer (``mask``).

Names cannot be found by a pattern: a Chinese name is two to four ordinary
characters. What is done is honest and limited: the case's own petitioners' recorded
names are found where they occur in that case's text; any other name a liaison
writes (a relative, a neighbour, an official) is not, and docs/routing.md says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from node import i18n, validate
from node.errors import ValidationError

_ID = re.compile(r"(?<![0-9A-Za-z])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])"
                 r"(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
_LANDLINE = re.compile(r"(?<![0-9-])0[0-9]{2,3}-[0-9]{7,8}(?![0-9])")
KINDS = ("id_number", "phone", "name")
i18n.add_labels("what", {"id_number": ("身份证号", "an ID number"),
                         "phone": ("电话号码", "a phone number"), "name": ("姓名", "a name")})


@dataclass(frozen=True)
class Found:
    kind: str    # id_number | phone | name
    start: int
    end: int
    value: str


def _valid_id(value: str) -> bool:
    try:
        validate.id_number("text", value)
    except ValidationError:
        return False
    return True


def find(text: str, names=()) -> list[Found]:
    """ID numbers, phone numbers and the given ``names`` in ``text``, in order, none
    overlapping (an ID number's digits are not also a phone number)."""
    if not isinstance(text, str) or not text:
        return []
    found = [Found("id_number", m.start(), m.end(), m.group()) for m in _ID.finditer(text)
             if _valid_id(m.group())]
    for pattern in (_MOBILE, _LANDLINE):
        found += [Found("phone", m.start(), m.end(), m.group()) for m in pattern.finditer(text)]
    for name in sorted({n for n in names if isinstance(n, str) and len(n) >= 2}, key=len,
                       reverse=True):
        start = text.find(name)
        while start != -1:
            found.append(Found("name", start, start + len(name), name))
            start = text.find(name, start + len(name))
    out, end = [], -1
    for f in sorted(found, key=lambda f: (f.start, -(f.end - f.start))):
        if f.start >= end:
            out.append(f)
            end = f.end
    return out


def masked(found: Found) -> str:
    """What a masked viewer sees of a found value: as the petitioner's own fields show."""
    v = found.value
    if found.kind == "name":
        return v[0] + "*" * (len(v) - 1)
    keep = (4, 2) if found.kind == "id_number" else (3, 2)
    return v[:keep[0]] + "*" * (len(v) - sum(keep)) + v[-keep[1]:]


def mask(text: str | None, names=()) -> str | None:
    """``text`` with every ID number, phone number and given name masked."""
    if not text:
        return text
    out, at = [], 0
    for f in find(text, names):
        out += [text[at:f.start], masked(f)]
        at = f.end
    return "".join(out) + text[at:]


def move_into_person(fields: dict, text_fields, person: dict) -> tuple[dict, dict]:
    """The liaison's choice on the register form: each ID number and phone number found in
    ``text_fields`` goes into the petitioner's own field when that field is empty, and out
    of the text. Returns (the fields, the person), both changed copies."""
    fields, person = dict(fields), dict(person)
    for name in text_fields:
        text = fields.get(name)
        for f in reversed(find(text) if isinstance(text, str) else []):
            key = f.kind
            if key in ("id_number", "phone") and not person.get(key):
                person[key] = f.value.upper() if key == "id_number" else f.value
            if person.get(key) == (f.value.upper() if key == "id_number" else f.value):
                text = (text[:f.start] + text[f.end:]).replace("  ", " ")
        fields[name] = text.strip() if isinstance(text, str) else text
    return fields, person
