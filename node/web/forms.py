"""HTML forms: which input shows each field, and posted text back into domain fields.

The fields of each action come from its rule in ``cases.RULES`` (the clean
function's ``fields``); the domain validates them, so nothing here decides
what is valid, only how a field is typed on a phone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from node import cases, i18n, screening, warnings
from node.errors import NodeError, ValidationError

# name -> (widget, vocabulary or None)
TEXTAREA = ("reason", "reply", "instruction", "message", "text", "note", "feedback", "report",
            "answer", "summary", "request", "facts", "measures", "trigger")
SELECTS = {"decision": cases.DECISIONS, "rating": cases.RATINGS, "delivery": cases.DELIVERY,
           "category": cases.CATEGORIES, "nature": cases.NATURES, "channel": cases.CHANNELS,
           "source": warnings.SOURCES, "destination": warnings.DESTINATIONS,
           "notice": cases.DELIVERY, "ground": cases.NOT_ACCEPT_GROUNDS}
CHECKS = ("told",)  # true or false: a checkbox
DATES = ("deadline", "delivered_on", "expected_date")
NUMBERS = ("days", "people_count", "expected_size")
OPTIONAL = {"note", "delivery", "delivered_on", "assignee", "lead_leader", "request", "facts",
            "trigger", "measures", "linked_cases", "ground", "told"}
OPTIONAL_IN = {"correct": {"summary", "request", "facts", "category", "nature", "channel"},
               "merge": {"reason"}, "close": {"answer"}, "settle": {"decision"}}
HIDDEN_IN = {"escalate": {"to"}, "supervise": {"order_id"}}  # filled in by cases.act

# field -> msgid of its words: the domains name their fields (i18n.add_fields), so the
# pages, the CLI and error messages say "身份证号码", never "id_number"
LABELS = i18n.FIELDS


def widget(name: str) -> str:
    if name in CHECKS:
        return "check"
    if name in SELECTS:
        return "select"
    if name in DATES:
        return "date"
    if name in NUMBERS:
        return "number"
    if name in TEXTAREA:
        return "textarea"
    if name in ("to", "order_id", "urge"):
        return name
    return "line"


def action_fields(action: str) -> list[dict]:
    """The inputs of an action's form, in the rule's order."""
    rule = cases.RULES[action]
    out = []
    for name in getattr(rule.clean, "fields", ()):
        if name in HIDDEN_IN.get(action, ()):
            continue
        required = name not in OPTIONAL and name not in OPTIONAL_IN.get(action, ())
        out.append({"name": name, "widget": widget(name), "required": required,
                    "label": LABELS.get(name, name), "choices": SELECTS.get(name)})
    return out


def warning_action_fields(action: str) -> list[dict]:
    names = {"acknowledge": ("note",), "handle": ("measures", "lead_leader"),
             "defuse": ("note",), "escalate": ("note",), "occurred": ("note",),
             "note": ("note",)}[action]
    return [{"name": n, "widget": widget(n), "label": LABELS[n], "choices": None,
             "required": action == "handle" and n == "measures"} for n in names]


def posted(form, names) -> dict:
    """The non-empty posted values of these fields, as text (the domain parses them)."""
    out = {}
    for name in names:
        value = form.get(name, "")
        if isinstance(value, str) and value.strip():
            out[name] = value.strip()
    return out


def action_values(action: str, form) -> dict:
    names = getattr(cases.RULES[action].clean, "fields", ())
    values = posted(form, [n for n in names if n not in CHECKS])
    values.update({n: True for n in names if n in CHECKS and n in form})
    return values


def register_values(form) -> dict:
    """A case registration from the phone form: one petitioner, more as lines of text."""
    fields = posted(form, ("category", "summary", "channel", "nature", "request", "facts",
                           "people_count", "repeat_of"))
    people = []
    first = posted(form, ("p_name", "p_id_number", "p_phone", "p_address"))
    if first:
        people.append({k[2:]: v for k, v in first.items()})
    for line in (form.get("others") or "").splitlines():
        parts = [p.strip() for p in line.replace("，", ",").split(",")]
        if parts and parts[0]:
            person = {"name": parts[0]}
            for key, value in zip(("id_number", "phone"), parts[1:3], strict=False):
                if value:
                    person[key] = value
            people.append(person)
    fields["petitioners"] = people
    if "not_first_time" in form:  # else derived (cases.register): never a default
        fields["first_time"] = False
    fields["skip_level"] = "skip_level" in form
    return fields


REGISTER_TEXT = ("summary", "request", "facts")


def numbers_in_text(fields: dict) -> list:
    """ID numbers and phone numbers typed into a registration's free text (screening)."""
    return [f for name in REGISTER_TEXT for f in screening.find(fields.get(name) or "")
            if f.kind in ("id_number", "phone")]


def move_numbers(fields: dict) -> dict:
    """The liaison chose to move the numbers found in the text into the first petitioner's
    own fields (where those are empty)."""
    people = list(fields.get("petitioners") or [{}])
    fields, people[0] = screening.move_into_person(fields, REGISTER_TEXT, people[0])
    return {**fields, "petitioners": people}


WARNING_FIELDS = ("source", "subject", "category", "place", "trigger", "expected_size",
                  "expected_date", "destination", "lead_leader", "measures")


def warning_values(form) -> dict:
    fields = posted(form, WARNING_FIELDS)
    fields["skip_level_risk"] = "skip_level_risk" in form
    fields["beijing_risk"] = "beijing_risk" in form
    linked = [c.strip() for c in (form.get("linked_cases") or "").replace("，", ",").split(",")]
    if any(linked):
        fields["linked_cases"] = [c for c in linked if c]
    return fields


REGISTER_INPUTS = ("category", "summary", "p_name", "p_phone", "channel", "p_id_number",
                   "p_address", "others", "people_count", "nature", "request", "facts",
                   "repeat_of", "not_first_time", "skip_level")
WARNING_INPUTS = (*WARNING_FIELDS, "skip_level_risk", "beijing_risk", "linked_cases")
_PERSON = re.compile(r"petitioners\[([0-9]+)\]\.([a-z_]+)")


def input_for(name: str) -> str:
    """The form input where a body field is typed: the first petitioner's fields are
    p_*, the others are lines of one textarea."""
    m = _PERSON.fullmatch(name)
    if m:
        return "p_" + m.group(2) if m.group(1) == "0" else "others"
    return {"petitioners": "p_name", "first_time": "not_first_time"}.get(name, name)


@dataclass
class Refusal:
    """Why a form was refused, for the page: each field's errors at its input (``fields``:
    input name -> messages), those with no input of their own in ``loose``, and the whole
    refusal in one line (``message``) when it is not about fields at all."""

    message: str
    prefix: str = ""  # the inputs' id prefix: a page with many forms gives each its own
    fields: dict[str, list[str]] = field(default_factory=dict)
    loose: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(map(len, self.fields.values())) + len(self.loose)

    def at(self, name: str) -> list[str]:
        return self.fields.get(name, [])


def refusal(error: NodeError, lang: str, inputs, prefix: str = "") -> Refusal:
    out = Refusal(i18n.message(error, lang), prefix)
    if isinstance(error, ValidationError):
        for e in error.all:
            name = input_for(str(e.params.get("field", "")))
            text = i18n.message(e, lang)
            if name in inputs:
                out.fields.setdefault(name, []).append(text)
            else:
                out.loose.append(text)
    return out
