"""`siji` at its real edge: ``node.cli.main(argv)`` on real node directories.

Every command is run as a user runs it (argv in, exit code and captured
stdout/stderr out). Bad input must give one line on stderr, a non-zero exit,
no traceback, and leave the node exactly as it was.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import random
import re
import sqlite3
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import pytest
from conftest import PASSWORD, pin

import node
from node import cli, core, settings, store, trust
from node.tiers import TIER_ROLES

PARENT = "http://127.0.0.1:9"
STAFF = (("liu", "liaison", "刘信息员"), ("wang", "handler", "王办理"),
         ("zhao", "leader", "赵领导"))
ZHANG = "张三,11010519491231002X,13800138000"
PERSONAL = ("张三", "11010519491231002X", "13800138000")


def today():
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def future(days: int = 10) -> str:
    return (today() + timedelta(days=days)).isoformat()


# -- running siji ------------------------------------------------------------------

@dataclass
class Result:
    rc: int
    out: str
    err: str


class Siji:
    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, *args) -> Result:
        self.capsys.readouterr()
        rc = cli.main([str(a) for a in args])
        out, err = self.capsys.readouterr()
        return Result(rc, out, err)

    def ok(self, *args) -> Result:
        r = self(*args)
        assert r.rc == 0, (args, r.err)
        assert "Traceback" not in r.out + r.err
        return r

    def json(self, *args):
        return json.loads(self.ok(*args).out)


def refused(r: Result, *needles: str, code: int = 1) -> str:
    """One clear line on stderr, nothing on stdout, a non-zero exit, no traceback."""
    assert r.rc == code, (r.rc, r.out, r.err)
    assert "Traceback" not in r.out + r.err
    assert "unexpected error" not in r.err
    assert r.out == ""
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert len(lines) == 1, r.err
    line = lines[0]
    assert line.startswith("siji: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("SIJI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SIJI_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.setenv("SIJI_PASSWORD", PASSWORD)


@pytest.fixture
def siji(capsys):
    return Siji(capsys)


def init_args(d: Path, tier: str, node_id: str, parent_id: str = "") -> list:
    args = ["--dir", d, "init", "--tier", tier, "--id", node_id, "--name", f"{node_id} 名称"]
    if tier != "city":
        args += ["--parent", PARENT]
    if parent_id:
        args += ["--parent-id", parent_id]
    return args


def make(siji, d: Path, tier: str, node_id: str, parent_id: str = "") -> Path:
    siji.ok(*init_args(d, tier, node_id, parent_id))
    for username, role, name in STAFF:
        if role in TIER_ROLES[tier]:  # a village has no handler
            siji.ok("--dir", d, "user", "add", username, "--role", role, "--name", name)
    return d


def register(siji, d: Path, *extra: str) -> str:
    data = siji.json("--dir", d, "--json", "case", "add", "--as", "liu", "--category", "低保",
                     "--summary", "低保金三个月未发放", "--petitioner", ZHANG, *extra)
    return data["id"]


# -- looking at a node directory ---------------------------------------------------

def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files(d: Path) -> dict[str, tuple[bytes, int]]:
    gc.collect()  # close what earlier commands left open (test_commands_close_the_database)
    return {str(p.relative_to(d)): (p.read_bytes(), mode(p))
            for p in sorted(d.rglob("*")) if p.is_file()}


def query(d: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(d / "siji.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def tables(d: Path) -> dict:
    """Every row of every table, and the schema version: the whole state of the node."""
    gc.collect()
    conn = sqlite3.connect(d / "siji.db")
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out = {n: sorted(map(repr, conn.execute(f'SELECT * FROM "{n}"'))) for n in names}
        out["user_version"] = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()
    assert out["events"] is not None and "cases" in out
    return out


def state_of(d: Path, case_id: str) -> str:
    return query(d, "SELECT state FROM cases WHERE id = ?", (case_id,))[0][0]


# -- fixtures: a town with staff and a case; a town with a pinned village child ---

@dataclass
class Town:
    dir: Path
    case: str


@pytest.fixture
def town(siji, tmp_path) -> Town:
    d = make(siji, tmp_path / "zhen", "town", "zhen", "shi")
    return Town(d, register(siji, d))


@dataclass
class Net:
    town: Path
    village: Path


@pytest.fixture
def net(siji, tmp_path) -> Net:
    """A town and its village, each pinned into the other's trust table (as enrollment does)."""
    t = make(siji, tmp_path / "zhen", "town", "zhen", "shi")
    v = make(siji, tmp_path / "cun", "village", "cun", "zhen")
    a, b = core.open_node(t), core.open_node(v)
    try:
        pin(a, b)
        pin(b, a)
    finally:
        a.close()
        b.close()
    return Net(t, v)


# -- 1. init -----------------------------------------------------------------------

