"""`siji demo`: a whole four-tier network on 127.0.0.1 in one command.

One city, two towns, two areas per town and two villages per area: fifteen
nodes, each made as `siji init` makes one, in its own directory under the
demo directory (default ./demo), each served by its own `siji serve`
process on its own port: the city on the base port, the others after it in
the order of :data:`NETWORK`. Each child is enrolled with its parent by a
one-time code over HTTP, as `siji enroll-code` and `siji enroll --code` do
it, and syncs every few seconds (SYNC_INTERVAL in its siji.toml).

Sample data is made at the node it belongs to, with the domain commands
(``cases.register``/``act``, ``warnings.raise_warning``/``act``) under the
node's own users, backdated over the last weeks so that deadlines fall due,
due soon and overdue. Nothing is written into another node's database:
what crosses tiers (an escalation up, a referral down, a warning) travels
by sync under whatever routing policy the nodes apply, so the demo needs no
change when routing does.

Running it again resumes the network in its directory; ``--fresh`` starts
over. SIGINT (Ctrl-C) or SIGTERM stops every node process. The node
processes run in their own sessions, so a Ctrl-C in the terminal reaches
only the demo, which stops them in order; on Linux each also gets SIGTERM
if the demo itself dies (PR_SET_PDEATHSIG), so none is left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import requests

from node import cases, core, enroll, i18n, log, sample, settings, store, users, warnings
from node.errors import N_, ConfigError, NodeError

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
START_SECONDS = 60  # for every node process to answer /healthz
STOP_SECONDS = 10  # for every node process to end after SIGTERM, before SIGKILL


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
def _one_hash():
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
        enroll.join(node, url(base_port, parent_place), code)
    finally:
        node.close()


# -- node processes ----------------------------------------------------------------

@dataclass
class Running:
    place: Place
    port: int
    proc: subprocess.Popen
    log: Path
    ready: bool = False
    reported: bool = False


def _siji_command() -> list[str]:
    script = Path(sys.executable).with_name("siji")
    return [str(script)] if script.exists() else [sys.executable, "-m", "node.cli"]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel send SIGTERM to this node process when the demo dies."""
    import ctypes
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _environment() -> dict:
    """The demo's environment without SIJI_ settings, which would apply to all 15 nodes."""
    keep = ("SIJI_LANG", "SIJI_DEBUG")
    return {k: v for k, v in os.environ.items() if not k.startswith("SIJI_") or k in keep}


