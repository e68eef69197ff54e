"""预警 vocabularies and the risk formula: points for size, destination, stated risks and
sensitive dates, and the thresholds of 较大 (major) and 重大 (serious).

The formula is configuration (RISK, SENSITIVE_DATES), so a node's rebuild re-rates
old warnings after it changes. Pure.
"""

from __future__ import annotations

from datetime import date, datetime

from node import i18n
from node.errors import N_, ConfigError
from node.settings import Setting, choice, declare

STATUSES = {
    "raised": ("已上报", "Raised"), "acknowledged": ("已签收", "Acknowledged"),
    "handling": ("处置中", "Being handled"), "defused": ("已化解", "Defused"),
    "escalated": ("已升级", "Escalated"), "occurred": ("已发生", "Occurred"),
}
FINAL = ("defused", "escalated", "occurred")
SOURCES = {"screening": ("排查", "Screening"), "village_report": ("村级报告", "Village report"),
           "visit_signs": ("来访苗头", "Signs at a visit"), "opinion": ("舆情", "Public opinion")}
DESTINATIONS = {"town": ("镇", "Town"), "city": ("市", "City"),
                "province": ("省", "Province"), "beijing": ("京", "Beijing")}
LEVELS = {"general": ("一般", "General"), "major": ("较大", "Major"),
          "serious": ("重大", "Serious")}

DEFAULT_RISK = {
    # points for the expected number of people
    "size_5": 1, "size_20": 2, "size_50": 3,
    # points for where they intend to go
    "dest_town": 0, "dest_city": 1, "dest_province": 2, "dest_beijing": 3,
    # points for stated risks and for falling near a sensitive date
    "skip_level": 1, "beijing": 2, "sensitive": 2, "window_days": 3,
    # a score at or above these is 较大 / 重大
    "major": 3, "serious": 6,
}
DEFAULT_SENSITIVE = (
    {"from": "03-01", "to": "03-15", "name": "全国两会"},
    {"from": "06-28", "to": "07-02", "name": "七一"},
    {"from": "09-28", "to": "10-08", "name": "国庆"},
)


def validate_risk(value: dict) -> dict:
    out = dict(DEFAULT_RISK)
    for key, points in value.items():
        if key not in DEFAULT_RISK:
            raise ConfigError(N_("setting RISK: unknown key %(key)s"), key=key)
        if not isinstance(points, int) or isinstance(points, bool) or points < 0:
            raise ConfigError(N_("setting RISK: %(key)s must be a whole number >= 0"), key=key)
        out[key] = points
    if out["major"] > out["serious"]:
        raise ConfigError(N_("setting RISK: major must not be above serious"))
    return out


def validate_sensitive_dates(value: list) -> list[dict]:
    out = list(DEFAULT_SENSITIVE)
    for item in value:
        if not isinstance(item, dict) or set(item) != {"from", "to", "name"}:
            raise ConfigError(N_("setting SENSITIVE_DATES: each entry needs from, to and name"))
        for key in ("from", "to"):
            try:
                datetime.strptime("2000-" + str(item[key]), "%Y-%m-%d")
            except ValueError:
                raise ConfigError(N_("setting SENSITIVE_DATES: %(value)r is not MM-DD"),
                                  value=item[key]) from None
        out.append(dict(item))
    return out


def sensitive_overlap(expected: date | None, periods: list[dict], window: int) -> str | None:
    """The name of a sensitive period within ``window`` days of the expected date."""
    if expected is None:
        return None
    for period in periods:
        for year in (expected.year - 1, expected.year, expected.year + 1):
            start = date.fromisoformat(f"{year}-{period['from']}")
            end = date.fromisoformat(f"{year}-{period['to']}")
            if end < start:
                end = end.replace(year=year + 1)
            if (start - expected).days <= window and (expected - end).days <= window:
                return period["name"]
    return None


def risk(body: dict, risk_table: dict, sensitive: str | None) -> tuple[int, str]:
    r = risk_table
    size = body["expected_size"]
    score = r["size_50"] if size >= 50 else r["size_20"] if size >= 20 else (
        r["size_5"] if size >= 5 else 0)
    score += r["dest_" + body["destination"]]
    score += r["skip_level"] * body["skip_level_risk"] + r["beijing"] * body["beijing_risk"]
    score += r["sensitive"] if sensitive else 0
    level = "serious" if score >= r["serious"] else "major" if score >= r["major"] else "general"
    return score, level


declare(
    Setting("RISK", {}, "Early-warning risk formula: weights and thresholds overriding the "
            "defaults (see docs/settings.md).", dict, validate_risk, built_in=DEFAULT_RISK),
    Setting("SENSITIVE_DATES", [], "Extra sensitive dates: a list of {from = \"MM-DD\", "
            "to = \"MM-DD\", name = \"...\"} merged with the built-in list.", list,
            validate_sensitive_dates),
    Setting("WARNING_TO_CITY", "major", "Early warnings at or above this risk level (general, "
            "major 较大, serious 重大) go on from the town to the city at once; lower ones stop "
            "at the town unless escalated (node/sync/policy.py).", str,
            choice("WARNING_TO_CITY", ("general", "major", "serious"))),
)


# A warning's fields in people's words (node/i18n.py)
i18n.add_fields({
    "source": N_("Source"), "subject": N_("Subject"), "place": N_("Place"),
    "trigger": N_("Trigger"), "expected_size": N_("Expected group size"),
    "expected_date": N_("Expected date"), "destination": N_("Where they intend to go"),
    "measures": N_("Measures"), "linked_cases": N_("Linked cases"),
    "skip_level_risk": N_("Risk of skip-level petitioning"),
    "beijing_risk": N_("Risk of going to Beijing"),
})
