"""Issue 5's network tests with real processes: every node a `siji serve` on 127.0.0.1.

Part 1 runs on the 15-node network of `siji demo` (one per module, sample data
and all), along the branch 东山村 dongshan → 东河一片 donghe1 → 东河镇 donghe →
青山市 qingshan. Part 2 builds that one chain with :mod:`node.demo`'s functions
and puts a :class:`faultproxy.FaultProxy` in front of every parent.

People act with the `siji` command at their own node (`case add`, `case act`,
`warning add`, `warning act`); sync is driven with `siji sync` (one child's
session with its parent, push then pull), so nothing waits for a schedule. The
nodes' own schedulers sync as well, at any moment: that is allowed (sessions
are exactly once), and no assertion depends on timing. A successful `siji sync`
of a child is a barrier: whatever routing allows to cross that link, in either
direction, has crossed it when the session ends, so "not there" after it means
"not sent". Results are read from the nodes' SQLite files.

One thing is not real time: the alarm for a warning not acknowledged within
WARNING_ACK_HOURS (at least an hour) is raised by calling the warning job's
function (``jobs.check_warnings``, what `siji serve` runs each minute) on the
late node's real database with its clock moved on three hours; the alarm then
travels by `siji sync` like everything else.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import test_demo
import test_figures
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from faultproxy import FaultProxy, Faults
from test_demo import port_free
from test_serve import SIJI

from node import core, demo, events, log, validate, warnings
from node.demo import sample
from node.sync import jobs

pytestmark = pytest.mark.slow

V, A, T, C = "dongshan", "donghe1", "donghe", "qingshan"  # village, area, town, city
PATH = (V, A, T, C)
OFF_PATH = ("nangang", "donghe2", "xishan")  # the siblings of V, A and T
UP = (V, A, T)          # children whose sessions carry events up, in order
DOWN = (T, A, V)        # ... and down
ROUNDS = 6              # passes over the links before a flow counts as stuck
REGION = "620102"       # no sample ID number has it (sample.REGIONS)
TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()  # the nodes' TIMEZONE
YEAR_AGO = (datetime.now(ZoneInfo("Asia/Shanghai")).date() - timedelta(days=365)).isoformat()


# -- people, commands and files --------------------------------------------------------

@dataclass(frozen=True)
class Person:
    """A petitioner no one else in the network has: a fresh ID number, phone and token."""

    name: str
    id_number: str
    phone: str
    token: str  # put in the summary: the case's own text

    @classmethod
    def new(cls) -> Person:
        rng = random.Random(os.urandom(16))
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50))
        body = f"{REGION}{born:%Y%m%d}{rng.randrange(1000):03d}"
        total = sum(int(d) * w for d, w in zip(body, validate.ID_WEIGHTS, strict=True))
        return cls(sample.person_name(rng), body + validate.ID_CHECK[total % 11],
                   f"1391234{rng.randrange(10000):04d}", f"wangce{rng.getrandbits(48):012x}")

    @property
    def needles(self) -> tuple[bytes, ...]:
        return self.id_number.encode(), self.phone.encode(), self.token.encode()


def siji(root: Path, node: str, *args, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIJI_")}
    result = subprocess.run([SIJI, "--dir", str(root / node), "--lang", "en",
                             *map(str, args)], capture_output=True, text=True, timeout=120,
                            env=env)
    if check:
        assert result.returncode == 0, f"siji {' '.join(map(str, args))} at {node}: " \
                                       f"{result.stderr}"
    return result


def fields(**values) -> list[str]:
    return [arg for k, v in values.items() for arg in ("-f", f"{k}={v}")]


def add_case(root: Path, node: str, who: str, person: Person, summary: str = "低保金三个月未发放"
             ) -> str:
    out = siji(root, node, "--json", "case", "add", "--as", who, "--category", "dibao",
               "--summary", f"{summary} {person.token}", "--petitioner",
               f"{person.name},{person.id_number},{person.phone}")
    return json.loads(out.stdout)["id"]


def act(root: Path, node: str, case_id: str, action: str, who: str, **values) -> None:
    siji(root, node, "case", "act", case_id, action, "--as", who, *fields(**values))


def raise_warning(root: Path, node: str, who: str, **values) -> tuple[str, str]:
    out = json.loads(siji(root, node, "--json", "warning", "add", "--as", who,
                          *fields(**values)).stdout)
    return out["id"], out["risk_level"]


def acknowledge(root: Path, node: str, warning_id: str, who: str = "handler") -> None:
    siji(root, node, "warning", "act", warning_id, "acknowledge", "--as", who,
         *fields(note="已知悉，正在落实稳控措施"))


SYNCED = re.compile(r"Synced: sent (\d+), received (\d+) events")


def sync(root: Path, node: str) -> tuple[int, int]:
    """`siji sync` at ``node`` (a clean link: it must succeed); (sent, received)."""
    out = siji(root, node, "sync")
    sent, received = SYNCED.search(out.stdout).groups()
    return int(sent), int(received)


def sync_all(root: Path, nodes, attempts: int = 5) -> list[subprocess.CompletedProcess]:
    """`siji sync` at each of ``nodes`` at once (independent links)."""
    with ThreadPoolExecutor(len(nodes)) as pool:
        return list(pool.map(lambda n: siji(root, n, "sync", "--attempts", attempts,
                                            check=attempts > 1), nodes))


def drive(root: Path, children, until, what: str) -> None:
    """Sync ``children`` in order, again and again, until ``until()`` holds."""
    for _ in range(ROUNDS):
        for child in children:
            if until():
                return
            sync(root, child)
    if not until():
        pytest.fail(f"not after {ROUNDS} rounds of syncs: {what}")


def connect(root: Path, node: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{root / node / 'siji.db'}?mode=ro", uri=True, timeout=30)


def rows(root: Path, node: str, sql: str, *args) -> list[tuple]:
    conn = connect(root, node)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def history(root: Path, node: str, subject: str) -> list[tuple[str, int, str]]:
    """(origin, seq, digest) of the subject's events at ``node``."""
    return [(o, s, bytes(d).hex()) for o, s, d in rows(
        root, node, "SELECT origin, seq, digest FROM events WHERE subject = ? "
        "ORDER BY origin, seq", subject)]