def start(root: Path, place: Place, base_port: int) -> Running:
    """Start `siji serve` for one node, its output going to serve.log in its directory."""
    node_dir = root / place.id
    port = base_port + INDEX[place.id]
    log_path = node_dir / "serve.log"
    with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
        proc = subprocess.Popen(
            [*_siji_command(), "--dir", str(node_dir), "serve", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=_environment(), start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None)  # noqa: PLW1509
    return Running(place, port, proc, log_path)


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = path.read_text("utf-8", errors="replace").strip().splitlines()
        if lines:
            return lines[-1][:200]
    return ""


def wait_ready(runs: list[Running]) -> None:
    """Wait until each node process answers /healthz as its node; refuse one that died."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        waiting = [r for r in runs if not r.ready]
        for r in waiting:
            if r.proc.poll() is not None:
                raise NodeError(N_("%(node)s did not start (exit code %(code)s): %(problem)s; "
                                   "see %(log)s"), node=r.place.name, code=r.proc.returncode,
                                problem=_last_line(r.log) or "-", log=r.log)
            with contextlib.suppress(requests.RequestException, ValueError):
                answer = requests.get(f"http://{HOST}:{r.port}/healthz", timeout=2)
                r.ready = answer.ok and answer.json().get("node") == r.place.id
        if all(r.ready for r in runs):
            return
        if time.monotonic() > deadline:
            late = next(r for r in runs if not r.ready)
            raise NodeError(N_("%(node)s did not answer within %(seconds)s seconds; see "
                               "%(log)s"), node=late.place.name, seconds=START_SECONDS,
                            log=late.log)
        time.sleep(0.2)


def stop(runs: list[Running]) -> None:
    """SIGTERM every node process, wait for each, SIGKILL any that outstays STOP_SECONDS."""
    for r in runs:
        if r.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                r.proc.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for r in runs:
        try:
            r.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            r.proc.kill()
            r.proc.wait()


# -- sample data ---------------------------------------------------------------------

SETTLE_REPLIES = (
    "信息员当场查询了发放记录，向当事人解释了政策规定和办理流程，当事人表示理解。",
    "经村两委当场协调，相关款项已于当日补发到位，当事人表示满意。",
    "当场一次性告知了所需材料，村代办员将协助当事人补齐材料后上报。",
)
REPLIES = (  # (decision, reply)
    ("support", "经核查，您反映的情况基本属实。镇民政办已按政策补发相关款项，并将加强审核和公示。"),
    ("reject", "经调查核实，您家庭人均收入高于当地保障标准，暂不符合条件。如家庭情况发生变化，"
               "可重新提出申请。"),
    ("explain", "您反映的问题已会同相关部门研究，现将有关政策规定说明如下，如有疑问可来电咨询。"),
)
ESCALATIONS = ("涉及镇级审批事项，村里无权处理，需上级协调。",
               "当事人多次反映未解决，情绪较大，请上级协调处理。",
               "涉及多户群众，需统一政策口径。")
INSTRUCTIONS = ("请入户核实情况，依规办理，并在期限内反馈结果。",
                "请包片干部牵头，约见当事人当面答复，做好解释疏导工作。",
                "请核实该户家庭收入和申请材料，提出处理意见报回。")
NOT_ACCEPTED = ("所反映事项已进入法院诉讼程序，依法不予受理，已书面告知当事人。",
                "所反映事项已办结并经复核，无新的事实和理由，不再受理。")


class _Clock:
    """The clock a node is seeded under: each step sets the moment it happened."""

    def __init__(self, moment: datetime):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@dataclass
class _Story:
    kind: str  # "case" or "warning"
    subject: str | None = None
    refused: bool = False


@dataclass(order=True)
class _Step:
    at: datetime
    n: int
    story: _Story = field(compare=False)
    role: str = field(compare=False)
    action: str = field(compare=False)
    fields: Callable[[date], dict] = field(compare=False)


class _Plan:
    """A node's sample stories as steps in time: a story is one case or warning."""

    def __init__(self, rng: random.Random, now: datetime, tz: ZoneInfo):
        self.rng, self.now, self.tz = rng, now, tz
        self.today = now.astimezone(tz).date()
        self.steps: list[_Step] = []

    def _moment(self, days_ago: int, minute: int) -> datetime:
        day = self.today - timedelta(days=max(days_ago, 0))
        while day.weekday() >= 5:  # offices work Monday to Friday
            day -= timedelta(days=1)
        local = datetime(day.year, day.month, day.day, 8, 30, tzinfo=self.tz) + timedelta(
            minutes=minute)
        moment = local.astimezone(UTC)
        if moment >= self.now:  # today, before that hour: just now instead
            moment = self.now - timedelta(minutes=30) + timedelta(minutes=minute / 100)
        return moment

    def story(self, kind: str, days_ago: int, *steps) -> None:
        """Steps are (days after the first, role, action, fields or fields(day))."""
        story, base = _Story(kind), self.rng.randrange(0, 240)
        for i, (after, role, action, fields) in enumerate(steps):
            make = fields if callable(fields) else (lambda _day, f=fields: dict(f))
            self.steps.append(_Step(self._moment(days_ago - after, base + 40 * i),
                                    len(self.steps), story, role, action, make))


def _case(rng: random.Random, category: str | None = None, **extra) -> Callable[[date], dict]:
    return lambda _day: {**sample.case_fields(rng, category), **extra}


def _warning(rng: random.Random, place: Place, today: date) -> Callable[[date], dict]:
    where = place.name if place.tier == "village" else rng.choice(sample.VILLAGES)
    return lambda _day: sample.warning_fields(rng, place=where + rng.choice(sample.GROUPS),
                                              today=today)


def _deadline(days: int) -> Callable[[date], dict]:
    return lambda day: {"deadline": (day + timedelta(days=days)).isoformat()}


def _plan(place: Place, names: dict[str, str], rng: random.Random, now: datetime,
          tz: ZoneInfo) -> _Plan:
    """What happened at ``place`` over the last weeks, by tier."""
    p = _Plan(rng, now, tz)
    kids = children(place)
    categories = list(sample.FACTS)
    rng.shuffle(categories)
    cat = iter(categories * 3).__next__

    def reply(_day):
        return dict(zip(("decision", "reply"), rng.choice(REPLIES), strict=True))

    if place.tier == "village":
        L = "liaison"  # noqa: N806
        p.story("case", rng.randrange(0, 4), (0, L, "register", _case(rng, cat())))
        p.story("case", rng.randrange(9, 13), (0, L, "register", _case(rng, cat())))
        if rng.random() < 0.6:  # left too long: overdue to forward
            p.story("case", rng.randrange(18, 30), (0, L, "register", _case(rng, cat())))
        p.story("case", rng.randrange(5, 40), (0, L, "register", _case(rng, cat())),
                (0, L, "settle", lambda _day: {"reply": rng.choice(SETTLE_REPLIES),
                                               "decision": rng.choice(("explain", "support"))}),
                (1, L, "followup", lambda _day: {"rating": rng.choice(("satisfied", "basic"))}))
        p.story("case", rng.randrange(1, 15), (0, L, "register", _case(rng, cat())),
                (rng.randrange(0, 2), L, "escalate", {"reason": rng.choice(ESCALATIONS)}))
        if rng.random() < 0.5:  # a collective petition, escalated the same day
            p.story("case", rng.randrange(0, 6),
                    (0, L, "register", _case(rng, "grassroots", people_count=rng.randrange(
                        8, 30), channel="visit")),
                    (0, L, "escalate", {"reason": "集体访，涉及人数较多，需镇里统筹处理。"}))
        if rng.random() < 0.4:
            p.story("case", rng.randrange(5, 20), (0, L, "register", _case(rng, cat())),
                    (3, L, "withdraw", {"reason": "当事人表示问题已经邻里调解解决，主动撤回。"}))
        handled = rng.random() < 0.5
        p.story("warning", rng.randrange(0, 3), (0, L, "raise", _warning(rng, place, p.today)),
                *([(0, L, "handle", lambda _day: {"measures": sample.warning_measures(rng)})]
                  if handled else []))
        return p
    H, D = "handler", "leader"  # noqa: N806
    if place.tier == "area":
        p.story("case", rng.randrange(0, 5),
                (0, H, "register", _case(rng, cat(), channel="field_visit")))
        p.story("case", rng.randrange(10, 30), (0, H, "register", _case(rng, cat())),
                (0, H, "settle", lambda _day: {"reply": rng.choice(SETTLE_REPLIES)}),
                (1, H, "followup", {"rating": "satisfied"}))
        p.story("case", rng.randrange(3, 10), (0, H, "register", _case(rng, cat())),
                (1, H, "refer", lambda day: {"to": rng.choice(kids).id,
                                             "instruction": rng.choice(INSTRUCTIONS),
                                             **_deadline(10)(day)}))
        p.story("case", rng.randrange(2, 8), (0, H, "register", _case(rng, cat())),
                (0, H, "escalate", {"reason": "涉及片内多个村，需镇里统筹协调。"}))
        p.story("warning", rng.randrange(0, 3), (0, H, "raise", _warning(rng, place, p.today)),
                (0, H, "handle", lambda _day: {"measures": sample.warning_measures(rng),
                                               "lead_leader": names[D]}))
        return p
    assign = {"assignee": f"{'镇民政办' if place.tier == 'town' else '市民政局信访科'} "
                          f"{names[H]}", "lead_leader": names[D]}
    close = {"report": "事项已按期答复，回访当事人表示满意，无遗留问题，同意结案。",
             "signers": [names[D], names[H]]}
    p.story("case", rng.randrange(0, 3), (0, H, "register", _case(rng, cat())))
    p.story("case", rng.randrange(6, 12), (0, H, "register", _case(rng, cat())),
            (rng.randrange(1, 3), H, "accept", {}))
    p.story("case", rng.randrange(20, 35), (0, H, "register", _case(rng, cat())),
            (1, H, "accept", {}), (2, H, "assign", assign))
    ago = rng.randrange(30, 40)
    p.story("case", ago, (0, H, "register", _case(rng, cat())), (1, H, "accept", {}),
            (2, H, "assign", assign), (ago - rng.randrange(2, 9), H, "reply", reply))
    ago = rng.randrange(50, 70)
    p.story("case", ago, (0, H, "register", _case(rng, cat())), (1, H, "accept", {}),
            (2, H, "assign", assign), (25, H, "reply", reply),
            (26, H, "followup", {"rating": "satisfied"}), (27, D, "close", close))
    p.story("case", rng.randrange(10, 20), (0, H, "register", _case(rng, "other")),
            (2, H, "not_accept", {"reason": rng.choice(NOT_ACCEPTED)}))
    for kid in kids:  # 交办: one case down to each child, with an instruction and a deadline
        p.story("case", rng.randrange(4, 10), (0, H, "register", _case(rng, cat())),
                (1, H, "accept", {}),
                (2, H, "refer", lambda day, kid=kid: {"to": kid.id,
                                                      "instruction": rng.choice(INSTRUCTIONS),
                                                      **_deadline(15)(day)}))
    if place.tier == "town":
        ago = rng.randrange(75, 85)  # past the 60 days to settle
        p.story("case", ago, (0, H, "register", _case(rng, cat())), (1, H, "accept", {}),
                (2, H, "assign", assign))
        ago = rng.randrange(62, 70)
        p.story("case", ago, (0, H, "register", _case(rng, cat())), (1, H, "accept", {}),
                (2, H, "assign", assign),
                (ago - 5, D, "extend", {"days": 30, "approver": names[D],
                                        "reason": "需等待县里核定补助标准，经领导批准延期办理。"}))
        p.story("case", rng.randrange(4, 10), (0, H, "register", _case(rng, "youfu")),
                (1, H, "refer_out", {"department": "县退役军人事务局", "reason":
                                     "优抚事项由退役军人事务部门办理，已转出并告知当事人。"}))
        p.story("case", rng.randrange(10, 15), (0, H, "register", _case(rng, cat())),
                (1, H, "accept", {}),
                (3, H, "escalate", {"reason": "涉及跨镇政策协调，需市局统筹处理。"}))
        ago = rng.randrange(60, 70)  # the review of a town's reply is the city's (Art. 35)
        p.story("case", ago, (0, H, "register", _case(rng, cat())), (1, H, "accept", {}),
                (2, H, "assign", assign), (20, H, "reply", reply),
                (30, H, "review_request", {"note": "当事人对答复意见不服，申请复查。"}),
                (31, H, "escalate", {"reason": "当事人申请复查，按规定由上一级复查。"}))
        ago = rng.randrange(15, 25)
        p.story("warning", ago, (0, H, "raise", _warning(rng, place, p.today)),
                (1, H, "handle", lambda _day: {"measures": sample.warning_measures(rng),
                                               "lead_leader": names[D]}),
                (6, H, "defuse", {"note": "经做工作，群众表示通过正常渠道反映，不再集体上访。"}))
    p.story("warning", rng.randrange(0, 2), (0, H, "raise", _warning(rng, place, p.today)))
    return p


def _act(node, step: _Step, day: date) -> None:
    actor = log.Actor(step.role, step.role)
    fields = step.fields(day)
    story = step.story
    if step.action == "register":
        story.subject = cases.register(node, actor, fields).subject
    elif step.action == "raise":
        story.subject = warnings.raise_warning(node, actor, fields).subject
    elif story.kind == "case":
        cases.act(node, actor, story.subject, step.action, fields)
    else:
        warnings.act(node, actor, story.subject, step.action, fields)


def seeded(node) -> bool:
    return node.db.conn.execute(
        "SELECT 1 FROM events WHERE origin = ? AND type IN ('case.registered', "
        "'warning.raised') LIMIT 1", (node.id,)).fetchone() is not None


def seed(root: Path, place: Place, lang: str, now: datetime | None = None) -> list[str]:
    """Make ``place``'s sample cases and warnings, once, in one transaction.

    Returns a line for each story the rules refused (it is skipped from that step on).
    """
    now = now or datetime.now(UTC)
    clock = _Clock(now)
    node = core.open_node(root / place.id, clock=clock)
    refused = []
    try:
        if seeded(node):
            return []
        names = dict(node.db.conn.execute("SELECT username, display_name FROM users"))
        plan = _plan(place, names, random.Random(f"siji-demo/{place.id}"), now, node.tz)
        with store.write(node.db):
            for step in sorted(plan.steps):
                if step.story.refused:
                    continue
                clock.moment = step.at
                try:
                    with store.write(node.db):  # a savepoint: a refused step changes nothing
                        _act(node, step, node.today())
                except NodeError as e:
                    step.story.refused = True
                    refused.append(f"{place.name} {step.action}: {i18n.message(e, lang)}")
    finally:
        node.close()
    return refused


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


# -- the whole run ----------------------------------------------------------------------

class _Stop(Exception):
    """SIGINT or SIGTERM arrived: stop every node."""


def _raise_stop(signum, frame):
    raise _Stop(signum)


def run(root: Path, *, base_port: int | None = None, fresh: bool = False, lang: str = "zh",
        as_json: bool = False) -> None:
    """Make or resume the demo network in ``root``, serve it until SIGINT or SIGTERM."""
    root = Path(os.path.abspath(root))
    runs: dict[str, Running] = {}
    # from the start, so that no signal can leave a node process behind
    handlers = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    lock = None
    try:
        lock = _lock(root, fresh)
        base_port = _prepare(root, base_port, fresh, lang)
        _serve(root, base_port, runs, lang, as_json)
    except _Stop:
        pass
    finally:
        for s in handlers:
            signal.signal(s, signal.SIG_IGN)
        if runs:
            _say(lang, N_("Stopping %(n)s node processes"), n=len(runs))
            stop(list(runs.values()))
        if lock is not None:
            lock.close()
        for s, handler in handlers.items():
            signal.signal(s, handler)


def _prepare(root: Path, base_port: int | None, fresh: bool, lang: str) -> int:
    """Choose the ports, check them, clear the directory if fresh; returns the base port."""
    manifest = _read_manifest(root)
    stored = (manifest or {}).get("base_port")  # --fresh keeps the ports chosen before
    if not (isinstance(stored, int) and 1024 <= stored <= 65535 - len(NETWORK) + 1):
        if manifest and not fresh:
            raise ConfigError(N_("the demo in %(dir)s is damaged: start it over with "
                                 "--fresh"), dir=root)
        stored = None
    base_port = base_port or stored or DEFAULT_BASE_PORT
    _check_ports(base_port)
    if fresh:
        _clear(root)
    (root / MANIFEST).write_text(json.dumps({"siji_demo": 1, "base_port": base_port}), "utf-8")
    if manifest and not fresh:
        _say(lang, N_("Resuming the demo network in %(dir)s"), dir=root)
    else:
        _say(lang, N_("Making a demo network of %(n)s nodes in %(dir)s"), n=len(NETWORK),
             dir=root)
    return base_port


def _serve(root: Path, base_port: int, runs: dict[str, Running], lang: str,
           as_json: bool) -> None:
    """Make, enroll, start and seed what is missing (``runs`` fills as processes start)."""
    with _one_hash():
        for place in NETWORK:
            make_node(root, place, base_port)
    for tier in TIER_ORDER:  # a parent serves before its children enroll with it
        for place in (p for p in NETWORK if p.tier == tier):
            if not enrolled(root, place):
                wait_ready([runs[place.parent]])
                enroll_node(root, place, base_port)
            runs[place.id] = start(root, place, base_port)
    wait_ready(list(runs.values()))
    # deadlines past the shipped holiday calendar would each log a warning here
    logging.getLogger("siji.deadlines").setLevel(logging.ERROR)
    refused = [line for place in NETWORK for line in seed(root, place, lang)]
    if refused:
        _say(lang, N_("%(n)s sample steps were refused and skipped; the first: %(first)s"),
             n=len(refused), first=refused[0])
    data = describe(root, base_port)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo(i18n.translate(N_("The demo network is running: %(n)s nodes in %(dir)s. "
                                     "Every account's password is %(password)s."), lang,
                                  n=len(NETWORK), dir=root, password=PASSWORD))
        click.echo("")
        click.echo(table(data, lang))
        click.echo("")
        click.echo(i18n.translate(N_("Ctrl-C stops every node. Run siji demo again to "
                                     "resume this network, or siji demo --fresh to start "
                                     "over."), lang))
    _watch(list(runs.values()), lang)


def _watch(runs: list[Running], lang: str) -> None:
    """Until a signal: say once when a node process ends by itself."""
    while True:
        time.sleep(1)
        for r in runs:
            if not r.reported and r.proc.poll() is not None:
                r.reported = True
                _say(lang, N_("%(node)s stopped (exit code %(code)s); see %(log)s"),
                     node=r.place.name, code=r.proc.returncode, log=r.log)
        if all(r.reported for r in runs):
            raise NodeError(N_("every node process has stopped; see their serve.log files"))