@pytest.mark.parametrize("tier", settings.TIERS)
def test_init_makes_a_private_node(siji, tmp_path, tier):
    d = tmp_path / tier
    r = siji.ok(*init_args(d, tier, f"{tier}1", "" if tier == "city" else "shi"))

    config = d / settings.CONFIG_NAME
    assert mode(config) == 0o600
    text = config.read_text("utf-8")
    for s in settings.SETTINGS:
        assert re.search(rf"^{s.name} = ", text, re.M), f"{s.name} missing from siji.toml"
    loaded = settings.load(d)
    assert (loaded["NODE_ID"], loaded["TIER"]) == (f"{tier}1", tier)
    assert (d / "keys" / trust.SESSION_KEY).exists()

    keys = d / "keys"
    assert mode(keys) & 0o077 == 0
    for name in (trust.SIGN_KEY, trust.ENC_KEY):
        assert mode(keys / name) == 0o600, name
    assert (keys / trust.ROOT_KEY).exists() == (tier == "city")

    db = d / "siji.db"
    assert mode(db) == 0o600
    assert query(d, "PRAGMA application_id")[0][0] == store.APPLICATION_ID
    assert query(d, "SELECT username, role FROM users") == [("admin", "admin")]
    assert query(d, "SELECT node_id, tier FROM nodes") == [(f"{tier}1", tier)]

    signer = trust.load_signing_key(keys)
    fp = trust.fingerprint(trust.raw_public(signer))
    assert re.fullmatch(r"[0-9A-F]{4}(-[0-9A-F]{4}){4}", fp)
    assert fp in r.out


def test_init_city_makes_a_root_of_trust(siji, tmp_path):
    d = tmp_path / "shi"
    siji.ok(*init_args(d, "city", "shi"))
    keys = d / "keys"
    assert mode(keys / trust.ROOT_KEY) == 0o600
    root_cert = json.loads((keys / trust.ROOT_CERT).read_bytes())
    city_cert = json.loads((keys / trust.NODE_CERT).read_bytes())

    root_key = trust.read_private_key(keys / trust.ROOT_KEY, type(trust.load_signing_key(keys)))
    root_pub = trust.raw_public(root_key)
    assert base64.b64decode(root_cert["sign_pub"]) == root_pub
    assert trust.certificate_valid(root_cert, root_pub, today())
    assert trust.certificate_valid(city_cert, root_pub, today())
    assert city_cert["node"] == "shi" and city_cert["tier"] == "city"
    assert base64.b64decode(city_cert["sign_pub"]) == trust.raw_public(
        trust.load_signing_key(keys))
    # the city's own key is not the root: a cert it signed itself would not verify
    assert not trust.certificate_valid(city_cert, trust.raw_public(trust.load_signing_key(keys)),
                                       today())
    tampered = {**city_cert, "node": "other"}
    assert not trust.certificate_valid(tampered, root_pub, today())
    stored = query(d, "SELECT cert FROM nodes WHERE node_id = 'shi'")[0][0]
    assert json.loads(stored) == city_cert


@pytest.mark.parametrize("second_tier", ["city", "town"])
def test_init_twice_refuses_and_changes_nothing(siji, tmp_path, second_tier):
    d = tmp_path / "shi"
    siji.ok(*init_args(d, "city", "shi"))
    before = files(d)
    assert "siji.toml" in before and "siji.db" in before and "keys/sign.key" in before
    r = siji(*init_args(d, second_tier, "shi2", "shi"))
    refused(r, str(d))
    assert files(d) == before


@pytest.mark.parametrize("exists", [False, True])
def test_init_village_without_parent_refused_leaving_nothing(siji, tmp_path, exists):
    d = tmp_path / "cun"
    if exists:
        d.mkdir()
        (d / "notes.txt").write_text("keep me", "utf-8")
    r = siji("--dir", d, "init", "--tier", "village", "--id", "cun", "--name", "东山村")
    refused(r, "--parent")
    if exists:
        assert files(d) == {"notes.txt": (b"keep me", mode(d / "notes.txt"))}
    else:
        assert not d.exists()


@pytest.mark.parametrize("how", ["env", "option"])
def test_init_short_password_refused_leaving_nothing(siji, tmp_path, monkeypatch, how):
    d = tmp_path / "shi"
    args = init_args(d, "city", "shi")
    if how == "env":
        monkeypatch.setenv("SIJI_ADMIN_PASSWORD", "short")
    else:
        args += ["--password", "short"]
    refused(siji(*args), "password")
    assert not d.exists()


@pytest.mark.parametrize("exists", [False, True])
def test_init_failing_late_removes_what_it_made(siji, tmp_path, exists):
    """A bad admin name fails after keys, config and database exist: all are removed."""
    d = tmp_path / "shi"
    if exists:
        d.mkdir()
        (d / "notes.txt").write_text("keep me", "utf-8")
    refused(siji(*init_args(d, "city", "shi"), "--admin", "Not A Name"), "username")
    if exists:
        assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]
    else:
        assert not d.exists()


# -- 2. help -----------------------------------------------------------------------

def _command_paths(command=cli.cli, prefix=()):
    yield prefix
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _command_paths(sub, (*prefix, name))


COMMAND_PATHS = list(_command_paths())


def test_help_walk_finds_every_command():
    found = {" ".join(p) for p in COMMAND_PATHS}
    assert {"", "init", "case add", "case act", "warning act", "user add", "rebuild",
            "serve"} <= found


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "siji")
def test_every_command_has_help_with_an_example(siji, path):
    r = siji.ok(*path, "--help")
    assert "Usage: siji" in r.out
    assert "Example:" in r.out, f"`siji {' '.join(path)} --help` shows no example"


# -- 3. the happy path -------------------------------------------------------------

