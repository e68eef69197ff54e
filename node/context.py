"""The node context: settings, database, signing key, calendar and clock in one object.

Domain functions take a :class:`Node` and never commit: the caller (CLI,
web view, sync job) owns the transaction. ``node.core`` opens and makes
node directories; this module only holds what an open node is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlite_utils import Database

from node import deadlines, trust
from node.clock import Clock, iso, system_clock


@dataclass
class Node:
    dir: Path
    settings: dict
    db: Database
    signer: Ed25519PrivateKey
    clock: Clock = system_clock
    _calendar: deadlines.HolidayCalendar | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return self.settings["NODE_ID"]

    @property
    def tier(self) -> str:
        return self.settings["TIER"]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings["TIMEZONE"])

    @cached_property
    def calendar(self) -> deadlines.HolidayCalendar:
        files = [self.dir / f for f in self.settings["HOLIDAY_FILES"]]
        return deadlines.load_calendar(files)

    @cached_property
    def enc_key(self):
        """This node's X25519 key, for opening bundles sent to it."""
        return trust.load_encryption_key(self.dir / self.settings["KEY_DIR"])

    def now(self) -> str:
        return iso(self.clock())

    def today(self) -> date:
        return self.clock().astimezone(self.tz).date()

    def close(self) -> None:
        self.db.conn.close()