def wrote(root: Path, node: str, origin: str, subject: str) -> bool:
    """Whether ``node`` holds an event of ``subject`` written at ``origin``."""
    return bool(rows(root, node, "SELECT 1 FROM events WHERE subject = ? AND origin = ?",
                     subject, origin))


def same(root: Path, nodes, subject: str) -> bool:
    """Whether ``nodes`` hold the same events of ``subject`` (ids and digests)."""
    first = history(root, nodes[0], subject)
    return all(history(root, node, subject) == first for node in nodes[1:])


def case(root: Path, node: str, case_id: str) -> dict | None:
    conn = connect(root, node)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM cases WHERE id = ?", (case_id,)).fetchone()
        return dict(row) if row else None
    finally:
        conn.close()


def holder(root: Path, node: str, case_id: str) -> str | None:
    return (case(root, node, case_id) or {}).get("holder")


def acks(root: Path, node: str, warning_id: str) -> set[str]:
    return {r[0] for r in rows(root, node, "SELECT node_id FROM warning_acks WHERE warning_id "
                               "= ?", warning_id)}


def receipts(root: Path, node: str, warning_id: str) -> set[str]:
    return {r[0] for r in rows(root, node, "SELECT node_id FROM warning_receipts WHERE "
                               "warning_id = ?", warning_id)}


def alarms(root: Path, node: str, warning_id: str) -> set[str]:
    return {r[0] for r in rows(root, node, "SELECT node_id FROM warning_alarms WHERE "
                               "warning_id = ?", warning_id)}


def kinds(root: Path, node: str, subject: str) -> Counter:
    """(type, origin) of the subject's events at ``node``, counted."""
    return Counter(rows(root, node, "SELECT type, origin FROM events WHERE subject = ?",
                        subject))


def figures(root: Path, node: str, *args) -> dict:
    return json.loads(siji(root, node, "--json", "figures", *args).stdout)


def has_person(root: Path, node: str, person: Person) -> bool:
    return bool(rows(root, node, "SELECT 1 FROM petitioners WHERE id_number = ? OR phone = ?",
                     person.id_number, person.phone))


def verify_history(root: Path, at: str, subject: str) -> None:
    """Every event of ``subject`` stored at ``at`` verifies under its origin's own key (as
    the origin itself holds it), and its stored digest is the digest of what is stored."""
    conn = connect(root, at)
    try:
        db = SimpleNamespace(conn=conn)
        for origin, seq, digest in history(root, at, subject):
            event = log.get_event(db, f"{origin}:{seq}")
            own = rows(root, origin, "SELECT sign_pub FROM nodes WHERE node_id = ?", origin)
            key = Ed25519PublicKey.from_public_bytes(bytes(own[0][0]))
            assert events.verify(event, key), (at, origin, seq)
            assert event.digest().hex() == digest, (at, origin, seq)
    finally:
        conn.close()


def checkpoint(path: Path) -> None:
    """Move the WAL into the database file and empty it (the serving process may be busy)."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        for _ in range(100):
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.1)
    finally:
        conn.close()
    pytest.fail(f"{path}: the WAL could not be checkpointed")


def files_holding(directory: Path, needles) -> dict[str, list[str]]:
    """Which files under ``directory`` (database, WAL, logs, keys...) contain which needles."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = [n.decode() for n in needles if n in data]
        if hits:
            found[str(path.relative_to(directory))] = hits
    return found