def test_user_add_and_list(siji, tmp_path):
    d = make(siji, tmp_path / "zhen", "town", "zhen", "shi")
    r = siji.ok("--dir", d, "user", "list")
    assert "liu\t信息员\t刘信息员" in r.out
    rows = siji.json("--dir", d, "--json", "user", "list")
    assert {(u["username"], u["role"]) for u in rows} == {
        ("admin", "admin"), ("liu", "liaison"), ("wang", "handler"), ("zhao", "leader")}
    assert not any("password" in key for u in rows for key in u)
    assert "scrypt" not in r.out and "pbkdf2" not in r.out
    before = tables(d)
    refused(siji("--dir", d, "user", "add", "liu", "--role", "liaison", "--name", "又一个"),
            "liu")
    assert tables(d) == before


def test_user_disable_and_enable(siji, tmp_path):
    d = make(siji, tmp_path / "zhen", "town", "zhen", "shi")
    assert "已停用 liu" in siji.ok("--dir", d, "user", "disable", "liu").out
    assert "liu\t信息员\t刘信息员\t(disabled)" in siji.ok("--dir", d, "user", "list").out
    refused(siji("--dir", d, "case", "add", "--as", "liu", "--category", "低保", "--summary",
                 "x"), "liu")
    assert "Enabled liu." in siji.ok("--dir", d, "--lang", "en", "user", "enable", "liu").out
    assert "(disabled)" not in siji.ok("--dir", d, "user", "list").out
    before = tables(d)
    refused(siji("--dir", d, "user", "disable", "admin"), "admin")  # the last admin
    refused(siji("--dir", d, "user", "disable", "nobody"), "nobody")
    assert tables(d) == before


def test_case_add_with_petitioner_and_json_file(siji, town, tmp_path):
    d = town.dir
    year = today().year
    assert town.case == f"Z-zhen-{year}-0001"
    assert query(d, "SELECT name, id_number, phone FROM petitioners WHERE case_id = ?",
                 (town.case,)) == [PERSONAL]

    r = siji.ok("--dir", d, "case", "add", "--as", "liu", "--category", "dibao", "--summary",
                "第二件", "--petitioner", "李四", "--petitioner", "王五,,13900139000")
    assert f"Z-zhen-{year}-0002" in r.out
    code = query(d, "SELECT query_code FROM cases WHERE id = ?", (f"Z-zhen-{year}-0002",))[0][0]
    assert code in r.out
    assert query(d, "SELECT name, id_number, phone FROM petitioners WHERE case_id = ? "
                 "ORDER BY idx", (f"Z-zhen-{year}-0002",)) == [
        ("李四", None, None), ("王五", None, "13900139000")]

    fields = tmp_path / "case.json"
    fields.write_text(json.dumps({
        "category": "优抚", "summary": "优抚金未到账", "channel": "letter",
        "petitioners": [{"name": "赵六", "phone": "010-12345678", "representative": True}],
    }, ensure_ascii=False), "utf-8")
    data = siji.json("--dir", d, "--json", "case", "add", "--as", "liu", "--json", fields)
    assert data["id"] == f"Z-zhen-{year}-0003" and data["query_code"]
    assert query(d, "SELECT category, channel, summary, query_code FROM cases WHERE id = ?",
                 (data["id"],)) == [("youfu", "letter", "优抚金未到账", data["query_code"])]
    assert query(d, "SELECT name, phone, representative FROM petitioners WHERE case_id = ?",
                 (data["id"],)) == [("赵六", "010-12345678", 1)]


def test_case_list_text_and_json(siji, town):
    d = town.dir
    second = register(siji, d)
    r = siji.ok("--dir", d, "case", "list")
    lines = r.out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(second + "\t") and lines[1].startswith(town.case + "\t")
    assert "已登记" in lines[1] and "低保" in lines[1] and "\tzhen 名称\t" in lines[1]
    assert "2" in lines[2]
    assert siji.ok("--dir", d, "--lang", "en", "case", "list").out.splitlines()[-1] == "2 cases"

    rows = siji.json("--dir", d, "--json", "case", "list")
    assert [row["id"] for row in rows] == [second, town.case]
    assert all(row["state"] == "registered" and row["category"] == "dibao"
               and row["holder"] == "zhen" and row["due_on"] for row in rows)
    assert not any(p in json.dumps(rows, ensure_ascii=False) for p in PERSONAL)
    assert len(siji.json("--dir", d, "--json", "case", "list", "--state", "已登记")) == 2
    assert siji.json("--dir", d, "--json", "case", "list", "--state", "accepted") == []


def test_case_show_as_logs_the_identity_read(siji, town):
    d = town.dir
    r = siji.ok("--dir", d, "case", "show", town.case, "--as", "liu")
    # labels, never codes, in Chinese (issue 17: it printed `category: dibao`)
    assert f"信访件编号: {town.case}" in r.out and "信访类别: 低保" in r.out
    assert "dibao" not in r.out and "registered" not in r.out
    assert "信访人: 张三 13800138000" in r.out
    assert " 登记 liu@zhen:" in r.out
    assert re.search(r"^可办理: .+", r.out, re.M)
    assert query(d, "SELECT actor, action, target FROM audit_log") == [
        ("liu", "read_identity", town.case)]
    en = siji.ok("--dir", d, "--lang", "en", "case", "show", town.case, "--as", "liu").out
    assert f"Case number: {town.case}" in en and "Category: Minimum living allowance" in en

    liu = siji.json("--dir", d, "--json", "case", "show", town.case, "--as", "liu")
    wang = siji.json("--dir", d, "--json", "case", "show", town.case, "--as", "wang")
    assert liu["petitioners"][0]["name"] == "张三"
    assert [h["type"] for h in liu["history"]] == ["case.registered"]
    assert "accept" in wang["allowed_actions"] and "accept" not in liu["allowed_actions"]
    assert "settle" in liu["allowed_actions"]
    assert len(query(d, "SELECT * FROM audit_log")) == 4


