"""node.validate: every check refuses what it should, names the field, and normalises.

Valid ID numbers are literals (published examples, or checked by hand), not
computed here with a copy of the algorithm under test.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node import validate as v
from node.errors import ValidationError

TODAY = date(2024, 6, 15)
ID_X = "11010519491231002X"  # published example, check character X
ID_1880 = "440524188001010014"  # published example: right check digit, born before 1900
ID_1980 = "440524198001010013"  # valid, check digit 3
ID_LEAP = "11010120000229123X"  # valid, born on a leap day


def refused(fn, *args, field="f", **kwargs) -> ValidationError:
    """Call fn(field, *args) and return the ValidationError, checking it names the field."""
    with pytest.raises(ValidationError) as info:
        fn(field, *args, **kwargs)
    assert info.value.params["field"] == field
    assert info.value.code == "validation_error"
    return info.value


# -- line ------------------------------------------------------------------------------------

@pytest.mark.parametrize("markup", ["<script>alert(1)</script>", "<img src=x onerror=1>", "</b>",
                                    "<!-- x -->", "张三<b>", "<!DOCTYPE html>", "<?xml a?>"])
def test_line_refuses_markup(markup):
    err = refused(v.line, markup, field="name")
    assert "markup" in err.msgid


@pytest.mark.parametrize("plain", ["收入<500元", "a > b", "a < b", "x <- y", "<", "1<2>0"])
def test_line_accepts_lone_angle_brackets(plain):
    assert v.line("f", plain) == plain


def test_line_strips_and_nfc_normalises():
    assert v.line("f", "  Cafe\u0301 \u3000") == "Caf\u00e9"


@pytest.mark.parametrize("bad", ["a\nb", "a\r\nb", "a\tb", "a\x00b", "a\x1bb", "a\u202eb",
                                 "a\u2028b", "a\x85b"])
def test_line_refuses_line_breaks_and_control_characters(bad):
    assert "one line" in refused(v.line, bad, field="address").msgid


def test_line_required_and_optional():
    assert "required" in refused(v.line, None).msgid
    assert "required" in refused(v.line, "   ").msgid
    assert v.line("f", "", required=False) is None
    assert v.line("f", None, required=False) is None


@pytest.mark.parametrize("value", [12, 1.5, b"abc", ["a"]])
def test_line_refuses_non_strings(value):
    assert "must be text" in refused(v.line, value).msgid


def test_line_length():
    assert v.line("f", "字" * v.MAX_LINE) == "字" * v.MAX_LINE
    err = refused(v.line, "字" * (v.MAX_LINE + 1))
    assert err.params["n"] == v.MAX_LINE
    assert v.line("f", "abc", max_len=3) == "abc"
    assert refused(v.line, "abcd", max_len=3).params["n"] == 3


# -- text ------------------------------------------------------------------------------------

def test_text_keeps_markup_verbatim():
    words = "他说：<script>alert(1)</script> 然后 <b>离开</b>"
    assert v.text("summary", words) == words


def test_text_normalises_newlines_and_strips():
    raw = "  第一行\r\n第二行\r第三行\n\t缩进 \r\n"
    assert v.text("f", raw) == "第一行\n第二行\n第三行\n\t缩进"


def test_text_keeps_emoji_joiners():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert v.text("f", family) == family


@pytest.mark.parametrize("bad", ["a\x00b", "a\x07b", "a\x1bb", "a\x7fb", "a\u202eb", "a\ufeffb"])
def test_text_refuses_control_characters(bad):
    assert "control" in refused(v.text, bad, field="facts").msgid


def test_text_required_type_and_length():
    assert "required" in refused(v.text, " \r\n ").msgid
    assert v.text("f", None, required=False) is None
    assert "must be text" in refused(v.text, 5).msgid
    assert v.text("f", "x" * v.MAX_TEXT) == "x" * v.MAX_TEXT
    assert refused(v.text, "x" * (v.MAX_TEXT + 1)).params["n"] == v.MAX_TEXT
    assert refused(v.text, "abcd", max_len=3).params["n"] == 3


# -- id_number -------------------------------------------------------------------------------

@pytest.mark.parametrize("number", [ID_X, ID_1980, ID_LEAP])
def test_id_number_accepts_valid_numbers(number):
    assert v.id_number("id", number, today=TODAY) == number
    assert v.id_number("id", f"  {number} ", today=TODAY) == number


def test_id_number_lower_case_x_is_upper_cased():
    assert v.id_number("id", ID_X.lower()) == ID_X


@pytest.mark.parametrize("number", [ID_X, ID_1980])
@pytest.mark.parametrize("position", [0, 5, 14, 16, 17])
def test_id_number_one_changed_digit_fails_the_check(number, position):
    old = number[position]
    new = "0" if old != "0" else "1"
    changed = number[:position] + new + number[position + 1:]
    assert "check digit" in refused(v.id_number, changed, field="id_no", today=TODAY).msgid


def test_id_number_refuses_fifteen_digits():
    assert "15-digit" in refused(v.id_number, "110105491231002", today=TODAY).msgid


@pytest.mark.parametrize("bad", ["11010519491231002", "11010519491231002XX", "1101051949123100X2",
                                 "11010519491231002Y", "１１010519491231002X", "abc"])
def test_id_number_refuses_wrong_length_or_characters(bad):
    assert "17 digits" in refused(v.id_number, bad, today=TODAY).msgid


@pytest.mark.parametrize("bad", ["110105194913310020", "110105194902300020",
                                 "110101190002291230", ID_1880])
def test_id_number_refuses_impossible_birth_dates(bad):
    assert "birth date" in refused(v.id_number, bad, today=TODAY).msgid


def test_id_number_refuses_a_birth_date_after_today():
    # ID_1980 is valid from its birth date on, never before.
    assert v.id_number("id", ID_1980, today=date(1980, 1, 1)) == ID_1980
    err = refused(v.id_number, ID_1980, today=date(1979, 12, 31))
    assert "birth date" in err.msgid


def with_check_digit(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, v.ID_WEIGHTS, strict=True))
    return first17 + v.ID_CHECK[total % 11]


def test_id_number_against_the_clock_refuses_tomorrow_and_takes_today():
    """Without ``today`` the real clock decides (asked only for a date after start-up)."""
    for day, ok in ((date.today(), True), (date.today() + timedelta(days=1), False)):
        number = with_check_digit(f"440524{day:%Y%m%d}001")
        if ok:
            assert v.id_number("id", number) == number
        else:
            assert "birth date" in refused(v.id_number, number).msgid


def test_id_number_is_optional_by_default():
    assert v.id_number("id", None) is None
    assert v.id_number("id", "") is None
    assert "required" in refused(v.id_number, "", required=True).msgid


@given(
    region=st.text("0123456789", min_size=6, max_size=6),
    born=st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    sequence=st.text("0123456789", min_size=3, max_size=3),
)
def test_exactly_one_check_character_is_accepted(region, born, sequence):
    body = region + born.strftime("%Y%m%d") + sequence
    accepted = []
    for check in "0123456789X":
        try:
            accepted.append(v.id_number("id", body + check, today=TODAY))
        except ValidationError as err:
            assert "check digit" in err.msgid
    assert len(accepted) == 1


# -- phone -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("given_", "expected"), [
    ("138 0013 8000", "13800138000"),
    ("138-0013-8000", "13800138000"),
    ("19912345678", "19912345678"),
    ("010-12345678", "010-12345678"),
    ("01012345678", "010-12345678"),
    ("0755 12345678", "0755-12345678"),
    ("07551234567", "0755-1234567"),
    ("0571-8888888-123", "0571-8888888-123"),
])
def test_phone_normalises(given_, expected):
    assert v.phone("tel", given_) == expected


@pytest.mark.parametrize("bad", ["12345", "12800138000", "1380013800", "138001380001",
                                 "010-123456", "010-123456789", "1-0-12345678", "電話", "0101234"])
def test_phone_refuses(bad):
    assert "mobile or landline" in refused(v.phone, bad, field="tel").msgid


def test_phone_is_optional_by_default():
    assert v.phone("tel", None) is None
    assert "required" in refused(v.phone, " ", required=True).msgid


# -- choice ----------------------------------------------------------------------------------

def test_choice():
    allowed = ("visit", "letter", "online")
    assert v.choice("channel", "letter", allowed) == "letter"
    assert v.choice("channel", "letter", iter(allowed)) == "letter"
    err = refused(v.choice, "fax", allowed, field="channel")
    assert err.params["value"] == "fax"
    assert "visit" not in err.english()
    assert "required" in refused(v.choice, None, allowed).msgid
    assert v.choice("channel", None, allowed, required=False) is None
    assert "unknown value" in refused(v.choice, ["visit"], allowed).msgid


# -- integer ---------------------------------------------------------------------------------

def test_integer():
    assert v.integer("n", 12) == 12
    assert v.integer("n", "12") == 12
    assert v.integer("n", " -3 ") == -3
    assert v.integer("n", 5, minimum=5, maximum=5) == 5
    assert v.integer("n", None, required=False) is None
    assert "required" in refused(v.integer, None).msgid


@pytest.mark.parametrize("bad", [True, False, 1.0, "1.5", "12a", "１２", "1_000", [1]])
def test_integer_refuses_non_integers(bad):
    assert "whole number" in refused(v.integer, bad, field="size").msgid


def test_integer_range():
    err = refused(v.integer, 4, minimum=5, maximum=10)
    assert (err.params["min"], err.params["max"]) == (5, 10)
    assert refused(v.integer, "11", minimum=5, maximum=10).params["max"] == 10
    err = refused(v.integer, 1, maximum=0)
    assert (err.params["min"], err.params["max"]) == ("-", 0)
    assert refused(v.integer, -1, minimum=0).params["min"] == 0


# -- dates -----------------------------------------------------------------------------------

def test_a_date():
    assert v.a_date("d", date(2024, 2, 29)) == date(2024, 2, 29)
    assert v.a_date("d", " 2024-02-29 ") == date(2024, 2, 29)
    assert v.a_date("d", "", required=False) is None
    assert "required" in refused(v.a_date, None).msgid


@pytest.mark.parametrize("bad", ["2023-02-29", "2024-13-01", "2024-1-5", "15/06/2024", 20240615,
                                 datetime(2024, 6, 15, 12, 0)])
def test_a_date_refuses(bad):
    assert "not a date" in refused(v.a_date, bad, field="expected_date").msgid


def test_future_date():
    tomorrow = TODAY + timedelta(days=1)
    assert v.future_date("due", tomorrow, today=TODAY) == tomorrow
    assert v.future_date("due", tomorrow.isoformat(), today=TODAY) == tomorrow
    for past in (TODAY, TODAY - timedelta(days=1)):
        err = refused(v.future_date, past, field="due", today=TODAY)
        assert "in the past" in err.msgid
        assert err.params["value"] == past.isoformat()
    assert v.future_date("due", None, today=TODAY, required=False) is None


# -- node_id and username --------------------------------------------------------------------

@pytest.mark.parametrize("good", ["c1", "town-03", "Area_9", "9village", "x" * 32])
def test_node_id_accepts(good):
    assert v.node_id("node", good) == good


@pytest.mark.parametrize("bad", ["a", "-town", "_x", "x" * 33, "town 3", "镇一", "a/b", None, 12])
def test_node_id_refuses(bad):
    assert "2 to 32" in refused(v.node_id, bad, field="node").msgid


@pytest.mark.parametrize(("given_", "expected"), [("liu", "liu"), ("Wang.Li", "wang.li"),
                                                  ("z9_-.", "z9_-."), ("a" * 32, "a" * 32)])
def test_username_accepts_and_lower_cases(given_, expected):
    assert v.username("username", given_) == expected


@pytest.mark.parametrize("bad", ["l", "9liu", "_liu", "a" * 33, "liu wei", "刘伟", "liu@x", None])
def test_username_refuses(bad):
    assert "lower-case" in refused(v.username, bad, field="username").msgid
