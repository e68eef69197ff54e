"""Field validation shared by every domain module. Pure: no flask, no sqlite.

Single-line fields (names, addresses, departments, titles) refuse HTML/XML
markup: they are identifiers that people, lists and printouts rely on, and
markup in them is never legitimate. Free-text fields (summary, request,
facts, reply) record the petitioner's own words verbatim, markup included:
a record is evidence and is never edited, and every page escapes text on
output, so a ``<script>`` in a summary is shown as text and never run.

Each function returns the normalised value or raises ValidationError whose
params always include ``field``, so the edge can point at the field. The
message ids must stay in step with the translation catalogue.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import NoReturn

from node.errors import N_, ValidationError

MAX_LINE = 200  # default max length of a single-line field
MAX_TEXT = 10000  # default max length of a free-text field

# A tag, end tag, comment, doctype or processing instruction; "收入<500元" and "a < b" are not.
_MARKUP = re.compile(r"<(?:[/!?]?[A-Za-z]|!--)")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
_ID_ZERO = ord("0") * sum(ID_WEIGHTS)  # what the digits' ASCII codes add to the weighted sum
_ID_OLD = re.compile(r"[0-9]{15}")
_ID_NUMBER = re.compile(r"[0-9]{17}[0-9X]")
_SPACE = re.compile(r"\s")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_LANDLINE = re.compile(r"(0[0-9]{2,3}-[0-9]{7,8}|0[0-9]{9,11})(-[0-9]{1,6})?")
_ID_EARLIEST = date(1900, 1, 1)
_JOINERS = "\u200c\u200d"  # zero-width (non-)joiner: part of emoji and some scripts
_IMPORTED_ON = date.today()  # a day never after today: most dates are checked against it


class Fields:
    """Checks a form's fields one after another and keeps every error, so people see all
    they must fix at once rather than one per submit::

        fields = validate.Fields()
        name = fields.check(validate.line, "name", body.get("name"))
        ...
        fields.done()  # raises the first error, carrying them all in ``.all``
    """

    def __init__(self) -> None:
        self.errors: list[ValidationError] = []

    def check(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``, or None with its error(s) kept."""
        try:
            return fn(*args, **kwargs)
        except ValidationError as e:
            self.errors.extend(e.all)
            return None

    def done(self) -> None:
        if self.errors:
            raise ValidationError.of(self.errors)


def _fail(msgid: str, field: str, **params) -> NoReturn:
    raise ValidationError(msgid, field=field, **params)


def _bad_chars(value: str, allowed: str = "") -> bool:
    """Control (Cc), format (Cf) or line/paragraph separator characters not in ``allowed``."""
    if value.isprintable():
        return False  # the common case, checked in C: no Cc, Cf, Zl or Zp at all
    plain = value
    for c in allowed:
        plain = plain.replace(c, "")
    if plain.isprintable():
        return False  # (a text's line breaks and tabs, say)
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c not in allowed
               for c in value)


def _string(field: str, value, required: bool) -> str | None:
    """Common start: None/blank -> None or "required"; non-str refused; NFC and stripped."""
    if isinstance(value, str):
        value = unicodedata.normalize("NFC", value).strip()  # (blank stays blank)
    elif value is not None:
        _fail(N_("%(field)s must be text"), field)
    if not value:
        if required:
            _fail(N_("%(field)s is required"), field)
        return None
    return value


def _max_len(field: str, value: str, max_len: int) -> str:
    if len(value) > max_len:
        _fail(N_("%(field)s is longer than %(n)s characters"), field, n=max_len)
    return value


def line(field: str, value, *, required: bool = True, max_len: int = MAX_LINE) -> str | None:
    value = _string(field, value, required)
    if value is None:
        return None
    if _bad_chars(value):
        _fail(N_("%(field)s must be one line without control characters"), field)
    if "<" in value and _MARKUP.search(value):
        _fail(N_("%(field)s may not contain markup such as <script>"), field)
    return _max_len(field, value, max_len)


def text(field: str, value, *, required: bool = True, max_len: int = MAX_TEXT) -> str | None:
    if isinstance(value, str):
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = _string(field, value, required)
    if value is None:
        return None
    if _bad_chars(value, "\n\t\u2028\u2029" + _JOINERS):
        _fail(N_("%(field)s contains control characters"), field)
    return _max_len(field, value, max_len)


