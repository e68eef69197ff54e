"""信访件 fields: the clean function of each action, which checks a body and returns its
one normal form (``validate_body`` compares a received body with it).

Each clean function names its fields in ``fields``, in the order a form shows them.
"""

from __future__ import annotations

import re
import secrets
from datetime import date

from node import disclosure, validate
from node.cases.vocab import (
    CATEGORIES,
    CHANNELS,
    DELIVERY,
    MAX_REPRESENTATIVES,
    NATURES,
    RATINGS,
    code_of,
)
from node.errors import N_, ValidationError


def _only(body: dict, allowed: set[str] | frozenset[str]) -> None:
    if not allowed.issuperset(body):
        raise ValidationError(N_("unknown field %(field)s"), field=sorted(set(body) - allowed)[0])


def _fields(**spec):
    """A clean function from field validators: name -> callable(field, value)."""
    allowed = frozenset(spec)

    def clean(body: dict) -> dict:
        _only(body, allowed)
        out, fields = {}, validate.Fields()
        for name, check in spec.items():
            value = fields.check(check, name, body.get(name))
            if value is not None:
                out[name] = value.isoformat() if isinstance(value, date) else value
        fields.done()
        return out
    clean.fields = tuple(spec)
    return clean


def _req_text(name, value):
    return validate.text(name, value)


def _opt_text(name, value):
    return validate.text(name, value, required=False)


def _req_line(name, value):
    return validate.line(name, value)


def _opt_line(name, value):
    return validate.line(name, value, required=False)


def _date(name, value):
    return validate.a_date(name, value)


def _opt_date(name, value):
    return validate.a_date(name, value, required=False)


def _vocab(vocabulary, required=True):
    return lambda name, value: code_of(vocabulary, name, value, required)


def _node(name, value):
    return validate.node_id(name, value)


def _order_id(name, value):
    return validate.line(name, value, max_len=40)


_PETITIONER_FIELDS = frozenset({"name", "id_number", "phone", "address", "representative"})


def _clean_petitioner(index: int, p, fields: validate.Fields) -> dict:
    if not isinstance(p, dict):
        raise ValidationError(N_("%(field)s must be a list of people"), field="petitioners")
    _only(p, _PETITIONER_FIELDS)
    where = f"petitioners[{index}]."
    out = {}
    for key, check in (("name", _person_name), ("id_number", validate.id_number),
                       ("phone", validate.phone), ("address", _address)):
        value = p.get(key)
        # a field limited to a lower tier is a commitment to its value (node/disclosure.py)
        if not (isinstance(value, dict) and disclosure.is_commitment(value)):
            value = fields.check(check, where + key, value)
        if value:
            out[key] = value
    representative = p.get("representative")
    # (a type test, not `in (False, True)`: 1 and 1.0 equal True, and a body holding them
    # would pass validate_body's comparison with its normal form)
    if representative is not None and not isinstance(representative, bool):
        fields.errors.append(ValidationError(N_("%(field)s must be true or false"),
                                             field=where + "representative"))
    if representative:
        out["representative"] = True
    return out


def _person_name(name, value):
    return validate.line(name, value, max_len=50)


def _address(name, value):
    return validate.line(name, value, required=False)


_REGISTER_FIELDS = frozenset({
    "channel", "nature", "category", "summary", "request", "facts", "people_count",
    "petitioners", "first_time", "repeat_of", "skip_level", "query_code", "accused_unit"})


def _clean_register(body: dict) -> dict:
    """Every field is checked and every error kept (``validate.Fields``): a liaison fixes
    the ID number and the phone in one go, each marked at its input."""
    _only(body, _REGISTER_FIELDS)
    fields = validate.Fields()
    people = body.get("petitioners")
    if not isinstance(people, list) or not people:
        fields.errors.append(ValidationError(
            N_("%(field)s: at least one petitioner is required"), field="petitioners"))
        people = []
    if len(people) > 200:
        raise ValidationError(N_("%(field)s: too many people"), field="petitioners")
    petitioners = [_clean_petitioner(i, p, fields) for i, p in enumerate(people)]
    if sum(1 for p in petitioners if p.get("representative")) > MAX_REPRESENTATIVES:
        fields.errors.append(ValidationError(
            N_("%(field)s: a group visit has at most %(n)s representatives (Art. 20)"),
            field="petitioners", n=MAX_REPRESENTATIVES))
    out = {
        "channel": fields.check(code_of, CHANNELS, "channel", body.get("channel") or "visit"),
        "nature": fields.check(code_of, NATURES, "nature", body.get("nature") or "request"),
        "category": fields.check(code_of, CATEGORIES, "category", body.get("category")),
        "summary": fields.check(validate.text, "summary", body.get("summary"), max_len=2000),
        "petitioners": petitioners,
        "people_count": fields.check(validate.integer, "people_count",
                                     body.get("people_count", len(petitioners)),
                                     minimum=len(petitioners), maximum=100000),
    }
    for name in ("request", "facts"):
        value = fields.check(validate.text, name, body.get(name), required=False)
        if value:
            out[name] = value
    repeat_of = fields.check(case_number, "repeat_of", body.get("repeat_of"))
    for flag, default in (("first_time", repeat_of is None), ("skip_level", False)):
        value = body.get(flag, default)
        if not isinstance(value, bool):
            fields.errors.append(ValidationError(N_("%(field)s must be true or false"),
                                                 field=flag))
        out[flag] = value
    if repeat_of:
        out["repeat_of"] = repeat_of
        out["first_time"] = False
    accused = body.get("accused_unit")
    if accused not in (None, ""):
        # Art. 30: a report against an official never reaches the official's own unit
        out["accused_unit"] = fields.check(validate.node_id, "accused_unit", accused)
    code = body.get("query_code") or new_query_code()
    out["query_code"] = fields.check(validate.line, "query_code", code, max_len=16)
    fields.done()
    return out


