"""The demo network: its fifteen places, its directory, and making and enrolling its nodes.

Each node is made as `siji init` makes one, in its own directory under the
demo directory, and enrolled with its parent by a one-time code over HTTP,
as `siji enroll-code` and `siji enroll --code` do it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import random
import shutil
import socket
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import click

from node import core, enroll, i18n, settings, store, users
from node.demo import sample
from node.errors import N_, NodeError
from node.sync import http

MANIFEST = "demo.json"  # marks a directory as a demo network: only such a directory is cleared
LOCK = ".demo.lock"
# every account's, printed for all to read: the demo is for looking around, on 127.0.0.1 only
PASSWORD = "siji-demo"  # noqa: S105
HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 8000
# short enough that a change visibly travels within seconds, long enough for 2 cores
SYNC = {"SYNC_INTERVAL": 5, "SYNC_JITTER": 2, "URGENT_CHECK": 1}
# a field that never goes above a tier, to be seen at work: a petitioner's ID number stays
# at the town and below; the city sees where it stays (docs/routing.md)
POLICY = {"NEVER_ABOVE": {"id_number": "town"}}


@dataclass(frozen=True)
class Place:
    id: str
    name: str
    tier: str
    parent: str | None = None


NETWORK: tuple[Place, ...] = (
    Place("qingshan", "青山市", "city"),
    Place("donghe", "东河镇", "town", "qingshan"),
    Place("donghe1", "东河一片", "area", "donghe"),
    Place("dongshan", "东山村", "village", "donghe1"),
    Place("nangang", "南岗村", "village", "donghe1"),
    Place("donghe2", "东河二片", "area", "donghe"),
    Place("liushu", "柳树屯", "village", "donghe2"),
    Place("yangjia", "杨家庄", "village", "donghe2"),
    Place("xishan", "西山镇", "town", "qingshan"),
    Place("xishan1", "西山一片", "area", "xishan"),
    Place("shimen", "石门村", "village", "xishan1"),
    Place("huayuan", "花园村", "village", "xishan1"),
    Place("xishan2", "西山二片", "area", "xishan"),
    Place("qinglong", "青龙村", "village", "xishan2"),
    Place("shuangqiao", "双桥村", "village", "xishan2"),
)
INDEX = {p.id: i for i, p in enumerate(NETWORK)}
TIER_ORDER = ("city", "town", "area", "village")
# accounts besides admin; the username is the role, so one table of logins fits all
STAFF = {"city": ("handler", "leader"), "town": ("handler", "leader"),
         "area": ("handler", "leader"), "village": ("liaison",)}


def url(base_port: int, place: Place) -> str:
    return f"http://{HOST}:{base_port + INDEX[place.id]}"


def children(place: Place) -> list[Place]:
    return [p for p in NETWORK if p.parent == place.id]


def depth(place: Place) -> int:
    return TIER_ORDER.index(place.tier)


def _say(lang: str, msgid: str, **params) -> None:
    click.echo(i18n.translate(msgid, lang, **params), err=True)


# -- the directory ----------------------------------------------------------------

def _read_manifest(root: Path) -> dict | None:
    """The demo's manifest; None when there is none, {} when it is unreadable."""
    try:
        data = json.loads((root / MANIFEST).read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _lock(root: Path, fresh: bool):
    """Check that ``root`` is (or may become) a demo directory and lock it; returns the lock."""
    if root.exists() and not root.is_dir():
        raise NodeError(N_("%(dir)s is a file, not a directory: choose another with --dir"),
                        dir=root)
    manifest = _read_manifest(root)
    if manifest is None and root.exists() and any(p.name != LOCK for p in root.iterdir()):
        raise NodeError(N_("%(dir)s holds something other than a siji demo: choose another "
                           "directory with --dir (nothing was changed)"), dir=root)
    if manifest == {} and not fresh:
        raise NodeError(N_("the demo in %(dir)s is damaged: start it over with --fresh"),
                        dir=root)
    root.mkdir(parents=True, exist_ok=True)
    lock = open(root / LOCK, "w")  # noqa: SIM115 - held until the demo ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise NodeError(N_("a demo is already running in %(dir)s: stop it first (Ctrl-C in its "
                           "terminal)"), dir=root) from None
    return lock


def _clear(root: Path) -> None:
    """Remove the demo's nodes and manifest (only those: anything else in ``root`` stays)."""
    for place in NETWORK:
        shutil.rmtree(root / place.id, ignore_errors=True)
    (root / MANIFEST).unlink(missing_ok=True)


