"""Settings: declared once, documented, validated; bad keys stop start-up by name."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from node import settings
from node.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write_config(tmp_path, text: str) -> Path:
    (tmp_path / settings.CONFIG_NAME).write_text(text, "utf-8")
    return tmp_path


BASE = 'NODE_ID = "dongshan"\nNODE_NAME = "东山村"\nTIER = "village"\nSECRET_KEY = "s"\n'


def test_every_setting_is_documented():
    doc = (ROOT / "docs" / "settings.md").read_text("utf-8")
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", doc, re.M))
    assert documented == set(settings.BY_NAME), "docs/settings.md and node/settings.py differ"


def test_every_setting_has_help_and_a_default_of_its_type():
    for s in settings.SETTINGS:
        assert s.help.strip() and s.name.isupper()
        assert isinstance(s.default, s.type), s.name


def test_rendered_config_round_trips(tmp_path):
    values = settings.validate({**{s.name: s.default for s in settings.SETTINGS},
                                "NODE_ID": "dongshan", "NODE_NAME": "东山村",
                                "SECRET_KEY": "k", "PARENT_URL": "http://x"})
    text = settings.render_config(values)
    parsed = tomllib.loads(text)
    assert set(parsed) == set(settings.BY_NAME)
    for s in settings.SETTINGS:
        assert f"# {s.help}" in text
    write_config(tmp_path, text)
    assert settings.load(tmp_path, environ={})["NODE_NAME"] == "东山村"


def test_order_defaults_file_environment_overrides(tmp_path):
    write_config(tmp_path, BASE + "PORT = 8100\nDUE_SOON_DAYS = 5\n")
    loaded = settings.load(tmp_path, {"DUE_SOON_DAYS": 7}, environ={"SIJI_PORT": "8200"})
    assert loaded["PORT"] == 8200 and loaded["DUE_SOON_DAYS"] == 7
    assert loaded["TIMEZONE"] == "Asia/Shanghai"


def test_environment_can_set_tables(tmp_path):
    write_config(tmp_path, BASE)
    loaded = settings.load(tmp_path, environ={"SIJI_LIMITS": "{settle = 45}"})
    assert loaded["LIMITS"]["settle"] == 45 and loaded["LIMITS"]["accept"] == 15


@pytest.mark.parametrize("extra,name", [
    ("COLOUR = 1\n", "COLOUR"),
    ("port = 8000\n", "port"),
    ('PORT = "eighty"\n', "PORT"),
    ("PORT = true\n", "PORT"),
    ('TIER = "province"\n', "TIER"),
    ('TIMEZONE = "Mars/Olympus"\n', "TIMEZONE"),
    ("LIMITS = {settle = -1}\n", "settle"),
    ("LIMITS = {extend_max = 40}\n", "extend_max"),
    ("LIMITS = {setle = 30}\n", "setle"),
    ("RISK = {major = 9, serious = 6}\n", "RISK"),
    ('SENSITIVE_DATES = [{from = "13-01", to = "13-02", name = "x"}]\n', "SENSITIVE_DATES"),
    ('NEVER_ABOVE = {summary = "town"}\n', "summary"),
    ('NEVER_ABOVE = {phone = "province"}\n', "province"),
])
def test_bad_keys_are_named(tmp_path, extra, name):
    write_config(tmp_path, BASE + extra)
    with pytest.raises(ConfigError) as info:
        settings.load(tmp_path, environ={})
    assert name in str(info.value)


def test_lowercase_key_gets_a_hint(tmp_path):
    write_config(tmp_path, BASE + "port = 8000\n")
    with pytest.raises(ConfigError, match="did you mean PORT"):
        settings.load(tmp_path, environ={})


def test_unknown_environment_setting_is_named(tmp_path):
    write_config(tmp_path, BASE)
    with pytest.raises(ConfigError, match="FOO"):
        settings.load(tmp_path, environ={"SIJI_FOO": "1"})


def test_cli_variables_are_not_settings(tmp_path):
    write_config(tmp_path, BASE)
    env = {v: "x" for v in settings.CLI_VARIABLES}
    assert settings.load(tmp_path, environ=env)["NODE_ID"] == "dongshan"


@pytest.mark.parametrize("text", ["NODE_ID = ", "[[[", "NODE_ID = 'a'\nNODE_ID = 'b'"])
def test_malformed_toml_is_refused(tmp_path, text):
    write_config(tmp_path, text)
    with pytest.raises(ConfigError, match="not valid TOML"):
        settings.load(tmp_path, environ={})


def test_missing_config_says_to_init(tmp_path):
    with pytest.raises(ConfigError, match="siji init"):
        settings.load(tmp_path, environ={})


def test_required_settings(tmp_path):
    write_config(tmp_path, 'NODE_ID = "dongshan"\nTIER = "village"\n')
    with pytest.raises(ConfigError, match="NODE_NAME|SECRET_KEY"):
        settings.load(tmp_path, environ={})


def test_city_has_no_parent(tmp_path):
    write_config(tmp_path, BASE.replace("village", "city") + 'PARENT_URL = "http://x"\n')
    with pytest.raises(ConfigError, match="PARENT_URL"):
        settings.load(tmp_path, environ={})


def test_bad_node_id(tmp_path):
    write_config(tmp_path, BASE.replace('"dongshan"', '"东山"'))
    with pytest.raises(ConfigError, match="NODE_ID"):
        settings.load(tmp_path, environ={})


def test_every_command_is_in_the_cli_docs():
    import click

    from node.cli import cli

    doc = (ROOT / "docs" / "cli.md").read_text("utf-8")

    def walk(command, path):
        yield path
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{path} {name}")

    missing = [p for p in walk(cli, "siji") if p != "siji" and f"## `{p}`" not in doc]
    assert not missing, f"run scripts/cli-doc > docs/cli.md; missing: {missing}"


def test_every_case_action_is_in_the_cli_docs():
    from node.cases import RULES
    doc = (ROOT / "docs" / "cli.md").read_text("utf-8")
    assert all(f"| `{a}` |" in doc for a in RULES), "run scripts/cli-doc > docs/cli.md"