def _clean_extend(body: dict) -> dict:
    """Fields: days (1-30), approver (the leader who approved), reason, and how the
    petitioner was told of it and why (notice, Art. 34: 告知信访人延期理由)."""
    _only(body, {"days", "approver", "reason", "notice"})
    return {"days": validate.integer("days", body.get("days"), minimum=1, maximum=30),
            "approver": validate.line("approver", body.get("approver"), max_len=50),
            "reason": validate.text("reason", body.get("reason")),
            "notice": code_of(DELIVERY, "notice", body.get("notice"))}


def _clean_followup(body: dict) -> dict:
    """Fields: rating, note, told: a dissatisfied petitioner was told of the right to ask
    for a review (复查) within 30 days of the reply's delivery (Art. 35)."""
    _only(body, {"rating", "note", "told"})
    out = {"rating": code_of(RATINGS, "rating", body.get("rating"))}
    note = validate.text("note", body.get("note"), required=False)
    if note:
        out["note"] = note
    told = body.get("told", False)
    if not isinstance(told, bool):
        raise ValidationError(N_("%(field)s must be true or false"), field="told")
    if out["rating"] == "dissatisfied":
        if not told:
            raise ValidationError(N_("%(field)s: a dissatisfied petitioner must be told of "
                                     "the right to ask for a review (复查, Art. 35)"),
                                  field="told")
        out["told"] = True
    return out


def _clean_close(body: dict) -> dict:
    _only(body, {"report", "signers", "answer"})
    signers = body.get("signers")
    if isinstance(signers, str):
        signers = [s for s in signers.replace("，", ",").split(",") if s.strip()]
    if not isinstance(signers, list) or not signers:
        raise ValidationError(N_("%(field)s: the closing report needs at least one signer"),
                              field="signers")
    out = {"report": validate.text("report", body.get("report")),
           "signers": [validate.line("signers", s, max_len=50) for s in signers]}
    answer = validate.text("answer", body.get("answer"), required=False)
    if answer:
        out["answer"] = answer
    return out


def _clean_correct(body: dict) -> dict:
    editable = {"summary": _req_text, "request": _opt_text, "facts": _opt_text,
                "category": _vocab(CATEGORIES), "nature": _vocab(NATURES),
                "channel": _vocab(CHANNELS)}
    _only(body, set(editable) | {"reason"})
    fields = {k: editable[k](k, v) for k, v in body.items() if k in editable}
    if not fields:
        raise ValidationError(N_("%(field)s: say what to correct"), field="fields")
    return {**fields, "reason": validate.text("reason", body.get("reason"))}


# a case number: tier letter, the registering node's id, year, serial (C-dongshan-2026-0007)
_CASE_NUMBER = re.compile(r"[SZPC]-[A-Za-z0-9][A-Za-z0-9_-]{1,31}-\d{4}-\d{4,6}")


def case_number(name: str, value) -> str | None:
    """An optional case number, which may be of a case held at another node (a repeat
    petition may cite one that was never handed here)."""
    value = validate.line(name, value, required=False, max_len=50)
    if value is not None and not _CASE_NUMBER.fullmatch(value):
        raise ValidationError(N_("%(field)s: %(value)s is not a case number (like "
                                 "C-dongshan-2026-0007)"), field=name, value=value)
    return value


def new_query_code() -> str:
    alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(8))


_clean_register.fields = ("category", "summary", "petitioners", "channel", "nature", "request",
                          "facts", "people_count", "first_time", "repeat_of", "skip_level")
_clean_extend.fields = ("days", "approver", "reason", "notice")
_clean_followup.fields = ("rating", "told", "note")
_clean_close.fields = ("report", "signers", "answer")
_clean_correct.fields = ("summary", "request", "facts", "category", "nature", "channel",
                         "reason")
