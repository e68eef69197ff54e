"""Settings: each declared once, by the module that owns it, with default and help text.

This module holds the registry and the settings of the node itself (its id,
tier, parent, files, time zone, language, address). Every other setting is
declared where it is used, with :func:`declare` at import: the limits by
``deadlines``, the risk formula by ``warnings``, the sync timing by
``pacing``, and so on. ``node.core`` imports every layer that declares one,
so whoever opens a node through it sees them all.

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

from node.errors import N_, ConfigError, ValidationError
from node.tiers import TIER_RANK, TIERS  # noqa: F401 - TIER_RANK: part of this module's API
from node.validate import node_id

CONFIG_NAME = "siji.toml"
# SIJI_ variables that belong to the command line, not to settings
CLI_VARIABLES = ("SIJI_DIR", "SIJI_LANG", "SIJI_DEBUG", "SIJI_ADMIN_PASSWORD", "SIJI_PASSWORD")
LANGUAGES = ("zh", "en")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type
    check: Callable[[Any], Any] | None = None  # returns the normalised value or raises ConfigError
    required: bool = False  # written by `siji init`; no usable default
    # a table whose keys have built-in defaults: shown in the config `siji init` writes
    built_in: Mapping | None = None


# Every declared setting, in the order declared, and by name: filled by declare().
SETTINGS: list[Setting] = []
BY_NAME: dict[str, Setting] = {}


def declare(*declared: Setting) -> None:
    """Add settings to the registry (at import of the module that owns them)."""
    for setting in declared:
        if BY_NAME.get(setting.name, setting) is not setting:
            raise ValueError(f"setting {setting.name} is declared twice")
        if setting.name not in BY_NAME:
            SETTINGS.append(setting)
            BY_NAME[setting.name] = setting


def choice(name: str, allowed: tuple[str, ...]) -> Callable[[Any], Any]:
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


def non_negative(name: str) -> Callable[[Any], Any]:
    def check(value):
        if value < 0:
            raise ConfigError(N_("setting %(name)s must not be negative"), name=name)
        return value
    return check


def at_least_one(name: str) -> Callable[[Any], Any]:
    def check(value):
        if value < 1:
            raise ConfigError(N_("setting %(name)s must be at least 1"), name=name)
        return value
    return check


declare(
    Setting("NODE_ID", "", "This node's id, unique in the whole network (e.g. its 区划代码).",
            str, required=True),
    Setting("NODE_NAME", "", "This node's name as people read it, e.g. 东山村.", str,
            required=True),
    Setting("TIER", "village", "This node's tier: city, town, area or village.", str,
            choice("TIER", TIERS), required=True),
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
            choice("LANGUAGE", LANGUAGES)),
    Setting("HOST", "127.0.0.1", "Address `siji serve` listens on.", str),
    Setting("PORT", 8000, "Port `siji serve` listens on.", int, non_negative("PORT")),
    Setting("HTTPS", False, "Whether people reach this node over HTTPS, through a TLS proxy "
            "in front of `siji serve` (docs/deploy.md): then session cookies are sent only over "
            "HTTPS (Secure), browsers are told to keep to HTTPS (HSTS), and the proxy's "
            "X-Forwarded-Proto is believed. Leave it false for a node on 127.0.0.1.", bool),
)


def _coerce(setting: Setting, value, source: str):
    if setting.type is int and isinstance(value, str) and source == "environment":
        with contextlib.suppress(ValueError):
            value = int(value)
    if setting.type is bool and isinstance(value, str) and source == "environment":
        value = {"true": True, "1": True, "false": False, "0": False}.get(value.lower(), value)
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
    try:
        node_id("NODE_ID", values["NODE_ID"])
    except ValidationError as e:
        raise ConfigError(N_("setting NODE_ID: %(problem)s"), problem=e.english()) from None
    return values


def render_config(values: Mapping) -> str:
    """A commented TOML config with every setting, its help and its value."""
    lines = ["# siji node configuration. Every setting is listed with its help text;",
             "# see docs/settings.md. Keys are UPPERCASE. Keep it private (mode 0600):",
             "# it may hold SECRET_KEY.", ""]
    for setting in SETTINGS:
        value = values.get(setting.name, setting.default)
        lines.append(f"# {setting.help}")
        if setting.built_in:
            defaults = ", ".join(f"{k} = {v}" for k, v in setting.built_in.items())
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
