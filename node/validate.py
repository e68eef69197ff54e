"""Field validation shared by every domain module. Pure: no flask, no sqlite.

Single-line fields (names, addresses, departments) refuse HTML markup: they
are identifiers people and printouts rely on, and markup there is never
legitimate. Free-text fields (summary, request, facts, reply) record the
petitioner's own words verbatim, markup included: nothing is edited in
place, and every page escapes text on output, so a ``<script>`` in a summary
is shown as text, never run. Each function returns the normalised value or
raises ValidationError naming the field.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import date, datetime

from node.errors import N_, ValidationError

MAX_LINE = 200
MAX_TEXT = 10000
_MARKUP = re.compile(r"<\s*[/!]?\s*[A-Za-z!-]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _fail(msgid: str, field: str, **params):
    raise ValidationError(msgid, field=field, **params)


def _control(value: str, allowed: str = "") -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf") and c not in allowed for c in value)


def _string(field: str, value, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            _fail(N_("%(field)s is required"), field)
        return None
    if not isinstance(value, str):
        _fail(N_("%(field)s must be text"), field)
    return unicodedata.normalize("NFC", value).strip()


def line(field: str, value, *, required: bool = True, max_len: int = MAX_LINE) -> str | None:
    value = _string(field, value, required)
    if value is None:
        return None
    if "\n" in value or "\r" in value or _control(value):
        _fail(N_("%(field)s must be one line without control characters"), field)
    if _MARKUP.search(value):
        _fail(N_("%(field)s may not contain markup such as <script>"), field)
    if len(value) > max_len:
        _fail(N_("%(field)s is longer than %(n)s characters"), field, n=max_len)
    return value


def text(field: str, value, *, required: bool = True, max_len: int = MAX_TEXT) -> str | None:
    if isinstance(value, str):
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = _string(field, value, required)
    if value is None:
        return None
    if _control(value, "\n\t"):
        _fail(N_("%(field)s contains control characters"), field)
    if len(value) > max_len:
        _fail(N_("%(field)s is longer than %(n)s characters"), field, n=max_len)
    return value


def id_number(field: str, value, *, required: bool = False,
              today: date | None = None) -> str | None:
    """A resident ID number (GB 11643-1999) with its ISO 7064 MOD 11-2 check digit."""
    value = _string(field, value, required)
    if value is None:
        return None
    value = value.upper()
    if re.fullmatch(r"\d{15}", value):
        _fail(N_("%(field)s: 15-digit ID numbers are no longer valid; ask for the 18-digit "
                 "number"), field)
    if not re.fullmatch(r"\d{17}[\dX]", value):
        _fail(N_("%(field)s: an ID number is 17 digits and a digit or X"), field)
    try:
        born = datetime.strptime(value[6:14], "%Y%m%d").date()
    except ValueError:
        born = None
    if born is None or not date(1900, 1, 1) <= born <= (today or date.today()):
        _fail(N_("%(field)s: the birth date in the ID number is not valid"), field)
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != value[17]:
        _fail(N_("%(field)s: the check digit is wrong; please check the number"), field)
    return value


def phone(field: str, value, *, required: bool = False) -> str | None:
    value = _string(field, value, required)
    if value is None:
        return None
    compact = re.sub(r"[\s-]", "", value)
    if re.fullmatch(r"1[3-9]\d{9}", compact):
        return compact
    m = re.fullmatch(r"(0\d{2,3})-?(\d{7,8})(?:-(\d{1,6}))?", value.replace(" ", ""))
    if m:
        return f"{m.group(1)}-{m.group(2)}" + (f"-{m.group(3)}" if m.group(3) else "")
    _fail(N_("%(field)s: not a mobile or landline number"), field)


def choice(field: str, value, allowed: Iterable[str], *, required: bool = True) -> str | None:
    if value in (None, "") and not required:
        return None
    if value not in set(allowed):
        _fail(N_("%(field)s: unknown value %(value)s"), field, value=value)
    return value


def integer(field: str, value, *, minimum: int | None = None, maximum: int | None = None,
            required: bool = True) -> int | None:
    if value in (None, "") and not required:
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,12}\s*", value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(N_("%(field)s must be a whole number"), field)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        _fail(N_("%(field)s must be between %(min)s and %(max)s"), field,
              min=minimum if minimum is not None else "-", max=maximum or "-")
    return value


def a_date(field: str, value, *, required: bool = True) -> date | None:
    if value in (None, ""):
        if required:
            _fail(N_("%(field)s is required"), field)
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    _fail(N_("%(field)s: %(value)s is not a date (YYYY-MM-DD)"), field, value=value)


def future_date(field: str, value, *, today: date, required: bool = True) -> date | None:
    value = a_date(field, value, required=required)
    if value is not None and value <= today:
        _fail(N_("%(field)s: the date %(value)s is in the past"), field, value=value)
    return value


def node_id(field: str, value) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{1,31}", value):
        _fail(N_("%(field)s: 2 to 32 letters, digits, - or _ (got %(value)r)"), field,
              value=value)
    return value


def username(field: str, value) -> str:
    value = value.lower() if isinstance(value, str) else value
    if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9_.-]{1,31}", value):
        _fail(N_("%(field)s: 2 to 32 lower-case letters, digits, . _ or -, starting with a "
                 "letter"), field)
    return value