def test_case_act_accept_at_a_town(siji, town):
    d = town.dir
    events = len(query(d, "SELECT lsn FROM events"))
    data = siji.json("--dir", d, "--json", "case", "act", town.case, "accept", "--as", "wang",
                     "-f", "note=材料齐全")
    assert data["id"] == town.case and data["state"] == "accepted" and data["event"]
    assert state_of(d, town.case) == "accepted"
    assert len(query(d, "SELECT lsn FROM events")) == events + 1
    r = siji.ok("--dir", d, "case", "act", town.case, "assign", "--as", "wang",
                "-f", "assignee=王办理")
    assert town.case in r.out
    assert state_of(d, town.case) == "in_progress"


def test_case_act_settle_at_a_village(siji, tmp_path):
    d = make(siji, tmp_path / "cun", "village", "cun", "zhen")
    first, second = register(siji, d), register(siji, d)
    assert first.startswith("C-cun-")
    data = siji.json("--dir", d, "--json", "case", "act", first, "settle", "--as", "liu",
                     "-f", "reply=已当场解释政策", "-f", "decision=explain")
    assert data["state"] == "replied"
    assert query(d, "SELECT state, decision, reply FROM cases WHERE id = ?", (first,)) == [
        ("replied", "explain", "已当场解释政策")]
    fields = tmp_path / "settle.json"
    fields.write_text(json.dumps({"reply": "当场补发", "decision": "support"},
                                 ensure_ascii=False), "utf-8")
    siji.ok("--dir", d, "case", "act", second, "settle", "--as", "liu", "--json", fields)
    assert query(d, "SELECT state, decision FROM cases WHERE id = ?", (second,)) == [
        ("replied", "support")]


def test_case_act_refer_down_to_a_child(siji, net):
    case = register(siji, net.town)
    siji.ok("--dir", net.town, "case", "act", case, "accept", "--as", "wang")
    siji.ok("--dir", net.town, "case", "act", case, "refer", "--as", "wang", "-f", "to=cun",
            "-f", "instruction=请村里核实", "-f", f"deadline={future()}")
    assert query(net.town, "SELECT holder, handover, referral_due FROM cases WHERE id = ?",
                 (case,)) == [("cun", "pending", future())]


def test_warning_add_list_act(siji, town):
    d = town.dir
    data = siji.json("--dir", d, "--json", "warning", "add", "--as", "liu",
                     "-f", "subject=征地补偿", "-f", "place=东山村", "-f", "expected_size=30",
                     "-f", "destination=city", "-f", f"expected_date={future()}")
    wid = data["id"]
    assert wid == f"YJ-zhen-{today().year}-0001"
    assert data["risk_level"] in ("general", "major", "serious")
    assert isinstance(data["risk_score"], int)
    r = siji.ok("--dir", d, "warning", "add", "--as", "liu", "-f", "subject=拆迁",
                "-f", "place=西山村", "-f", "expected_size=3")
    second = f"YJ-zhen-{today().year}-0002"
    assert second in r.out

    rows = siji.json("--dir", d, "--json", "warning", "list")
    assert [w["id"] for w in rows] == [wid, second]  # highest risk first
    assert rows[0]["status"] == "raised" and rows[0]["expected_size"] == 30
    text = siji.ok("--dir", d, "warning", "list").out
    assert wid in text and "征地补偿" in text

    # a level above acknowledges (签收) a warning, never the node that raised it
    refused(siji("--dir", d, "warning", "act", wid, "acknowledge", "--as", "wang"), wid)
    assert siji.json("--dir", d, "--json", "warning", "act", wid, "handle", "--as", "wang",
                     "-f", "measures=包案领导约谈")["status"] == "handling"
    siji.ok("--dir", d, "warning", "act", wid, "defuse", "--as", "wang")
    defused = siji.json("--dir", d, "--json", "warning", "list", "--status", "defused")
    assert [w["id"] for w in defused] == [wid]
    assert defused[0]["measures"] == "包案领导约谈"
    assert query(d, "SELECT node_id, actor FROM warning_acks") == []


ROWS = {"cases": "SELECT * FROM cases ORDER BY id",
        "petitioners": "SELECT * FROM petitioners ORDER BY case_id, idx",
        "supervision_orders": "SELECT * FROM supervision_orders ORDER BY id",
        "warnings": "SELECT * FROM warnings ORDER BY id",
        "warning_acks": "SELECT * FROM warning_acks ORDER BY warning_id, node_id"}