def id_number(field: str, value, *, required: bool = False,
              today: date | None = None) -> str | None:
    """A resident ID number (GB 11643-1999) with its ISO 7064 MOD 11-2 check digit."""
    value = _string(field, value, required)
    if value is None:
        return None
    value = value.upper()
    if not _ID_NUMBER.fullmatch(value):
        if _ID_OLD.fullmatch(value):
            _fail(N_("%(field)s: 15-digit ID numbers are no longer valid; ask for the "
                     "18-digit number"), field)
        _fail(N_("%(field)s: an ID number is 17 digits and a digit or X"), field)
    try:
        born = date.fromisoformat(value[6:14])  # YYYYMMDD (ISO 8601's basic format)
    except ValueError:
        born = None
    if born is None or born < _ID_EARLIEST or not _not_after(born, today):
        _fail(N_("%(field)s: the birth date in the ID number is not valid"), field)
    total = sum(map(operator.mul, value[:17].encode("ascii"), ID_WEIGHTS)) - _ID_ZERO
    if ID_CHECK[total % 11] != value[17]:
        _fail(N_("%(field)s: the check digit is wrong; please check the number"), field)
    return value


def _not_after(day: date, today: date | None) -> bool:
    """``day <= today``, the real today when None. The clock is read only for a day after
    this module was imported: date.today() converts to local time, which cost 3% of
    applying a bundle when every ID number's birth date asked it."""
    if today is None:
        return day <= _IMPORTED_ON or day <= date.today()
    return day <= today


def phone(field: str, value, *, required: bool = False) -> str | None:
    """A mobile number (returned as 11 digits) or a landline (returned as area-number[-ext])."""
    value = _string(field, value, required)
    if value is None:
        return None
    if not value.isdigit():
        value = _SPACE.sub("", value)
    digits = value.replace("-", "")
    if _MOBILE.fullmatch(digits):
        return digits
    m = _LANDLINE.fullmatch(value)
    if m:
        main, ext = m.group(1), m.group(2) or ""
        if "-" in main:
            return main + ext
        # No hyphen: 010 and 02x are the only three-digit area codes, all others have four.
        cut = 3 if main[1] in "12" else 4
        if 7 <= len(main) - cut <= 8:
            return f"{main[:cut]}-{main[cut:]}{ext}"
    _fail(N_("%(field)s: not a mobile or landline number"), field)


def choice(field: str, value, allowed: Iterable[str], *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            _fail(N_("%(field)s is required"), field)
        return None
    if not isinstance(value, str) or value not in set(allowed):
        _fail(N_("%(field)s: unknown value %(value)s"), field, value=str(value)[:50])
    return value


def integer(field: str, value, *, minimum: int | None = None, maximum: int | None = None,
            required: bool = True) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            _fail(N_("%(field)s is required"), field)
        return None
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(N_("%(field)s must be a whole number"), field)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        _fail(N_("%(field)s must be between %(min)s and %(max)s"), field,
              min="-" if minimum is None else minimum, max="-" if maximum is None else maximum)
    return value


def a_date(field: str, value, *, required: bool = True) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            _fail(N_("%(field)s is required"), field)
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    _fail(N_("%(field)s: %(value)s is not a date (YYYY-MM-DD)"), field, value=str(value)[:50])


def future_date(field: str, value, *, today: date, required: bool = True) -> date | None:
    """As a_date, and strictly after ``today`` (today itself counts as past)."""
    value = a_date(field, value, required=required)
    if value is not None and value <= today:
        _fail(N_("%(field)s: the date %(value)s is in the past"), field, value=value.isoformat())
    return value


def node_id(field: str, value) -> str:
    value = value.strip() if isinstance(value, str) else value
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{1,31}", value):
        _fail(N_("%(field)s: 2 to 32 letters, digits, - or _ (got %(value)r)"), field,
              value=str(value)[:50])
    return value


def username(field: str, value) -> str:
    value = value.strip().lower() if isinstance(value, str) else value
    if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9_.-]{1,31}", value):
        _fail(N_("%(field)s: 2 to 32 lower-case letters, digits, . _ or -, starting with a "
                 "letter"), field)
    return value


def normal_form(cleaners: Mapping[str, Callable[[dict], dict]], event_type: str, body: dict,
                copy: Callable[[dict], dict] = dict) -> None:
    """Refuse an event body that is not exactly what its type's clean function makes of
    (a ``copy`` of) it, or a type none of ``cleaners`` knows: a domain's validate_body."""
    clean = cleaners.get(event_type)
    if clean is None:
        raise ValidationError(N_("unknown event type %(type)s"), type=event_type, field="type")
    if clean(copy(body)) != body:
        raise ValidationError(N_("%(field)s: not in normal form"), field="body")
