"""Personal fields that never go above a tier ("never above tier X", DESIGN.md, Routing).

An event is signed whole, so no relay can drop a field from it without
breaking its origin's signature. A petitioner's field that its origin limits
(setting ``NEVER_ABOVE``, e.g. ``{id_number = "town"}``) is therefore not in
the signed body as a value but as a salted commitment to it, with the tier
it may reach::

    "id_number": {"sd": base64(SHA-256(CONTEXT + canonical([salt, path, value]))),
                  "up_to": "town"}

and the value travels beside the event, outside the signature, as a
*disclosure* ``path: [salt, value]`` (the scheme of SD-JWT). Each hop passes
on only the disclosures the next node's tier may have; a node above the
limit stores the commitment, which says that a value exists and where it
stays, but not the value: 16 random bytes of salt make it unguessable even
for a field as small as a phone number. The receiver checks every
disclosure against its commitment and drops any its own tier may not have,
so the rule holds at each node whatever its neighbours do.

The limit is the origin's, signed into the event, and every node enforces it
the same way; a relay whose own ``NEVER_ABOVE`` is stricter applies that as
well. Only a petitioner's personal data can be limited: the fields ``FIELDS`` of a
registration's petitioners, and the ID numbers, phone numbers and petitioners'
names found in any event's free text (``commit_text``, node/screening.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from node import screening
from node.canonical import canonical
from node.errors import N_, ConfigError
from node.settings import Setting, declare
from node.tiers import TIER_RANK

CONTEXT = b"siji/disclosure/v1\x00"
FIELDS = ("name", "id_number", "phone", "address")  # a petitioner's personal data
# the lists of people whose FIELDS are limited: a case's petitioners, a register entry's
# people (重点人员, node/rounds/)
PEOPLE = ("petitioners", "people")


def digest(salt: str, path: str, value: str) -> str:
    """The commitment to ``value`` at ``path`` under ``salt`` (base64 of 32 bytes)."""
    data = CONTEXT + canonical([salt, path, value], check=False)
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


_B64_DIGEST = re.compile(r"[A-Za-z0-9+/]{43}=")


def is_commitment(value) -> bool:
    """Whether ``value`` is exactly a well-formed commitment (anything else is not one)."""
    return (isinstance(value, dict) and set(value) == {"sd", "up_to"}
            and isinstance(value["sd"], str) and _B64_DIGEST.fullmatch(value["sd"]) is not None
            and isinstance(value["up_to"], str) and value["up_to"] in TIER_RANK)


def commitments(body: dict) -> dict[str, dict]:
    """``path -> commitment`` for every committed personal field of a registration body and
    every committed value in an event's free text (``masked``)."""
    out = {}
    for list_key in PEOPLE:
        people = body.get(list_key)
        for i, person in enumerate(people if isinstance(people, list) else ()):
            if isinstance(person, dict):
                out.update((f"{list_key}/{i}/{key}", person[key]) for key in FIELDS
                           if is_commitment(person.get(key)))
    masked = body.get("masked")
    if isinstance(masked, dict):
        out.update((f"masked/{k}", c) for k, c in masked.items() if is_commitment(c))
    return out


# Free text: an ID number, a phone number or a petitioner's name that a liaison typed into
# a text field, in an event of any type, is signed as a commitment too. The text holds a
# mark in its place, ``⟦n⟧``, and the body a table ``masked`` of n -> commitment; the
# value is the disclosure ``masked/n``. Which kinds are limited, and to which tier, is
# NEVER_ABOVE's (id_number, phone, name). node/screening.py finds them.
MARK = re.compile(r"⟦([0-9]{1,4})⟧")
WITHHELD = "〔已隐去〕"  # what a mark whose value this node may not have shows as


def commit_text(body: dict, text_fields, rules: dict[str, str], own_tier: str,
                names=()) -> tuple[dict, dict]:
    """(the body with each limited value found in its ``text_fields`` committed, the
    disclosures). ``names``: the petitioners' recorded names to look for."""
    kinds = {k: t for k, t in rules.items() if k in ("id_number", "phone", "name")}
    if not kinds:
        return body, {}
    body, masked, disclosed = dict(body), {}, {}
    for field in sorted(text_fields):
        text = body.get(field)
        if not isinstance(text, str):
            continue
        found = [f for f in screening.find(text, names if "name" in kinds else ())
                 if f.kind in kinds]
        pieces, at = [], 0
        for f in found:
            k = str(len(masked))
            path = f"masked/{k}"
            salt = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
            masked[k] = {"sd": digest(salt, path, f.value),
                         "up_to": max(kinds[f.kind], own_tier, key=TIER_RANK.__getitem__)}
            disclosed[path] = [salt, f.value]
            pieces += [text[at:f.start], f"⟦{k}⟧"]
            at = f.end
        if found:
            body[field] = "".join(pieces) + text[at:]
    if masked:
        body["masked"] = masked
    return body, disclosed


def without_marks(body: dict) -> dict:
    """The body as its domain's rule sees it: without the table of committed text values
    (the marks in the text stay: they are ordinary characters to a rule)."""
    return {k: v for k, v in body.items() if k != "masked"} if "masked" in body else body