def test_rebuild_recomputes_identical_rows(siji, net, tmp_path):
    d = net.town
    first, second = register(siji, d), register(siji, d)
    siji.ok("--dir", d, "case", "act", first, "accept", "--as", "wang")
    siji.ok("--dir", d, "case", "act", first, "refer", "--as", "wang", "-f", "to=cun",
            "-f", "instruction=请核实", "-f", f"deadline={future()}")
    siji.ok("--dir", d, "case", "act", first, "supervise", "--as", "wang",
            "-f", "instruction=限期办结", "-f", f"deadline={future(5)}")
    wid = siji.json("--dir", net.village, "--json", "warning", "add", "--as", "liu", "-f",
                    "subject=征地", "-f", "place=东山村", "-f", "expected_size=30")["id"]
    siji.ok("--dir", net.village, "export", "--to", "zhen", tmp_path / "usb")  # carried up
    siji.ok("--dir", d, "import", tmp_path / "usb")
    siji.ok("--dir", d, "warning", "act", wid, "acknowledge", "--as", "wang")
    before = {name: query(d, sql) for name, sql in ROWS.items()}
    assert all(before.values()), before  # every table has rows to compare
    assert len(before["cases"]) == 2 and second in {row[0] for row in before["cases"]}

    conn = sqlite3.connect(d / "siji.db")  # damage the derived rows; the log is the truth
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("UPDATE cases SET state = 'concluded', summary = 'x'")
    conn.execute("DELETE FROM warnings")
    conn.commit()
    conn.close()

    r = siji.ok("--dir", d, "--lang", "en", "rebuild")
    assert r.out.strip() == "Rebuilt 2 cases and 1 warnings"
    assert {name: query(d, sql) for name, sql in ROWS.items()} == before
    r = siji.ok("--dir", d, "rebuild")
    assert "2" in r.out and "1" in r.out
    assert {name: query(d, sql) for name, sql in ROWS.items()} == before


# -- 4. bad input: one line, non-zero, nothing changed -------------------------------

def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def _set_port(d: Path) -> None:
    config = d / "siji.toml"
    text, n = re.subn(r"^PORT = .*$", 'PORT = "x"', config.read_text("utf-8"), flags=re.M)
    assert n == 1
    config.write_text(text, "utf-8")


def _replace_db(d: Path, make_db) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(d / "siji.db") + suffix).unlink(missing_ok=True)
    make_db(d / "siji.db")


def _random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(64 * 1024))


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE events (x)")
    conn.execute("INSERT INTO events VALUES (1)")
    conn.commit()
    conn.close()


def _newer(d: Path) -> None:
    conn = sqlite3.connect(d / "siji.db")
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    assert query(d, "PRAGMA user_version")[0][0] == 999


# name: (break the node, needles in every language, needles in English)
BROKEN_NODES = {
    "invalid-toml": (lambda d, mp: _append(d / "siji.toml", "\nbad [\n"), ["siji.toml"],
                     ["not valid TOML"]),
    "unknown-key": (lambda d, mp: _append(d / "siji.toml", "\nCOLOUR = 1\n"), ["COLOUR"],
                    ["unknown setting COLOUR"]),
    "mistyped-key": (lambda d, mp: _set_port(d), ["PORT", "'x'"], ["setting PORT", "int"]),
    "unknown-env": (lambda d, mp: mp.setenv("SIJI_FOO", "1"), ["FOO"],
                    ["unknown setting FOO"]),
    "missing-sign-key": (lambda d, mp: (d / "keys" / "sign.key").unlink(), ["sign.key"],
                         ["missing"]),
    "missing-enc-key": (lambda d, mp: (d / "keys" / "enc.key").unlink(), ["enc.key"],
                        ["missing"]),
    "loose-sign-key": (lambda d, mp: (d / "keys" / "sign.key").chmod(0o644),
                       ["sign.key", "chmod 600"], ["readable by others"]),
    "loose-enc-key": (lambda d, mp: (d / "keys" / "enc.key").chmod(0o640),
                      ["enc.key", "chmod 600"], ["readable by others"]),
    "corrupt-db": (lambda d, mp: _replace_db(d, _random_bytes), ["siji.db"],
                   ["is not a database"]),
    "foreign-db": (lambda d, mp: _replace_db(d, _foreign), ["siji.db"],
                   ["is not a siji database"]),
    "newer-db": (lambda d, mp: _newer(d), ["siji.db", "999"], ["newer than this siji"]),
}


@pytest.mark.parametrize("argv", [["case", "list"], ["case", "add", "--as", "liu",
                                                      "--category", "低保", "--summary", "x",
                                                      "--petitioner", "李四"]],
                         ids=["read", "write"])
@pytest.mark.parametrize("name", list(BROKEN_NODES))
def test_broken_node_refused_by_name_and_untouched(siji, town, monkeypatch, name, argv):
    breakage, needles, english = BROKEN_NODES[name]
    breakage(town.dir, monkeypatch)
    before = files(town.dir)
    refused(siji("--dir", town.dir, *argv), *needles)
    assert files(town.dir) == before
    refused(siji("--dir", town.dir, "--lang", "en", *argv), *needles, *english)
    assert files(town.dir) == before