def free_base(n: int) -> int:
    """``n`` free ports in a row, below the ephemeral range other tests' ports come from."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000)
        if all(port_free(base + i) for i in range(n)):
            return base
    pytest.fail(f"no {n} free ports in a row")


def deadline(days: int = 20) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


# -- part 1: the 15-node demo network ----------------------------------------------------

class Demo(test_demo.Demo):
    """`siji demo` as test_demo runs it, but with SIJI_DEBUG=1: a crash shows its traceback."""

    def __init__(self, root: Path, *args):
        test_demo.Demo.runs += 1
        self.out = root.parent / f"demo-{test_demo.Demo.runs}.out"
        self.err = root.parent / f"demo-{test_demo.Demo.runs}.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIJI_")}
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen([SIJI, "--lang", "en", "demo", "--dir", str(root),
                                          *map(str, args)], stdout=out, stderr=err,
                                         env={**env, "SIJI_DEBUG": "1"})


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> Path:
    """`siji demo` in a temporary directory: 15 node processes, enrolled, with sample data."""
    root = tmp_path_factory.mktemp("network") / "demo"
    run = Demo(root, "--base-port", free_base(len(demo.NETWORK)))
    try:
        run.ready()
        yield root
    finally:
        if run.proc.poll() is None:
            run.stop(signal.SIGINT)  # the demo stops its 15 nodes


def test_a_case_settled_in_the_village_never_leaves_it(network):
    root, person = network, Person.new()
    kept = add_case(root, V, "liaison", person)
    act(root, V, kept, "settle", "liaison", reply="经村两委当场协调，已当面答复，当事人满意。",
        decision="explain")
    assert (case(root, V, kept)["state"], holder(root, V, kept)) == ("replied", V)  # 当场化解
    marker = add_case(root, V, "liaison", Person.new(), summary="需片区协调的事项")
    act(root, V, marker, "escalate", "liaison", to=A, reason="村里无权处理")
    # the village's session pushes all that the area may have; the marker shows it did
    drive(root, [V], lambda: holder(root, A, marker) == A, "the escalated marker reaches the area")
    assert history(root, A, marker) == history(root, V, marker)
    sync_all(root, [A, T])  # and on up: the town and city get what the area may pass on
    assert len(history(root, V, kept)) == 2 and has_person(root, V, person)
    for place in demo.NETWORK:
        if place.id == V:
            continue
        assert history(root, place.id, kept) == [], place.id
        assert not has_person(root, place.id, person), place.id
        assert not rows(root, place.id, "SELECT 1 FROM cases WHERE id = ?", kept), place.id

    # ... except as counts: the village's figures count it (how they reach the city, and
    # add up there, is test_every_level_s_figures_equal_a_direct_count_of_its_subtree)
    own = figures(root, V, "--report", "--from", YEAR_AGO, "--to", TODAY)
    assert own["units"][V]["measures"]["answered"] >= 1


def test_an_escalated_case_reaches_the_town_and_the_city_with_its_history(network):
    root, person = network, Person.new()
    case_id = add_case(root, V, "liaison", person)
    act(root, V, case_id, "escalate", "liaison", to=A, reason="涉及镇级审批事项，村里无权处理")
    drive(root, [V], lambda: holder(root, A, case_id) == A, "the case reaches the area")
    act(root, A, case_id, "escalate", "handler", to=T, reason="涉及片内多个村，需镇里统筹协调")
    drive(root, [A], lambda: holder(root, T, case_id) == T, "the case reaches the town")
    at_town = history(root, T, case_id)
    assert len(at_town) == 3 and case(root, T, case_id)["summary"].endswith(person.token)
    assert has_person(root, T, person)
    sync(root, T)  # the town's session with the city: held by the town, it stops there
    assert history(root, C, case_id) == []

    act(root, T, case_id, "escalate", "handler", to=C, reason="涉及跨镇政策协调，需市局统筹处理")
    drive(root, [T], lambda: holder(root, C, case_id) == C, "the case reaches the city")
    at_city = history(root, C, case_id)
    assert len(at_city) == 4 and set(at_town) < set(at_city)
    own = {e for e in history(root, V, case_id) if e[0] == V}  # as the village wrote them
    assert len(own) == 2 and {e for e in at_city if e[0] == V} == own  # same ids and digests
    assert {e[0] for e in at_city} == {V, A, T}
    verify_history(root, C, case_id)
    assert case(root, C, case_id)["summary"].endswith(person.token)
    assert has_person(root, C, person)
    # the demo keeps ID numbers at the town and below (NEVER_ABOVE): the city holds the
    # case with the rest of the petitioner's data, and where the ID number stays
    assert rows(root, C, "SELECT id_number, withheld FROM petitioners WHERE phone = ?",
                person.phone) == [(None, '{"id_number": "town"}')]
    assert rows(root, T, "SELECT id_number FROM petitioners WHERE phone = ?",
                person.phone) == [(person.id_number,)]
    checkpoint(root / C / "siji.db")
    assert files_holding(root / C, [person.id_number.encode()]) == {}

    # the city decides; the nodes below, the village included, see the outcome
    act(root, C, case_id, "accept", "handler")
    drive(root, DOWN, lambda: (case(root, V, case_id) or {}).get("state") == "accepted",
          "the city's acceptance reaches the village")
    final = history(root, C, case_id)
    assert len(final) == 5
    for node in PATH:
        assert history(root, node, case_id) == final, node
        assert (case(root, node, case_id)["holder"], case(root, node, case_id)["state"]) == \
            (C, "accepted"), node
    sync_all(root, OFF_PATH)  # the siblings' sessions: nothing of it is theirs
    for node in OFF_PATH:
        assert history(root, node, case_id) == [] and not has_person(root, node, person), node


def test_a_city_referral_reaches_the_village_and_its_sign_off_comes_back(network):
    root, person = network, Person.new()
    case_id = add_case(root, C, "handler", person, summary="市局来信转办")
    due = deadline()
    act(root, C, case_id, "refer", "handler", to=T, instruction="请镇里核实后办理",
        deadline=due)
    drive(root, [T], lambda: holder(root, T, case_id) == T, "the referral reaches the town")
    assert case(root, T, case_id)["handover"] == "pending"
    act(root, T, case_id, "sign", "handler", note="镇民政办已签收")
    act(root, T, case_id, "refer", "handler", to=A, instruction="请片区入户核实", deadline=due)
    drive(root, [A], lambda: holder(root, A, case_id) == A, "the referral reaches the area")
    act(root, A, case_id, "sign", "handler")
    act(root, A, case_id, "refer", "handler", to=V, instruction="请村里入户核实并反馈",
        deadline=due)
    drive(root, [V], lambda: holder(root, V, case_id) == V, "the referral reaches the village")

    at_village = case(root, V, case_id)
    assert (at_village["handover"], at_village["referred_by"], at_village["referral_due"]) == \
        ("pending", A, due)
    assert has_person(root, V, person) and at_village["summary"].endswith(person.token)
    referrals = [json.loads(b) for (b,) in rows(root, V, "SELECT body FROM events WHERE subject "
                                                "= ? AND type = 'case.referred' ORDER BY lsn",
                                                case_id)]
    assert [(r["to"], r["instruction"], r["deadline"]) for r in referrals] == [
        (T, "请镇里核实后办理", due), (A, "请片区入户核实", due), (V, "请村里入户核实并反馈", due)]
    verify_history(root, V, case_id)

    act(root, V, case_id, "sign", "liaison", note="村信息员已签收")  # 签收, back up to the city
    # (the city's record says "signed" already after the town signed: wait for the event)
    drive(root, UP, lambda: wrote(root, C, V, case_id) and same(root, PATH, case_id),
          "the village's sign-off reaches the city")
    final = history(root, V, case_id)
    assert len(final) == 7 and [e[0] for e in final].count(V) == 1  # the village's 签收
    for node in PATH:
        assert history(root, node, case_id) == final, node
        at = case(root, node, case_id)
        assert (at["holder"], at["handover"]) == (V, "signed"), node
    sync_all(root, OFF_PATH)
    for node in OFF_PATH:
        assert history(root, node, case_id) == [] and not has_person(root, node, person), node


def test_warnings_go_up_by_risk_and_every_level_acknowledges(network):
    root = network
    high, high_level = raise_warning(root, V, "liaison", subject="征地补偿款分配",
                                     place="东山村一组", expected_size=60, beijing_risk="true",
                                     destination="beijing", expected_date=deadline(5))
    low, low_level = raise_warning(root, V, "liaison", subject="低保评议不公开", place="东山村二组",
                                   expected_size=8)
    assert (high_level, low_level) == ("serious", "general")
    drive(root, UP, lambda: history(root, C, high) and history(root, T, low),
          "the serious warning reaches the city and the general one the town")
    sync(root, T)  # after the town's session with the city: the general warning stayed below
    assert history(root, C, low) == []

    for node in (A, T):
        acknowledge(root, node, high)
        acknowledge(root, node, low)
    acknowledge(root, C, high)
    drive(root, (A, T, A, V), lambda: acks(root, V, high) == {A, T, C}
          and acks(root, V, low) == {A, T}, "every acknowledgement reaches the village")
    sync(root, T)
    drive(root, (T,), lambda: acks(root, C, high) == {A, T, C}, "the city sees every ack")
    chain = rows(root, V, "SELECT node_id, actor, at FROM warning_acks WHERE warning_id = ? "
                 "ORDER BY node_id", high)
    for node in PATH:  # the same same-day chain at every level
        assert rows(root, node, "SELECT node_id, actor, at FROM warning_acks WHERE "
                    "warning_id = ? ORDER BY node_id", high) == chain, node
        assert history(root, node, high) == history(root, V, high), node
        assert rows(root, node, "SELECT status FROM warnings WHERE id = ?", high) == \
            [("acknowledged",)], node
        assert receipts(root, node, high) == {A, T, C}, node  # each level above received it
        assert alarms(root, node, high) == set(), node
    assert kinds(root, V, high) == Counter(
        {("warning.raised", V): 1, **{(kind, n): 1 for n in (A, T, C)
                                      for kind in ("warning.received", "warning.acknowledged")}})
    assert receipts(root, V, low) == acks(root, V, low) == {A, T}
    assert history(root, C, low) == [] and history(root, T, low) == history(root, V, low)
    sync_all(root, OFF_PATH)
    for node in OFF_PATH:
        assert history(root, node, high) == history(root, node, low) == [], node


def test_a_warning_not_acknowledged_in_time_alarms_the_next_level_up(network):
    root = network
    warning_id, level = raise_warning(root, V, "liaison", subject="宅基地纠纷", place="东山村三组",
                                      expected_size=12)
    assert level == "general"  # stops at the town: the city would never hear of it
    drive(root, UP[:2], lambda: T in receipts(root, T, warning_id), "the town receives it")
    acknowledge(root, A, warning_id)  # the area acknowledges; the town does not
    sync(root, T)
    assert history(root, C, warning_id) == []

    later = datetime.now(UTC) + timedelta(hours=3)  # WARNING_ACK_HOURS is 2
    for node, expect in ((A, False), (T, True)):  # what the warning job does each minute
        opened = core.open_node(root / node, clock=lambda: later)
        try:
            assert (warning_id in jobs.check_warnings(opened)["alarmed"]) == expect, node
        finally:
            opened.close()
    # the town's alarm takes the warning to the city, the next level up, and down the path
    drive(root, (T, A, V), lambda: T in alarms(root, C, warning_id)
          and T in alarms(root, V, warning_id), "the alarm reaches the city and the village")
    city = core.open_node(root / C)
    try:
        below = [(w["id"], w["late_node"]) for w in warnings.alarms_below(city)]
    finally:
        city.close()
    assert (warning_id, T) in below  # the city's inbox lists it
    assert kinds(root, C, warning_id)[("warning.raised", V)] == 1
    assert kinds(root, C, warning_id)[("warning.alarmed", T)] == 1
    assert alarms(root, C, warning_id) == alarms(root, V, warning_id) == {T}
    for node in PATH:
        assert acks(root, node, warning_id) == {A}, node
    # the city acknowledges; the alarm is answered at every level
    acknowledge(root, C, warning_id)
    drive(root, DOWN, lambda: C in acks(root, V, warning_id), "the city's ack comes down")


def test_personal_data_is_absent_from_the_city_file_for_a_case_it_never_held(network):
    root, person = network, Person.new()
    case_id = add_case(root, V, "liaison", person)
    act(root, V, case_id, "escalate", "liaison", to=A, reason="需片区协调")
    drive(root, [V], lambda: holder(root, A, case_id) == A, "the case reaches the area")
    act(root, A, case_id, "escalate", "handler", to=T, reason="需镇里统筹协调")
    drive(root, [A], lambda: holder(root, T, case_id) == T, "the case reaches the town")
    sync(root, T)  # the town's session with the city: all the city may get, it has
    needles = (*person.needles, case_id.encode())
    checkpoint(root / T / "siji.db")  # the town held it: the same search finds it there
    town_file = (root / T / "siji.db").read_bytes()
    assert all(n in town_file for n in needles), "the byte search finds nothing even here"
    checkpoint(root / C / "siji.db")
    # siji.db, -wal, serve.log, keys ...: of the case, the city holds only the keyed digests
    # of its petitioners, under its number, in the town's relay of them (repeat.relayed,
    # docs/office-work.md)
    assert files_holding(root / C, person.needles) == {}
    assert history(root, C, case_id) == [] and not has_person(root, C, person)
    assert rows(root, C, "SELECT type FROM events WHERE subject LIKE ?", f"%{case_id}%") == []
    assert {r[0] for r in rows(root, C, "SELECT via FROM person_digests WHERE case_id = ?",
                               case_id)} <= {r[0] for r in rows(
        root, C, "SELECT subject FROM events WHERE type = 'repeat.relayed' AND origin = ?", T)}
    assert rows(root, C, "SELECT count(*) FROM person_digests WHERE case_id = ?",
                case_id)[0][0] > 0


def test_no_node_refused_an_event_or_has_one_waiting(network):
    """The whole network, after the sample data and the flows above: every event that
    arrived anywhere was valid and applied (a refusal or a stuck dependency is a bug)."""
    for place in demo.NETWORK:
        assert rows(network, place.id, "SELECT origin, seq, code, reason FROM refusals") == [], \
            place.id
        assert rows(network, place.id, "SELECT origin, seq, waiting_for FROM inbox") == [], \
            place.id


def _subtree(top: str) -> set[str]:
    below, grew = {top}, True
    while grew:
        grew = False
        for place in demo.NETWORK:
            if place.parent in below and place.id not in below:
                below.add(place.id)
                grew = True
    return below


def _direct_counts(root: Path) -> dict[str, dict]:
    """Each node's subtree counted straight from the 15 databases: every case once, from
    the node topping its circle (whose row is the freshest), by where it was registered."""
    every: dict[str, dict] = {}
    for place in demo.NETWORK:
        conn = connect(root, place.id)
        conn.row_factory = sqlite3.Row
        try:
            for row in conn.execute("SELECT * FROM cases"):
                if row["circle_top"] == place.id or row["id"] not in every:
                    every[row["id"]] = dict(row)
        finally:
            conn.close()
    return {place.id: test_figures._oracle(
        [c for c in every.values() if c["origin_node"] in _subtree(place.id)], TODAY)
        for place in demo.NETWORK}


def test_every_level_s_figures_equal_a_direct_count_of_its_subtree(network):
    """Issue 18: after a change at a village and the syncs that carry it (each session
    reports its node's figures first), every node's figures of its subtree, bottom-up
    rollups of its children's, equal a direct count over the cases of all 15 databases."""
    root = network
    add_case(root, V, "liaison", Person.new())
    group = add_case(root, "nangang", "liaison", Person.new())
    act(root, "nangang", group, "escalate", "liaison", to="donghe1", reason="需片区协调")
    order = [p.id for tier in ("village", "area", "town") for p in demo.NETWORK
             if p.tier == tier]

    def shown() -> dict[str, dict]:
        out = {}
        for place in demo.NETWORK:
            units = figures(root, place.id, "--from", YEAR_AGO, "--to", TODAY)["units"]
            out[place.id] = {k: sum(u["measures"][k] for u in units.values())
                             for k in test_figures._oracle([], TODAY)}
        return out

    for _ in range(ROUNDS):
        sync_all(root, order)  # every link, up: the villages', the areas', the towns'
        if shown() == _direct_counts(root):
            break
    at_city = shown()
    assert at_city == _direct_counts(root)
    assert at_city[C]["n"] >= 2 * len(demo.NETWORK) and at_city[C]["overdue"] > 0
    # counts only went up: the city holds no case it never had, and no petitioner of them
    assert not rows(root, C, "SELECT 1 FROM cases WHERE origin_node = ? AND circle_top != ?",
                    V, C)


# -- part 2: one chain, a fault proxy in front of every parent ----------------------------

CHAIN = tuple(demo.NETWORK[demo.INDEX[n]] for n in (C, T, A, V))
# every kind of fault, and a share of requests cut mid-body: pushes are what carries events up
MIXED = Faults(drop=0.2, truncate=0.2, delay=0.2, flip=0.04, duplicate=0.3, reorder=0.3,
               max_bytes=4000, cut_share=0.15)
FAULTY_ROUNDS = 4   # rounds under faults per flow, then clean rounds until it is done
IDLE = 2.0


@dataclass
class Chain:
    root: Path
    proxies: dict[str, FaultProxy]  # by the child that dials through it
    injected: Counter
    failures: list[subprocess.CompletedProcess]
    runs: list[demo.Running]  # the node processes, by CHAIN's order
    base: int

    def faults(self, faults: Faults, seed: int) -> None:
        for i, proxy in enumerate(self.proxies.values()):
            assert proxy.settle()
            self.injected += proxy.injected
            proxy.configure(faults, seed * 10 + i)

    def begin(self, seed: int) -> None:
        """Faults from now on: the nodes' own sessions, set off at once by an urgent event
        (an escalation, a warning), meet them as well as `siji sync` does."""
        self.faults(MIXED, seed)

    def drive(self, until, what: str) -> None:
        """Rounds of `siji sync` at every child at once, still under faults, until
        ``until()``; then clean rounds, so that a flow ends whatever the faults did."""
        try:
            for _ in range(FAULTY_ROUNDS):
                if until():
                    return
                results = sync_all(self.root, UP, attempts=1)
                self.failures += [r for r in results if r.returncode]
        finally:
            self.faults(Faults(), 0)
        for _ in range(ROUNDS):
            if until():
                return
            sync_all(self.root, UP)
        if not until():
            pytest.fail(f"not even over clean links: {what}")

    def settle(self) -> None:
        """Clean passes up and down until one moves nothing."""
        for _ in range(ROUNDS):
            moved = sum(sum(sync(self.root, n)) for n in UP + DOWN)
            for proxy in self.proxies.values():
                assert proxy.settle()
            if not moved:
                return
        pytest.fail("the chain did not settle")


@pytest.fixture(scope="module")
def faulty(tmp_path_factory) -> Chain:
    """dongshan → donghe1 → donghe → qingshan as `siji demo` makes them (sample data too),
    each child syncing (by schedule and by `siji sync`) through a proxy to its parent."""
    root = tmp_path_factory.mktemp("faulty") / "chain"
    base = free_base(len(CHAIN))
    proxies = {p.id: FaultProxy(base + demo.INDEX[p.parent], idle_timeout=IDLE,
                                lifetime=900).start() for p in CHAIN if p.parent}
    runs: list[demo.Running] = []
    try:
        for place in CHAIN:
            demo.make_node(root, place, base,
                           parent_url=proxies[place.id].url if place.parent else None)
        for place in CHAIN:  # enrollment goes to the parent's own port, sync via the proxy
            if place.parent:
                demo.wait_ready(runs)
                demo.enroll_node(root, place, base)
            runs.append(demo.start(root, place, base))
        demo.wait_ready(runs)
        for place in CHAIN:
            demo.seed(root, place, "en")
        yield Chain(root, proxies, Counter(), [], runs, base)
    finally:
        demo.stop(runs)
        for proxy in proxies.values():
            proxy.stop()


def link(root: Path, node: str, peer: str) -> dict:
    got = rows(root, node, "SELECT acked, applied, next_out FROM links WHERE peer = ?", peer)
    return dict(zip(("acked", "applied", "next_out"), got[0], strict=True))


def digests(root: Path, node: str) -> dict[tuple[str, int], bytes]:
    return {(o, s): bytes(d) for o, s, d in rows(root, node, "SELECT origin, seq, digest FROM "
                                                  "events")}


def assert_exactly_once(root: Path) -> None:
    """Every link drained and consistent: each link number one event, stored once."""
    for child, parent in zip(UP, (A, T, C), strict=True):
        up, down = link(root, child, parent), link(root, parent, child)
        assert up["acked"] == down["applied"] == up["next_out"] - 1, (child, up, down)
        assert down["acked"] == up["applied"] == down["next_out"] - 1, (child, up, down)
        shared = digests(root, child).items() & digests(root, parent).items()
        ids = digests(root, child).keys() & digests(root, parent).keys()
        assert len(shared) == len(ids), (child, parent)  # one event per id on both sides
        for node, peer, applied in ((parent, child, down["applied"]),
                                    (child, parent, up["applied"])):
            # each link number the receiver applied is one event stored from that sender
            stored = rows(root, node, "SELECT count(*) FROM events WHERE source = ?", peer)
            assert stored == [(applied,)], (node, peer, stored, applied)
            assert rows(root, node, "SELECT count(*) FROM outbox WHERE peer = ?", peer) == \
                [(0,)], (node, peer)
    for node in PATH:
        assert rows(root, node, "SELECT origin, seq FROM events GROUP BY origin, seq "
                    "HAVING count(*) > 1") == [], node
        assert rows(root, node, "SELECT count(*) FROM inbox") == [(0,)], node
        assert rows(root, node, "SELECT origin, seq, code FROM refusals WHERE seq IS NOT "
                    "NULL") == [], node  # no event refused: none half-delivered or forged


def test_the_same_outcomes_through_a_faulty_network(faulty):
    root, net = faulty.root, faulty
    kept_person, up_person, held_person = Person.new(), Person.new(), Person.new()
    # flow 1: the village registers, settles, escalates, warns; the city refers down
    net.begin(seed=1)
    kept = add_case(root, V, "liaison", kept_person)
    act(root, V, kept, "settle", "liaison", reply="已当场答复，当事人满意。")
    climbing = add_case(root, V, "liaison", up_person)
    act(root, V, climbing, "escalate", "liaison", to=A, reason="村里无权处理")
    held = add_case(root, V, "liaison", held_person)
    act(root, V, held, "escalate", "liaison", to=A, reason="需片区协调")
    high, _ = raise_warning(root, V, "liaison", subject="征地补偿款分配", place="东山村一组",
                            expected_size=60, beijing_risk="true")
    low, _ = raise_warning(root, V, "liaison", subject="低保评议", place="东山村二组",
                           expected_size=8)
    referred = add_case(root, C, "handler", Person.new(), summary="市局来信转办")
    due = deadline()
    act(root, C, referred, "refer", "handler", to=T, instruction="请镇里核实", deadline=due)
    net.drive(lambda: holder(root, A, climbing) == A and holder(root, A, held) == A
              and history(root, C, high) and history(root, T, low)
              and holder(root, T, referred) == T, "flow 1 arrives")

    # flow 2: the area and town pass on, every level acknowledges
    net.begin(seed=2)
    act(root, A, climbing, "escalate", "handler", to=T, reason="需镇里统筹协调")
    act(root, A, held, "escalate", "handler", to=T, reason="需镇里统筹协调")
    act(root, T, referred, "sign", "handler")
    act(root, T, referred, "refer", "handler", to=A, instruction="请片区核实", deadline=due)
    for node in (A, T):
        acknowledge(root, node, high)
        acknowledge(root, node, low)
    acknowledge(root, C, high)
    net.drive(lambda: holder(root, T, climbing) == T and holder(root, T, held) == T
              and holder(root, A, referred) == A and acks(root, V, high) == {A, T, C}
              and acks(root, V, low) == {A, T} and acks(root, C, high) == {A, T, C},
              "flow 2 arrives")

    # flow 3: the town escalates to the city, the area refers to the village
    net.begin(seed=3)
    act(root, T, climbing, "escalate", "handler", to=C, reason="需市局统筹处理")
    act(root, A, referred, "sign", "handler")
    act(root, A, referred, "refer", "handler", to=V, instruction="请村里核实", deadline=due)
    net.drive(lambda: holder(root, C, climbing) == C and holder(root, V, referred) == V,
              "flow 3 arrives")

    # flow 4: the village signs for the referral, the city accepts the escalated case
    net.begin(seed=4)
    act(root, V, referred, "sign", "liaison")
    act(root, C, climbing, "accept", "handler")
    net.drive(lambda: wrote(root, C, V, referred)
              and (case(root, V, climbing) or {}).get("state") == "accepted",
              "flow 4 arrives")

    net.settle()
    assert_exactly_once(root)
    # the faults did happen, and a failed session is an ordinary one-line error
    assert len(set(net.injected) & {"drop", "truncate", "delay", "flip", "duplicate",
                                    "reorder"}) >= 4, net.injected
    assert net.failures, "no sync failed: the faults were not in the way"
    for failed in net.failures:
        assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr

    # the same outcomes as on a clean network
    for node in (A, T, C):
        assert history(root, node, kept) == [] and not has_person(root, node, kept_person)
    for subject, nodes in ((climbing, PATH), (referred, PATH), (high, PATH), (low, (V, A, T)),
                           (held, (V, A, T))):
        shared = history(root, V, subject)
        for node in nodes:
            assert history(root, node, subject) == shared, (subject, node)
    assert len(history(root, C, climbing)) == 5 and len(history(root, C, referred)) == 7
    verify_history(root, C, climbing)
    verify_history(root, V, referred)
    for node in PATH:
        assert (holder(root, node, climbing), case(root, node, climbing)["state"]) == \
            (C, "accepted")
        assert (holder(root, node, referred), case(root, node, referred)["handover"]) == \
            (V, "signed")
        assert acks(root, node, high) == {A, T, C}, node
    assert history(root, C, low) == [] and history(root, C, held) == []
    assert has_person(root, T, held_person)
    checkpoint(root / C / "siji.db")
    assert files_holding(root / C, (*held_person.needles, *kept_person.needles)) == {}


def test_a_relay_that_is_down_is_caught_up_when_it_returns(faulty):
    """The area's process stops. Below it the village keeps working and queues; above it
    the town queues what goes down. Back up, the area gets both and passes each on."""
    root, net = faulty.root, faulty
    net.settle()
    area = next(i for i, r in enumerate(net.runs) if r.place.id == A)
    demo.stop([net.runs[area]])
    try:
        warning, _ = raise_warning(root, V, "liaison", subject="宅基地纠纷", place="东山村三组",
                                   expected_size=30, beijing_risk="true")
        person = Person.new()
        climbing = add_case(root, V, "liaison", person)
        act(root, V, climbing, "escalate", "liaison", to=A, reason="村里无权处理")
        down = add_case(root, T, "handler", Person.new(), summary="镇里交办片区")
        act(root, T, down, "refer", "handler", to=A, instruction="请片区核实", deadline=deadline())
        failed = siji(root, V, "sync", "--attempts", 1, check=False)
        assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
        status = json.loads(siji(root, V, "--json", "status").stdout)
        up = next(link for link in status["links"] if link["peer"] == A)
        assert up["backlog_events"] >= 3 and up["last_error"], up  # both subjects, whole
        status = json.loads(siji(root, T, "--json", "status").stdout)
        down_link = next(link for link in status["links"] if link["peer"] == A)
        assert down_link["backlog_events"] >= 2  # the referred case and its history wait
        assert history(root, A, climbing) == [] and history(root, T, warning) == []
    finally:
        net.runs[area] = demo.start(root, CHAIN[area], net.base)
        demo.wait_ready([net.runs[area]])
    drive(root, [V, A], lambda: holder(root, A, climbing) == A and history(root, C, warning)
          and holder(root, A, down) == A, "the area catches up and passes on")
    net.settle()  # then the receipts and acknowledgements have gone both ways too
    for node in (V, A, T, C):
        assert history(root, node, warning) == history(root, V, warning), node
    assert history(root, A, climbing) == history(root, V, climbing)
    assert history(root, A, down) == history(root, T, down)
    assert_exactly_once(root)