def _check_ports(base_port: int) -> None:
    last = base_port + len(NETWORK) - 1
    for place in NETWORK:
        port = base_port + INDEX[place.id]
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress binds
            try:
                s.bind((HOST, port))
            except OSError:
                raise NodeError(N_("port %(port)s is taken (the demo needs ports %(first)s-"
                                   "%(last)s): stop what uses it or choose other ports with "
                                   "--base-port"), port=port, first=base_port,
                                last=last) from None


# -- making and enrolling nodes ----------------------------------------------------

@contextlib.contextmanager
def one_hash():
    """Hash the demo password once for all its ~40 accounts (scrypt is slow on purpose).

    Every demo account has the same, published password, so sharing one salted
    hash among them gives nothing away; real nodes never do this.
    """
    original = users.generate_password_hash
    users.generate_password_hash = functools.cache(original)
    try:
        yield
    finally:
        users.generate_password_hash = original


def _config(root: Path, place: Place) -> dict:
    return settings.read_config_file(root / place.id / settings.CONFIG_NAME)


def make_node(root: Path, place: Place, base_port: int, parent_url: str | None = None) -> None:
    """Make the node if it is not there; point it at this run's ports; add missing staff.

    ``parent_url`` replaces the parent's address for sync (tests put a proxy there);
    enrollment (:func:`enroll_node`) still goes to the parent's own port.
    """
    node_dir = root / place.id
    port = base_port + INDEX[place.id]
    if parent_url is None:
        parent_url = url(base_port, NETWORK[INDEX[place.parent]]) if place.parent else ""
    if not (node_dir / settings.CONFIG_NAME).exists():
        node = core.init_node(node_dir, tier=place.tier, node_id=place.id, name=place.name,
                              parent_url=parent_url, admin="admin", admin_password=PASSWORD,
                              extra={"PORT": port, **SYNC, **POLICY})
        node.close()
    config = _config(root, place)
    if config.get("PORT") != port or config.get("PARENT_URL", "") != parent_url:
        settings.write_values(root / place.id, {"PORT": port, "PARENT_URL": parent_url})
    node = core.open_node(node_dir)
    try:
        rng = random.Random(f"siji-demo/{place.id}/staff")
        with store.write(node.db):
            for role in STAFF[place.tier]:
                name = sample.person_name(rng)
                if not node.db.conn.execute("SELECT 1 FROM users WHERE username = ?",
                                            (role,)).fetchone():
                    users.add_user(node, role, name, role, PASSWORD)
    finally:
        node.close()


def enrolled(root: Path, place: Place) -> bool:
    return place.parent is None or bool(_config(root, place).get("PARENT_ID"))


def enroll_node(root: Path, place: Place, base_port: int) -> None:
    """Enroll ``place`` with its (running) parent: a one-time code there, the request here."""
    parent_place = NETWORK[INDEX[place.parent]]
    parent = core.open_node(root / parent_place.id)
    try:
        with store.write(parent.db):
            code = enroll.new_code(parent, 1)
    finally:
        parent.close()
    node = core.open_node(root / place.id)
    try:
        http.join(node, url(base_port, parent_place), code)
    finally:
        node.close()


# -- the table ------------------------------------------------------------------------

def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def describe(root: Path, base_port: int) -> dict:
    return {"dir": str(root), "password": PASSWORD, "nodes": [
        {"id": p.id, "name": p.name, "tier": p.tier, "parent": p.parent,
         "url": url(base_port, p) + "/", "users": ["admin", *STAFF[p.tier]]}
        for p in NETWORK]}


def table(data: dict, lang: str) -> str:
    def logins(names):
        if lang != "zh":
            return ", ".join(names)
        return " ".join(f"{n}（{i18n.label('role', n, lang)}）" for n in names)
    head = [i18n.translate(N_("node"), lang), i18n.translate(N_("tier"), lang),
            i18n.translate(N_("address"), lang), i18n.translate(N_("logins"), lang)]
    rows = [["  " * depth(NETWORK[INDEX[n["id"]]]) + n["name"],
             i18n.label("tier", n["tier"], lang), n["url"], logins(n["users"])]
            for n in data["nodes"]]
    widths = [max(_width(r[i]) for r in [head, *rows]) for i in range(3)]
    lines = ["  ".join(_pad(cell, widths[i]) if i < 3 else cell for i, cell in enumerate(r))
             for r in [head, *rows]]
    return "\n".join(line.rstrip() for line in lines)
