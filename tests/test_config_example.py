"""The documented example config is valid: a node starts with it."""

from __future__ import annotations

import shutil
from pathlib import Path

from node import settings

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_loads(tmp_path):
    shutil.copy(ROOT / "config" / "example-village.toml", tmp_path / settings.CONFIG_NAME)
    loaded = settings.load(tmp_path, environ={})
    assert loaded["TIER"] == "village" and loaded["LIMITS"]["settle"] == 45
    assert loaded["LIMITS"]["accept"] == 15
    assert any(p["name"] == "本地重要会议" for p in loaded["SENSITIVE_DATES"])