@pytest.mark.parametrize("argv", [
    ["case", "list"],
    ["case", "add", "--as", "liu", "--category", "低保", "--summary", "x", "--petitioner", "李四"],
    ["case", "act", "{case}", "accept", "--as", "liu"],  # refused: the error path too
], ids=["read", "write", "refused"])
def test_commands_close_the_database(town, capsys, argv):
    """main() is the edge: when it returns, the node's database is closed, not left to gc.

    An open connection keeps siji.db-wal in place; closing the last one removes it.
    """
    wal = town.dir / "siji.db-wal"
    gc.collect()
    assert not wal.exists()
    gc.disable()
    try:
        cli.main(["--dir", str(town.dir), *(a.format(case=town.case) for a in argv)])
        assert not wal.exists(), "the command returned with its database still open"
    finally:
        gc.enable()
        gc.collect()
    assert not wal.exists()
    capsys.readouterr()


def test_no_node_here_refused_and_nothing_made(siji, tmp_path):
    d = tmp_path / "nowhere"
    refused(siji("--dir", d, "case", "list"), "siji.toml", "siji init")
    assert not d.exists()


# name: (argv after --dir, needles in every language[, needles in English])
BAD_INPUT = {
    "unknown-category": (["case", "add", "--as", "liu", "--category", "nope", "--summary", "x",
                          "--petitioner", "李四"], ["category", "nope"]),
    "no-petitioner": (["case", "add", "--as", "liu", "--category", "低保", "--summary", "x"],
                      ["petitioners"]),
    "script-in-name": (["case", "add", "--as", "liu", "--category", "低保", "--summary", "x",
                        "--petitioner", "<script>alert(1)</script>"],
                       ["petitioners[0].name", "<script>"]),
    "bad-check-digit": (["case", "add", "--as", "liu", "--category", "低保", "--summary", "x",
                         "--petitioner", "张三,110105194912310021"],
                        ["petitioners[0].id_number"]),
    "bad-phone": (["case", "add", "--as", "liu", "--category", "低保", "--summary", "x",
                   "--petitioner", "张三,,12345"], ["petitioners[0].phone"]),
    "unknown-user-add": (["case", "add", "--as", "nobody", "--category", "低保", "--summary",
                          "x", "--petitioner", "李四"], ["nobody"]),
    "unknown-user-show": (["case", "show", "{case}", "--as", "nobody"], ["nobody"]),
    "unknown-user-act": (["case", "act", "{case}", "accept", "--as", "nobody"], ["nobody"]),
    "unknown-case": (["case", "show", "Z-zhen-2000-9999", "--as", "liu"], ["Z-zhen-2000-9999"]),
    "pair-without-equals": (["case", "add", "--as", "liu", "--category", "低保", "--summary",
                             "x", "--petitioner", "李四", "-f", "channel"], ["-f", "channel"]),
    "pair-without-key": (["case", "act", "{case}", "note", "--as", "liu", "-f", "=x"],
                         ["-f", "=x"]),
    "unknown-field": (["case", "act", "{case}", "note", "--as", "liu", "-f", "colour=red"],
                      ["colour"]),
    "json-not-json": (["case", "add", "--as", "liu", "--json", "{not_json}"], ["--json"]),
    "json-not-object": (["case", "add", "--as", "liu", "--json", "{array}"], ["--json"]),
    "unknown-state": (["case", "list", "--state", "nope"], ["state", "nope"]),
    "unknown-warning-status": (["warning", "list", "--status", "nope"], ["nope"]),
    "past-supervise-deadline": (["case", "act", "{case}", "supervise", "--as", "wang",
                                 "-f", "instruction=x", "-f", "deadline=2020-01-01"],
                                ["deadline", "2020-01-01"]),
    "warning-missing-place": (["warning", "add", "--as", "liu", "-f", "subject=x",
                               "-f", "expected_size=3"], ["place"]),
    "illegal-transition": (["case", "act", "{case}", "reply", "--as", "wang", "-f",
                            "decision=support", "-f", "reply=x"], [],
                           ["cannot reply", "Registered"]),
}


@pytest.mark.parametrize("name", list(BAD_INPUT))
def test_bad_input_refused_in_one_line_and_changes_nothing(siji, town, tmp_path, name):
    argv, needles, *rest = BAD_INPUT[name]
    english = rest[0] if rest else []
    (tmp_path / "bad.json").write_text("{not json", "utf-8")
    (tmp_path / "array.json").write_text("[1, 2]", "utf-8")
    argv = [a.format(case=town.case, not_json=tmp_path / "bad.json",
                     array=tmp_path / "array.json") for a in argv]
    before = tables(town.dir)
    refused(siji("--dir", town.dir, *argv), *needles)
    refused(siji("--dir", town.dir, "--lang", "en", *argv), *needles, *english)
    assert tables(town.dir) == before


def test_refer_with_a_past_deadline_refused(siji, net):
    case = register(siji, net.town)
    siji.ok("--dir", net.town, "case", "act", case, "accept", "--as", "wang")
    before = tables(net.town)
    for deadline in ("2020-01-01", today().isoformat()):
        line = refused(siji("--dir", net.town, "--lang", "en", "case", "act", case, "refer",
                            "--as", "wang", "-f", "to=cun", "-f", "instruction=请核实",
                            "-f", f"deadline={deadline}"), "deadline", deadline)
        assert "in the past" in line
    assert tables(net.town) == before
    assert state_of(net.town, case) == "accepted"


