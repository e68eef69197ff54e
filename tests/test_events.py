"""The event format: canonical bytes, signatures, the wire form and its refusals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from node import events
from node.errors import EventRefused

VECTOR = json.loads((Path(__file__).parent / "vectors" / "event-v1.json").read_text("utf-8"))
ROOT = Path(__file__).resolve().parent.parent


def vector_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTOR["seed_hex"]))


def test_vector_reproduces_exactly():
    wire = dict(VECTOR["event"])
    fields = {k: wire[k] for k in ("origin", "seq", "ts", "actor", "role", "type", "subject",
                                   "body")}
    event = events.sign(vector_key(), prev=tuple(wire["prev"]), **fields)
    assert event.signing_bytes().hex() == VECTOR["signing_bytes_hex"]
    assert event.sig.hex() == VECTOR["signature_hex"]
    assert event.digest().hex() == VECTOR["digest_sha256_hex"]
    assert events.to_wire(event) == VECTOR["event"]


def test_vector_verifies_from_its_wire_form():
    event = events.from_wire(VECTOR["event"])
    public = vector_key().public_key()
    assert public.public_bytes_raw().hex() == VECTOR["public_key_hex"]
    assert events.verify(event, public)


def test_protocol_doc_carries_the_vector():
    doc = (ROOT / "docs" / "protocol.md").read_text("utf-8")
    for key in ("signature_hex", "digest_sha256_hex", "public_key_hex"):
        assert VECTOR[key] in doc, f"docs/protocol.md lacks the vector's {key}"


def test_canonical_sorts_keys_and_keeps_chinese():
    assert events.canonical({"b": 1, "a": "东山"}) == '{"a":"东山","b":1}'.encode()


@pytest.mark.parametrize("value", [1.5, float("nan"), {1: "x"}, b"bytes", 2**60, {"a": (1,)},
                                   "\ud800", {"a": ["x\udfff"]}])
def test_canonical_refuses_what_is_not_portable(value):
    with pytest.raises(ValueError):
        events.canonical(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@given(body=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
       actor=st.text(min_size=1, max_size=10),
       prev=st.lists(st.text(max_size=6), max_size=3).map(lambda p: tuple(sorted(set(p)))))
def test_signing_bytes_are_the_canonical_unsigned_event(body, actor, prev):
    """The fast assembly around the body's bytes equals encoding the whole event."""
    event = events.Event(origin="dongshan", seq=7, ts="2026-11-23T02:00:00Z", actor=actor,
                         role="liaison", type="case.note", subject="C-1", prev=prev, body=body)
    assert event.signing_bytes() == events.SIGNING_CONTEXT + events.canonical(event.unsigned())


@given(json_values)
def test_canonical_is_the_reference_encoding(value):
    """The definition in docs/protocol.md is Python's json.dumps with these options; the
    faster encoder must write the same bytes for every value (control characters,
    astral-plane text and key order included)."""
    reference = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False).encode("utf-8")
    assert events.canonical(value) == reference


@given(json_values)
def test_canonical_is_a_fixed_point_of_parsing(value):
    once = events.canonical(value)
    assert events.canonical(json.loads(once)) == once


def make(key=None, **overrides):
    fields = dict(origin="dongshan", seq=3, ts="2026-11-23T02:00:00Z", actor="liu",
                  role="liaison", type="case.note", subject="C-dongshan-2026-0001",
                  prev=("dongshan:2",), body={"text": "备注"})
    fields.update(overrides)
    return events.sign(key or vector_key(), **fields)


@pytest.mark.parametrize("field,value", [
    ("body", {"text": "改过的备注"}), ("seq", 4), ("origin", "xishan"), ("type", "case.urged"),
    ("prev", ["dongshan:1"]), ("ts", "2026-11-23T02:00:01Z"), ("actor", "wang"),
    ("subject", "C-dongshan-2026-0002"), ("role", "leader"),
])
def test_any_change_breaks_the_signature(field, value):
    wire = events.to_wire(make())
    wire[field] = value
    assert not events.verify(events.from_wire(wire), vector_key().public_key())


def test_another_key_does_not_verify():
    other = Ed25519PrivateKey.generate()
    assert not events.verify(make(), other.public_key())


