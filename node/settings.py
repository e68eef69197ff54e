"""Every setting, declared once with its default and help text.

Configuration flows one way: defaults -> the node's ``siji.toml`` ->
environment (``SIJI_`` prefix) -> the ``overrides`` argument (tests).
Then everything is validated; an unknown or mistyped key stops start-up
with a message that names it. ``siji init`` writes a commented config from
these declarations, and ``docs/settings.md`` lists them (a test checks).
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli_w

from node.errors import N_, ConfigError

CONFIG_NAME = "siji.toml"
# SIJI_ variables that belong to the command line, not to settings
CLI_VARIABLES = ("SIJI_DIR", "SIJI_LANG", "SIJI_DEBUG", "SIJI_ADMIN_PASSWORD", "SIJI_PASSWORD")
TIERS = ("city", "town", "area", "village")
TIER_RANK = {tier: rank for rank, tier in enumerate(reversed(TIERS))}  # village 0 .. city 3
LANGUAGES = ("zh", "en")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type
    check: Callable[[Any], Any] | None = None  # returns the normalised value or raises ConfigError
    required: bool = False  # written by `siji init`; no usable default


def _choice(name: str, allowed: tuple[str, ...]) -> Callable[[Any], Any]:
    def check(value):
        if value not in allowed:
            raise ConfigError(
                N_("setting %(name)s: %(value)r is not one of %(allowed)s"),
                name=name, value=value, allowed=", ".join(allowed),
            )
        return value
    return check


def _timezone(value):
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(N_("setting TIMEZONE: unknown time zone %(value)r"),
                          value=value) from None
    return value


def _positive(name: str) -> Callable[[Any], Any]:
    def check(value):
        if value < 0:
            raise ConfigError(N_("setting %(name)s must not be negative"), name=name)
        return value
    return check


def _at_least_one(name: str) -> Callable[[Any], Any]:
    def check(value):
        if value < 1:
            raise ConfigError(N_("setting %(name)s must be at least 1"), name=name)
        return value
    return check


def _limits(value):
    from node.deadlines import validate_limits
    return validate_limits(value)


def _risk(value):
    from node.warnings import validate_risk
    return validate_risk(value)


def _never_above(value):
    from node.disclosure import validate_rules
    return validate_rules(value)


def _sensitive(value):
    from node.warnings import validate_sensitive_dates
    return validate_sensitive_dates(value)


SETTINGS: tuple[Setting, ...] = (
    Setting("NODE_ID", "", "This node's id, unique in the whole network (e.g. its 区划代码).",
            str, required=True),
    Setting("NODE_NAME", "", "This node's name as people read it, e.g. 东山村.", str,
            required=True),
    Setting("TIER", "village", "This node's tier: city, town, area or village.", str,
            _choice("TIER", TIERS), required=True),
    Setting("PARENT_URL", "", "Base URL of the parent node (empty for the city).", str),
    Setting("PARENT_ID", "", "The parent node's id; set by enrollment (empty for the city).", str),
    Setting("DATABASE", "siji.db", "SQLite database file, relative to the node directory.", str),
    Setting("KEY_DIR", "keys", "Directory of key files (mode 0600), relative to the node "
            "directory.", str),
    Setting("SECRET_KEY", "", "Secret for signing web sessions. Leave it empty: the node then "
            "uses the key file session.key (mode 0600) in KEY_DIR, made on first start.", str),
    Setting("TIMEZONE", "Asia/Shanghai", "Time zone for dates shown to people and for deadlines.",
            str, _timezone),
    Setting("LANGUAGE", "zh", "Default interface language: zh (简体中文) or en.", str,
            _choice("LANGUAGE", LANGUAGES)),
    Setting("SESSION_MINUTES", 120, "A web login ends after this many minutes without a "
            "request; log in again then.", int, _positive("SESSION_MINUTES")),
    Setting("LOGIN_MAX_FAILURES", 5, "Failed logins for one username before it is locked for "
            "LOGIN_LOCK_MINUTES (one client address gets four times as many).", int,
            _positive("LOGIN_MAX_FAILURES")),
    Setting("LOGIN_LOCK_MINUTES", 15, "How long logins are refused after too many failures.",
            int, _positive("LOGIN_LOCK_MINUTES")),
    Setting("HOST", "127.0.0.1", "Address `siji serve` listens on.", str),
    Setting("PORT", 8000, "Port `siji serve` listens on.", int, _positive("PORT")),
    Setting("SYNC_INTERVAL", 300, "Seconds between scheduled syncs with the parent "
            "(`siji serve`).", int, _positive("SYNC_INTERVAL")),
    Setting("SYNC_JITTER", 60, "Up to this many seconds are added at random to each scheduled "
            "sync, so children do not all arrive at once.", int, _positive("SYNC_JITTER")),
    Setting("URGENT_CHECK", 2, "Seconds between checks for urgent events (warnings, "
            "escalations) that sync at once instead of waiting.", int,
            _positive("URGENT_CHECK")),
    Setting("FIGURES_INTERVAL", 3600, "Seconds between checks whether this node's figures "
            "(counts without personal data, node/figures.py) changed; a changed report goes up "
            "with the next sync.", int, _positive("FIGURES_INTERVAL")),
    Setting("WARNING_TO_CITY", "major", "Early warnings at or above this risk level (general, "
            "major 较大, serious 重大) go on from the town to the city at once; lower ones stop "
            "at the town unless escalated (node/sync/policy.py).", str,
            _choice("WARNING_TO_CITY", ("general", "major", "serious"))),
    Setting("WARNING_ACK_HOURS", 2, "Hours a node above a warning's origin has to acknowledge "
            "(签收) it after receiving it; then it raises the alarm, which goes to its parent, "
            "the next level up, whatever the warning's risk (`siji serve` checks each minute).",
            int, _at_least_one("WARNING_ACK_HOURS")),
    Setting("ENROLL_MAX_FAILURES", 5, "Wrong enrollment codes from one client address within "
            "ENROLL_FAILURE_MINUTES before /sync/enroll refuses it (HTTP 429) until the oldest "
            "ages out; a code that gets this many wrong attempts is withdrawn.", int,
            _at_least_one("ENROLL_MAX_FAILURES")),
    Setting("ENROLL_MAX_FAILURES_ALL", 20, "Wrong enrollment codes from all addresses "
            "together within ENROLL_FAILURE_MINUTES before /sync/enroll refuses everyone.", int,
            _at_least_one("ENROLL_MAX_FAILURES_ALL")),
    Setting("ENROLL_FAILURE_MINUTES", 15, "Minutes for which a wrong enrollment code counts "
            "against its address and against all.", int,
            _at_least_one("ENROLL_FAILURE_MINUTES")),
    Setting("LIMITS", {}, "Time limits in days, overriding the 信访工作条例 defaults "
            "(see docs/settings.md); keys ending _workdays count working days.", dict, _limits),
    Setting("HOLIDAY_FILES", [], "Extra holiday calendar TOML files merged over the shipped "
            "2025-2026 calendar (same format as node/data/holidays-cn.toml).", list),
    Setting("DUE_SOON_DAYS", 3, "A deadline within this many days counts as due soon.", int,
            _positive("DUE_SOON_DAYS")),
    Setting("COLLECTIVE_MIN_PEOPLE", 5, "A petition by at least this many people is collective "
            "(集体访, practice).", int, _positive("COLLECTIVE_MIN_PEOPLE")),
    Setting("RISK", {}, "Early-warning risk formula: weights and thresholds overriding the "
            "defaults (see docs/settings.md).", dict, _risk),
    Setting("NEVER_ABOVE", {}, "Petitioners' personal fields (name, id_number, phone, "
            "address) that never go above a tier, e.g. {id_number = \"town\"}: cases this node "
            "registers carry such a field as a signed commitment, and its value travels no "
            "higher than that tier (or than this node, if it is higher: it keeps what it "
            "registers); a relay applies the stricter of this and the case's own limit, and a "
            "node above the tier does not keep such values from below (node/disclosure.py, "
            "docs/routing.md). The same setting can serve every node.", dict, _never_above),
    Setting("SENSITIVE_DATES", [], "Extra sensitive dates: a list of {from = \"MM-DD\", "
            "to = \"MM-DD\", name = \"...\"} merged with the built-in list.", list, _sensitive),
)

BY_NAME = {s.name: s for s in SETTINGS}


def _coerce(setting: Setting, value, source: str):
    if setting.type is int and isinstance(value, str) and source == "environment":
        with contextlib.suppress(ValueError):
            value = int(value)
    if setting.type in (dict, list) and isinstance(value, str) and source == "environment":
        with contextlib.suppress(tomllib.TOMLDecodeError):
            value = tomllib.loads(f"v = {value}")["v"]
    if not isinstance(value, setting.type) or (setting.type is int and isinstance(value, bool)):
        raise ConfigError(
            N_("setting %(name)s from %(source)s must be of type %(type)s, not %(value)r"),
            name=setting.name, source=source, type=setting.type.__name__, value=value,
        )
    return value


def _merge(values: dict, data: Mapping, source: str) -> None:
    for key, value in data.items():
        setting = BY_NAME.get(key)
        if setting is None:
            if key.upper() in BY_NAME:
                raise ConfigError(N_("unknown setting %(name)s in %(source)s (keys are "
                                     "upper case: did you mean %(upper)s?)"),
                                  name=key, source=source, upper=key.upper())
            raise ConfigError(N_("unknown setting %(name)s in %(source)s"),
                              name=key, source=source)
        values[key] = _coerce(setting, value, source)


def write_values(node_dir: Path, changes: Mapping) -> None:
    """Rewrite the ``KEY = value`` lines of ``changes`` in a node's siji.toml, adding any
    that are missing; the rest of the file (comments included) stays as it is."""
    path = Path(node_dir) / CONFIG_NAME
    text = path.read_text("utf-8")
    for key, value in changes.items():
        line = tomli_w.dumps({key: value}).strip()
        text, n = re.subn(rf"(?m)^{key} = .*$", lambda _m, line=line: line, text)
        if n != 1:
            text = text.rstrip("\n") + f"\n\n{line}\n"
    path.write_text(text, "utf-8")


def read_config_file(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(N_("no config file at %(path)s: run `siji init` there first, "
                             "or pass --dir"), path=path) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(N_("config file %(path)s is not valid TOML: %(problem)s"),
                          path=path, problem=str(e)) from None
    except OSError as e:
        raise ConfigError(N_("cannot read config file %(path)s: %(problem)s"),
                          path=path, problem=e.strerror) from None


def load(node_dir: Path, overrides: Mapping | None = None,
         environ: Mapping[str, str] | None = None) -> dict:
    """Load and validate the settings of the node in ``node_dir``."""
    values = {s.name: s.default for s in SETTINGS}
    path = Path(node_dir) / CONFIG_NAME
    _merge(values, read_config_file(path), str(path))
    environ = os.environ if environ is None else environ
    env = {k.removeprefix("SIJI_"): v for k, v in environ.items()
           if k.startswith("SIJI_") and k not in CLI_VARIABLES}
    _merge(values, env, "environment")
    _merge(values, overrides or {}, "overrides")
    return validate(values)


def validate(values: dict) -> dict:
    for setting in SETTINGS:
        if setting.check is not None:
            values[setting.name] = setting.check(values[setting.name])
        if setting.required and values[setting.name] in ("", None):
            raise ConfigError(N_("setting %(name)s is required"), name=setting.name)
    if values["TIER"] == "city" and values["PARENT_URL"]:
        raise ConfigError(N_("setting PARENT_URL must be empty for the city, the top tier"))
    from node import validate as v
    from node.errors import ValidationError
    try:
        v.node_id("NODE_ID", values["NODE_ID"])
    except ValidationError as e:
        raise ConfigError(N_("setting NODE_ID: %(problem)s"), problem=e.english()) from None
    return values


def _limit_defaults():
    from node.deadlines import DEFAULT_LIMITS
    return DEFAULT_LIMITS


def _risk_defaults():
    from node.warnings import DEFAULT_RISK
    return DEFAULT_RISK


_TABLE_DEFAULTS = {"LIMITS": _limit_defaults, "RISK": _risk_defaults}


def render_config(values: Mapping) -> str:
    """A commented TOML config with every setting, its help and its value."""
    lines = ["# siji node configuration. Every setting is listed with its help text;",
             "# see docs/settings.md. Keys are UPPERCASE. Keep it private (mode 0600):",
             "# it may hold SECRET_KEY.", ""]
    for setting in SETTINGS:
        value = values.get(setting.name, setting.default)
        lines.append(f"# {setting.help}")
        if setting.name in _TABLE_DEFAULTS:
            defaults = ", ".join(f"{k} = {v}" for k, v in _TABLE_DEFAULTS[setting.name]().items())
            lines.append(f"# built-in defaults: {defaults}")
        rendered = tomli_w.dumps({setting.name: value}).strip()
        if setting.type is dict:
            # inline table keeps every setting on one line and the file flat
            inner = ", ".join(tomli_w.dumps({k: v}).strip() for k, v in value.items())
            rendered = f"{setting.name} = {{{inner}}}" if value else f"{setting.name} = {{}}"
        elif setting.type is list and value and isinstance(value[0], dict):
            items = ", ".join(
                "{" + ", ".join(tomli_w.dumps({k: v}).strip() for k, v in item.items()) + "}"
                for item in value)
            rendered = f"{setting.name} = [{items}]"
        lines.append(rendered)
        lines.append("")
    return "\n".join(lines)