def test_unknown_action_is_a_usage_error(siji, town):
    before = tables(town.dir)
    r = siji("--dir", town.dir, "case", "act", town.case, "nope", "--as", "wang")
    assert r.rc == 2
    assert "Traceback" not in r.out + r.err
    assert r.out == ""
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siji: ") and "'nope'" in lines[0]
    assert "siji case act --help" in lines[0]  # says where to look
    assert tables(town.dir) == before
    r = siji("--dir", town.dir, "warning", "act", "YJ-zhen-2026-0001", "nope", "--as", "wang")
    assert r.rc == 2 and "'nope'" in r.err and "Traceback" not in r.err


def test_a_command_whose_json_file_is_missing_is_a_usage_error(siji, town, tmp_path):
    before = tables(town.dir)
    r = siji("--dir", town.dir, "case", "add", "--as", "liu", "--json", tmp_path / "none.json")
    assert r.rc == 2 and "none.json" in r.err and "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert tables(town.dir) == before


# -- 5. language -----------------------------------------------------------------

def _not_allowed(siji, town, *lang):
    return refused(siji("--dir", town.dir, *lang, "case", "act", town.case, "accept",
                        "--as", "liu"))


def test_errors_are_chinese_by_default_and_english_on_request(siji, town, monkeypatch):
    zh = _not_allowed(siji, town)
    en = _not_allowed(siji, town, "--lang", "en")
    assert zh != en
    assert "信息员" in zh and "Liaison" not in zh and "liaison" not in zh
    assert "Liaison" in en and "信息员" not in en
    assert "may not" in en and "accept" in en
    assert _not_allowed(siji, town, "--lang", "zh") == zh
    monkeypatch.setenv("SIJI_LANG", "en")
    assert _not_allowed(siji, town) == en
    assert _not_allowed(siji, town, "--lang", "zh") == zh


def test_lang_option_with_equals_sign_is_honoured(siji, town):
    """`--lang=en` is the same option as `--lang en` to click: errors must follow it too."""
    assert _not_allowed(siji, town, "--lang=en") == _not_allowed(siji, town, "--lang", "en")


def test_output_follows_the_language(siji, town):
    zh = siji.ok("--dir", town.dir, "user", "list").out
    en = siji.ok("--dir", town.dir, "--lang", "en", "user", "list").out
    assert "liu\t信息员\t" in zh and "Liaison" not in zh
    assert "liu\tLiaison\t" in en and "\t信息员\t" not in en
    zh = siji.ok("--dir", town.dir, "case", "list").out
    en = siji.ok("--dir", town.dir, "--lang", "en", "case", "list").out
    assert "已登记" in zh and "Registered" in en and "已登记" not in en


# -- 6. the web app (siji serve runs in the integration tests) ----------------------

def test_web_app_lists_cases_without_personal_data(siji, town):
    app = node.create_app(town.dir)
    client = app.test_client()
    assert client.get("/cases").status_code == 302  # to the login page
    login = client.post("/api/login", json={"username": "wang", "password": PASSWORD})
    assert login.status_code == 200

    page = client.get("/cases")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert town.case in html
    for secret in PERSONAL:
        assert secret not in html

    api = client.get("/api/cases")
    assert api.status_code == 200 and api.is_json
    assert [c["id"] for c in api.get_json()["cases"]] == [town.case]
    assert api.get_json()["cases"][0]["state"] == "registered"
    for secret in PERSONAL:
        assert secret not in api.get_data(as_text=True)

    missing = client.get("/api/nope")
    assert missing.status_code == 404 and missing.is_json
    error = missing.get_json()["error"]
    assert error["code"] == "not_found"
    assert isinstance(error["message"], str) and error["message"]


def test_figures_report_and_show_counts_in_zh_and_json(siji, town):
    out = siji.ok("--dir", town.dir, "figures", "--report").out
    assert "件次 1" in out and "zhen" in out and "办结率" in out
    data = siji.json("--dir", town.dir, "--json", "figures", "--period", "month")
    assert data["units"]["zhen"]["measures"]["n"] == 1
    assert data["units"]["zhen"]["rates"]["done_rate"] == 0.0
    reports = "SELECT count(*) FROM events WHERE type = 'figures.rolled_up'"
    assert query(town.dir, reports) == [(1,)]  # for its parent shi: this month's
    siji.ok("--dir", town.dir, "figures", "--report")  # nothing changed: no second report
    assert query(town.dir, reports) == [(1,)]
    refused(siji("--dir", town.dir, "figures", "--from", "2026-12-01", "--to", "2026-01-01"),
            "结束日期早于开始日期")