def test_signature_is_bound_to_the_event_context():
    """A signature over the same bytes without the context string is not an event signature."""
    event = make()
    bare = vector_key().sign(events.canonical(event.unsigned()))
    forged = dataclasses.replace(event, sig=bare)
    assert not events.verify(forged, vector_key().public_key())


def test_wire_round_trip():
    event = make()
    assert events.from_json(events.to_json(event)) == event


@given(body=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
       disclosed=st.dictionaries(st.text(max_size=8), json_values, max_size=2))
def test_an_event_made_without_init_is_the_same_object_as_one_made_with_it(body, disclosed):
    """from_wire builds events with events._made; it must hold exactly what Event() holds."""
    values = ("dongshan", 3, "2026-11-23T02:00:00Z", "liu", "liaison", "case.note",
              "C-dongshan-2026-0001", ("dongshan:2",), body, b"s" * 64, disclosed)
    made, init = events._made(*values), events.Event(*values)
    assert vars(made) == vars(init) and made == init and hash(made) == hash(init)
    assert type(made) is events.Event
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.seq = 4
    with pytest.raises(ValueError):
        events._made(*values[:-1])  # every field, or none


@pytest.mark.parametrize("mutate,problem", [
    (lambda w: w.pop("sig"), "fields"),
    (lambda w: w.update(extra=1), "fields"),
    (lambda w: w.update(v=2), "version"),
    (lambda w: w.update(seq=0), "seq"),
    (lambda w: w.update(seq=True), "seq"),
    (lambda w: w.update(seq="3"), "seq"),
    (lambda w: w.update(origin="../etc"), "origin"),
    (lambda w: w.update(ts="yesterday"), "ts"),
    (lambda w: w.update(type="DROP TABLE"), "type"),
    (lambda w: w.update(prev=["b:1", "a:1"]), "prev"),
    (lambda w: w.update(prev="a:1"), "prev"),
    (lambda w: w.update(body=[]), "body"),
    (lambda w: w.update(body={"x": 1.5}), "float"),
    (lambda w: w.update(sig="not base64!"), ""),
    (lambda w: w.update(sig="AAAA"), "signature length"),
])
def test_malformed_wire_events_are_refused_with_a_reason(mutate, problem):
    wire = events.to_wire(make())
    mutate(wire)
    with pytest.raises(EventRefused) as info:
        events.from_wire(wire)
    assert info.value.code == "event_refused"
    assert problem in str(info.value)


@given(json_values)
def test_loads_reads_back_every_canonical_value(value):
    assert events.loads(events.canonical(value)) == value


@given(json_values, st.data())
def test_loads_refuses_a_float_or_huge_integer_wherever_it_stands(value, data):
    """Wrap the value with a number canonical JSON cannot hold, at any depth and spelling."""
    bad = data.draw(st.sampled_from(["1.5", "-0.0", "1e3", "2E-2", "9007199254740993",
                                     "-123456789012345678901234567890"]))
    spaced = data.draw(st.sampled_from(["", " ", "\n  "]))
    text = f'{{"a":[{events.canonical(value).decode()},{{"b":{spaced}{bad}}}]}}'
    with pytest.raises(ValueError):
        events.loads(text)


@pytest.mark.parametrize("text", ['{"a":"x:1.5, [2e3"}', '["13800000000.5元:1.0"]',
                                  '{"n":9007199254740992,"s":":9007199254740993"}'])
def test_loads_takes_number_like_text_inside_strings(text):
    assert events.loads(text) == json.loads(text)


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a":-Infinity}', "[1,]", "{'a':1}"])
def test_loads_refuses_what_is_not_json(text):
    with pytest.raises(ValueError):
        events.loads(text)


@pytest.mark.parametrize("text", ["", "[]", "{", "null", '"x"', "1" * 70000])
def test_garbage_json_is_refused(text):
    with pytest.raises(EventRefused):
        events.from_json(text)


@given(body=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
       prev=st.lists(st.text(min_size=1, max_size=6), max_size=3))
def test_wire_bytes_from_stored_columns_equal_the_canonical_wire_form(body, prev):
    event = make(body=body, prev=tuple(sorted(set(prev))))
    stored_body = events.canonical(event.body)
    built = events.wire_bytes(event.origin, event.seq, event.ts, event.actor, event.role,
                              event.type, event.subject, list(event.prev), stored_body,
                              event.sig)
    assert built == events.canonical(events.to_wire(event))
