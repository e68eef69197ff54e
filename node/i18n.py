"""Messages in the user's language: Simplified Chinese by default, English available.

Message ids are English with %(name)s placeholders (see node.errors). The
Chinese catalogue is ``translations/zh/LC_MESSAGES/messages.po``, read with
Babel. Parameters that name a state, action, role or tier are shown as
their label in the same language.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from babel.messages.pofile import read_po

from node.errors import NodeError
from node.tiers import TIER_LABELS

DEFAULT = "zh"


@cache
def catalogue(lang: str) -> dict[str, str]:
    if lang == "en":
        return {}
    path = resources.files("node") / "translations" / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        cat = read_po(f, locale=lang)
    return {m.id: m.string for m in cat if m.id and m.string and not m.fuzzy}


# kind -> code -> (zh, en): parameters named after a kind are shown as its label. The
# tiers are known here; each domain adds its own kinds (states, actions, roles) at import.
_LABELS: dict[str, dict] = {"tier": dict(TIER_LABELS), "parent_tier": dict(TIER_LABELS)}


def add_labels(kind: str, labels: dict) -> None:
    """Show parameters named ``kind`` with these labels (merged with any already given)."""
    _LABELS.setdefault(kind, {}).update(labels)


def label(kind: str, code, lang: str) -> str:
    pair = _LABELS.get(kind, {}).get(code)
    if pair is None:
        return str(code)
    return pair[0] if lang == "zh" else pair[1]


# field name -> msgid of its words ("id_number" -> "ID number"); "petitioners[]" -> the
# words for one item of a list, with %(n)s (1-based) and %(field)s. Domains add theirs.
FIELDS: dict[str, str] = {}
_ITEM = re.compile(r"([a-z_]+)\[([0-9]+)\]\.([a-z_]+)")


def add_fields(words: dict[str, str]) -> None:
    """Name these fields in people's words wherever a message shows ``%(field)s``."""
    FIELDS.update(words)


def field_name(path, lang: str = DEFAULT) -> str:
    """A field as people say it: ``petitioners[0].id_number`` -> 第1位信访人的身份证号码."""
    if not isinstance(path, str):
        return str(path)
    m = _ITEM.fullmatch(path)
    if m and m.group(1) + "[]" in FIELDS:
        return translate(FIELDS[m.group(1) + "[]"], lang, n=int(m.group(2)) + 1,
                         field=field_name(m.group(3), lang))
    return translate(FIELDS[path], lang) if path in FIELDS else path


def translate(msgid: str, lang: str = DEFAULT, **params) -> str:
    text = catalogue(lang).get(msgid, msgid) if lang != "en" else msgid
    kinds = _LABELS
    shown = {k: (label(k, v, lang) if k in kinds else field_name(v, lang) if k == "field"
                 else v) for k, v in params.items()}
    try:
        return text % shown if shown else text
    except (KeyError, ValueError, TypeError):
        return msgid % params if params else msgid


def message(error: NodeError, lang: str = DEFAULT) -> str:
    return translate(error.msgid, lang, **error.params)