def test_every_command_honours_json(siji, net, tmp_path):
    """--json gives one JSON document on stdout for every command that finishes (serve and
    demo run until stopped; demo prints its table as JSON too, tests/test_demo.py)."""
    t, v = net.town, net.village
    case = register(siji, t)
    commands = [
        ("--dir", tmp_path / "new", "init", "--tier", "city", "--id", "shi2", "--name", "市"),
        ("--dir", t, "user", "add", "qian", "--role", "handler", "--name", "钱"),
        ("--dir", t, "user", "list"),
        ("--dir", t, "user", "disable", "qian"),
        ("--dir", t, "user", "enable", "qian"),
        ("--dir", t, "user", "password", "qian"),
        ("--dir", t, "user", "logout", "qian"),
        ("--dir", t, "case", "list"),
        ("--dir", t, "case", "show", case, "--as", "wang"),
        ("--dir", t, "case", "act", case, "note", "--as", "wang", "-f", "text=已联系"),
        ("--dir", t, "warning", "add", "--as", "wang", "-f", "subject=征地", "-f", "place=东山",
         "-f", "expected_size=3"),
        ("--dir", t, "warning", "list"),
        ("--dir", t, "rebuild"),
        ("--dir", t, "check"),
        ("--dir", t, "status"),
        ("--dir", t, "figures", "--report"),
        ("--dir", t, "held"),
        ("--dir", t, "notify", "add", "office", "mailto://a@example.org", "--role", "handler"),
        ("--dir", t, "notify", "list"),
        ("--dir", t, "enroll-code"),
        ("--dir", t, "export", "--to", "cun", tmp_path / "usb"),
        ("--dir", v, "import", tmp_path / "usb"),
        ("--dir", t, "revoke", "cun", "--as", "admin", "--reason", "设备丢失"),
        # issue 21: the office's own work
        ("--dir", t, "round", "schedule", "--as", "wang", "-f", "title=年末排查",
         "-f", "start=2026-11-24", "-f", "end=2026-12-10", "-f", "deadline=2026-12-15",
         "--scope", "cun"),
        ("--dir", t, "round", "list"),
        ("--dir", t, "register", "add", "--as", "wang", "-f", "title=征地补偿", "-f",
         "responsible=王办理", "--person", "张三,11010519491231002X"),
        ("--dir", t, "register", "list"),
        ("--dir", t, "register", "export", tmp_path / "book.xlsx", "--as", "wang"),
        ("--dir", t, "register", "import", tmp_path / "book.xlsx", "--as", "wang"),
        ("--dir", t, "reception", "days"),
        ("--dir", t, "reception", "leader", "zhao"),
        ("--dir", t, "search", "低保", "--as", "wang"),
        ("--dir", t, "case", "receipt", case),
        ("--dir", t, "attach", "list", case),
        ("--dir", t, "repeats", "list"),
        ("--dir", t, "netkey", "show"),
        ("--dir", t, "lookup", "ABCDEFGH", "8000"),
    ]
    for args in commands:
        if args[2] == "lookup":  # a wrong answer: the error on stderr, nothing on stdout
            refused(siji("--json", *args), "查询码")
            continue
        data = siji.json("--json", *args)
        assert isinstance(data, dict | list), args
    assert set(siji.json("--json", "--dir", t, "check")) == {"database", "problems"}
    documented = {c for c in cli.cli.commands} - {"serve", "demo", "sync", "enroll",
                                                   "enroll-accept", "simulate"}
    tried = {args[2] for args in commands}
    # (sync and enroll need a live parent; simulate, a network of its own: test_simulate)
    assert documented <= tried, documented - tried


def test_provisional_deadlines_a_new_holiday_file_and_documents(siji, town):
    """Issue 17: a deadline in a year without an official arrangement says so; a holiday
    file added to the config is taken at the next command, and the case's history shows
    the deadline it moved; formal documents print from the signed events."""
    from node import deadlines
    d = town.dir
    siji.ok("--dir", d, "case", "act", town.case, "accept", "--as", "wang")
    row = siji.json("--dir", d, "--json", "case", "list")[0]
    due = row["due_on"]
    covered = deadlines.load_calendar().covers(int(due[:4]))
    assert row["due_provisional"] == (0 if covered else 1)
    shown = siji.ok("--dir", d, "case", "show", town.case, "--as", "wang").out
    assert ("暂按法定节假日计算" in shown) == (not covered)
    assert "办结期限" in shown
    # the State Council's arrangement for that year arrives: the due day itself is off
    (d / "holidays-extra.toml").write_text(
        f'[{due[:4]}]\nsource = "test"\noff = [["{due}", "{due}"]]\n', encoding="utf-8")
    config = d / "siji.toml"
    text, n = re.subn(r"^HOLIDAY_FILES = .*$", 'HOLIDAY_FILES = ["holidays-extra.toml"]',
                      config.read_text("utf-8"), flags=re.M)
    assert n == 1
    config.write_text(text, "utf-8")
    after = siji.json("--dir", d, "--json", "case", "show", town.case, "--as", "wang")
    assert after["due_on"] > due and after["due_provisional"] == 0
    change = after["deadline_changes"][0]
    assert (change["kind"], change["old_on"], change["new_on"], change["years"]) == (
        "settle", due, after["due_on"], due[:4])
    shown = siji.ok("--dir", d, "case", "show", town.case, "--as", "wang").out
    assert f"按{due[:4]}年新的节假日安排重新计算" in shown
    siji.ok("--dir", d, "case", "act", town.case, "reply", "--as", "wang",
            "-f", "decision=support", "-f", "reply=已补发低保金")
    listed = siji.ok("--dir", d, "case", "document", town.case).out
    assert "受理告知书" in listed and "处理意见书" in listed
    doc = siji.ok("--dir", d, "case", "document", town.case, "decision").out
    assert "处理意见书" in doc and "已补发低保金" in doc and "复查" in doc
    assert f"{town.case}-CL1" in doc
    refused(siji("--dir", d, "case", "document", town.case, "review"), "没有这份文书")
