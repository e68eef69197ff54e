"""The Chinese catalogue covers every message id, placeholders survive, labels exist.

Message ids are the English strings marked ``N_("...")`` in node/ (found by
``scripts/extract-messages``, loaded here by path). A new message without a
Chinese translation fails here: run scripts/extract-messages and fill in
its msgstr (terms: docs/glossary.md).
"""

from __future__ import annotations

import importlib.util
import re
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from node import cases, i18n, rounds, users, warnings

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "extract-messages"
PO = ROOT / "node" / "translations" / "zh" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")
CJK = re.compile(r"[\u4e00-\u9fff]")
FIX = "run scripts/extract-messages and translate the new entries in " + str(PO.relative_to(ROOT))


def _extractor():
    loader = SourceFileLoader("extract_messages", str(SCRIPT))
    spec = importlib.util.spec_from_file_location("extract_messages", SCRIPT, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def msgids() -> set[str]:
    found = set(_extractor().extract(ROOT / "node"))
    assert len(found) > 50, "the extraction found almost nothing: is N_ still used?"
    return found


@pytest.fixture(scope="module")
def catalogue():
    with PO.open("rb") as f:
        return read_po(f, locale="zh")


def _placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text.replace("%%", "")))


def test_every_message_has_a_chinese_translation(msgids, catalogue):
    translated = {m.id for m in catalogue if m.id and m.string.strip() and not m.fuzzy}
    missing = sorted(msgids - translated)
    assert not missing, (f"{len(missing)} message(s) without a Chinese translation ({FIX}):\n"
                         + "\n".join(missing))


def test_placeholders_match(catalogue):
    wrong = [f"{m.id!r} -> {m.string!r}" for m in catalogue if m.id and m.string
             and _placeholders(m.string) != _placeholders(m.id)]
    assert not wrong, "msgstr placeholders differ from the msgid:\n" + "\n".join(wrong)


def test_translations_format_like_their_ids(catalogue):
    """No stray % in a msgstr: each formats with its msgid's parameters."""
    for m in catalogue:
        params = {name: "x" for name in PLACEHOLDER.findall(m.id or "")}
        if m.id and m.string and params:
            m.string % params  # noqa: B018 (raises on a bad format)


def test_no_fuzzy_entries(catalogue):
    fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
    assert not fuzzy, "fuzzy entries are not shown; review them and drop the flag:\n" + \
        "\n".join(fuzzy)


def test_translate_shows_labels_in_the_language():
    msgid = "the role %(role)s may not %(action)s"
    assert i18n.translate(msgid, "zh", role="liaison", action="accept") == "信息员 无权受理"
    assert i18n.translate(msgid, "en", role="liaison", action="accept") == \
        "the role Liaison may not accept"
    state = i18n.translate("cannot %(action)s a case that is %(state)s", "zh",
                           action="reply", state="concluded")
    assert state == "信访件当前为“已办结”，不能答复"


def test_translate_without_params_and_unknown_ids():
    assert i18n.translate("the case is already archived", "zh") == "该信访件已归档"
    assert i18n.translate("the case is already archived", "en") == "the case is already archived"
    assert i18n.translate("not a message id %(x)s", "zh", x=1) == "not a message id 1"


VOCABULARIES = {
    **{f"cases.{n}": getattr(cases, n) for n in (
        "STATES", "CHANNELS", "NATURES", "CATEGORIES", "DECISIONS", "RATINGS", "DELIVERY",
        "ACTION_LABELS")},
    **{f"warnings.{n}": getattr(warnings, n) for n in (
        "STATUSES", "SOURCES", "DESTINATIONS", "LEVELS")},
    "users.ROLES": users.ROLES,
    **{f"cases.{n}": getattr(cases, n) for n in ("APPOINTMENT_STATES", "ATTACHMENT_KINDS")},
    **{f"rounds.{n}": getattr(rounds, n) for n in ("ENTRY_KINDS", "ENTRY_STATES", "RISKS")},
}


@pytest.mark.parametrize("name", sorted(VOCABULARIES))
def test_vocabulary_labels(name):
    vocabulary = VOCABULARIES[name]
    assert vocabulary
    for code, labels in vocabulary.items():
        assert isinstance(labels, tuple) and len(labels) == 2, (name, code)
        zh, en = labels
        assert zh.strip() and CJK.search(zh), f"{name}[{code!r}]: no Chinese label"
        assert en.strip() and en.isascii() and not CJK.search(en), \
            f"{name}[{code!r}]: no English label"


def test_every_action_has_a_label():
    missing = sorted((set(cases.RULES) | set(warnings.RULES)) - set(cases.ACTION_LABELS))
    assert not missing, f"cases.ACTION_LABELS lacks {missing}"