def shown(text: str | None) -> str | None:
    """Text with each mark whose value is not here shown as withheld."""
    return MARK.sub(WITHHELD, text) if text else text


def check_masked(body: dict) -> None:
    """Raise ValueError unless ``masked``, if present, is a table of commitments."""
    masked = body.get("masked")
    if masked is None:
        return
    if not (isinstance(masked, dict) and masked and all(
            isinstance(k, str) and k.isdigit() and is_commitment(c) for k, c in masked.items())):
        raise ValueError("masked must map numbers to commitments")


def commit(body: dict, rules: dict[str, str], own_tier: str) -> tuple[dict, dict]:
    """(the body with the fields ``rules`` limits committed, their disclosures).

    A limit below ``own_tier``, the registering node's, is raised to it: the node
    that registers a case holds what it wrote down.
    """
    disclosed: dict = {}
    for list_key in PEOPLE:
        if not rules or not isinstance(body.get(list_key), list):
            continue
        people = []
        for i, person in enumerate(body[list_key]):
            person = dict(person)
            for key, tier in rules.items():
                tier = max(tier, own_tier, key=TIER_RANK.__getitem__)
                if isinstance(person.get(key), str):
                    path = f"{list_key}/{i}/{key}"
                    salt = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
                    disclosed[path] = [salt, person[key]]
                    person[key] = {"sd": digest(salt, path, person[key]), "up_to": tier}
            people.append(person)
        body = {**body, list_key: people}
    return body, disclosed


def check(body: dict, disclosed) -> None:
    """Raise ValueError unless every disclosure opens a commitment of the body."""
    if not isinstance(disclosed, dict):
        raise ValueError("disclosures must be an object")
    committed = commitments(body)
    for path, item in disclosed.items():
        if path not in committed:
            raise ValueError(f"disclosure {path} opens no commitment")
        if not (isinstance(item, list) and len(item) == 2
                and all(isinstance(x, str) for x in item)):
            raise ValueError(f"disclosure {path} is not [salt, value]")
        if not hmac.compare_digest(digest(item[0], path, item[1]).encode(),
                                   committed[path]["sd"].encode()):
            raise ValueError(f"disclosure {path} does not match its commitment")


def reveal(body: dict, disclosed: dict) -> dict:
    """The body with each disclosed value in place of its commitment (others stay)."""
    if not disclosed:
        return body
    committed = commitments(body)
    out = dict(body)
    for list_key in PEOPLE:
        if isinstance(body.get(list_key), list):
            out[list_key] = [dict(p) if isinstance(p, dict) else p for p in body[list_key]]
    values = {}
    for path, item in disclosed.items():
        if path in committed and isinstance(item, list) and len(item) == 2:
            parts = path.split("/")
            if parts[0] == "masked":
                values[parts[1]] = item[1]
            else:  # petitioners/i/key or people/i/key
                out[parts[0]][int(parts[1])][parts[2]] = item[1]
    if values:
        for key, text in body.items():
            if isinstance(text, str) and "⟦" in text:
                out[key] = MARK.sub(lambda m: values.get(m.group(1), m.group(0)), text)
    return out


def for_tier(body: dict, disclosed: dict, tier: str, rules: dict[str, str] | None = None) -> dict:
    """The disclosures a node of ``tier`` may have.

    A value may reach the tier its commitment names, or the tier ``rules`` (a
    relay's own ``NEVER_ABOVE``) names for its field, whichever is lower.
    """
    if not disclosed:
        return disclosed
    committed, rank, rules = commitments(body), TIER_RANK[tier], rules or {}
    out = {}
    for path, item in disclosed.items():
        if path not in committed:
            continue  # opens nothing: never passed on (from_wire refuses such an event)
        limit = TIER_RANK[committed[path]["up_to"]]
        own = rules.get(path.rsplit("/", 1)[1])
        if own in TIER_RANK:
            limit = min(limit, TIER_RANK[own])
        if rank <= limit:
            out[path] = item
    return out


def validate_rules(value: dict) -> dict:
    """The ``NEVER_ABOVE`` setting: petitioner field -> the highest tier it may reach."""
    for key, tier in value.items():
        if key not in FIELDS:
            raise ConfigError(N_("setting NEVER_ABOVE: %(key)r is not one of %(allowed)s"),
                              key=key, allowed=", ".join(FIELDS))
        if tier not in TIER_RANK:
            raise ConfigError(N_("setting NEVER_ABOVE: %(key)s = %(value)r is not a tier "
                                 "(village, area, town, city)"), key=key, value=tier)
    return dict(value)


declare(Setting(
    "NEVER_ABOVE", {}, "Petitioners' personal fields (name, id_number, phone, address) that "
    "never go above a tier, e.g. {id_number = \"town\"}: cases this node registers carry such a "
    "field as a signed commitment, and its value travels no higher than that tier (or than "
    "this node, if it is higher: it keeps what it registers); a relay applies the stricter of "
    "this and the case's own limit, and a node above the tier does not keep such values from "
    "below (node/disclosure.py, docs/routing.md). The same setting can serve every node.",
    dict, validate_rules))
