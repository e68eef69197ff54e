"""Two real node processes syncing over HTTP on 127.0.0.1.

Enrollment (issue 4, still to come) will pin each node's keys in the
other's trust table; until then the test pins them through the library,
which is exactly the state enrollment leaves behind.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
import requests
from conftest import pin
from test_serve import SIJI, free_port, run, start_server

from node import core

ENV = {"SIJI_ADMIN_PASSWORD": "admin-pass-1", "SIJI_PASSWORD": "staff-pass-1"}


def pin_files(a_dir, b_dir):
    """Pin two node directories into each other's trust table (conftest.pin on files)."""
    a, b = core.open_node(a_dir), core.open_node(b_dir)
    try:
        pin(a, b)
        pin(b, a)
    finally:
        a.close()
        b.close()


@pytest.fixture
def network(tmp_path):
    port = free_port()
    town, village = tmp_path / "zhen", tmp_path / "cun"
    run("--dir", str(town), "init", "--tier", "town", "--id", "zhen", "--name", "青水镇",
        "--parent", "http://127.0.0.1:9", "--parent-id", "shi", env=ENV)
    run("--dir", str(village), "init", "--tier", "village", "--id", "cun", "--name", "东山村",
        "--parent", f"http://127.0.0.1:{port}", "--parent-id", "zhen", env=ENV)
    for d, (user, role) in ((town, ("wang", "handler")), (village, ("liu", "liaison"))):
        run("--dir", str(d), "user", "add", user, "--role", role, "--name", user, env=ENV)
    pin_files(town, village)
    proc = start_server(town, port)
    yield town, village, port
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)


def add_escalated(village, summary: str) -> str:
    """A case the village registers and escalates to its parent (so it is sent up)."""
    out = run("--dir", str(village), "--json", "case", "add", "--as", "liu", "--category",
              "低保", "--summary", summary, "--petitioner", "张三").stdout
    case_id = json.loads(out)["id"]
    run("--dir", str(village), "case", "act", case_id, "escalate", "--as", "liu",
        "-f", "reason=需镇协调")
    return case_id


def cases_at(d):
    return {c["id"]: c for c in json.loads(run("--dir", str(d), "--json", "case", "list").stdout)}


def test_push_and_pull_between_two_processes(network):
    town, village, port = network
    ids = []
    for i in range(30):
        out = run("--dir", str(village), "--json", "case", "add", "--as", "liu", "--category",
                  "低保", "--summary", f"第{i}件：低保金未发放", "--petitioner", "张三").stdout
        ids.append(json.loads(out)["id"])
    run("--dir", str(village), "case", "act", ids[0], "escalate", "--as", "liu",
        "-f", "reason=需镇协调")
    result = run("--dir", str(village), "sync")
    # the escalated case's two events and the village's figures (the other 29 cases stay in
    # the village, as counts)
    assert "发出 3 条" in result.stdout
    at_town = cases_at(town)
    assert set(at_town) == {ids[0]} and at_town[ids[0]]["holder"] == "zhen"
    run("--dir", str(town), "case", "act", ids[0], "accept", "--as", "wang")
    run("--dir", str(town), "case", "act", ids[0], "refer", "--as", "wang",
        "-f", "to=cun", "-f", "instruction=请村里核实", "-f", "deadline=2099-12-31")
    run("--dir", str(village), "sync")
    back = cases_at(village)[ids[0]]
    assert (back["holder"], back["state"]) == ("cun", "accepted")
    status = json.loads(run("--dir", str(village), "--json", "status").stdout)
    assert status["waiting"] == 0 and status["last_synced"] and status["last_error"] is None
    again = run("--dir", str(village), "sync")
    assert "发出 0 条、收到 0 条" in again.stdout
    assert len(cases_at(town)) == 1 and len(cases_at(village)) == 30


def test_sync_to_a_parent_that_is_down_fails_in_one_line_and_keeps_events(tmp_path):
    village = tmp_path / "cun"
    run("--dir", str(village), "init", "--tier", "village", "--id", "cun", "--name", "东山村",
        "--parent", f"http://127.0.0.1:{free_port()}", "--parent-id", "zhen", env=ENV)
    run("--dir", str(village), "user", "add", "liu", "--role", "liaison", "--name", "刘", env=ENV)
    town = tmp_path / "zhen"
    run("--dir", str(town), "init", "--tier", "town", "--id", "zhen", "--name", "镇",
        "--parent", "http://127.0.0.1:9", "--parent-id", "shi", env=ENV)
    pin_files(town, village)
    add_escalated(village, "x")
    run("--dir", str(village), "case", "add", "--as", "liu", "--category", "低保", "--summary",
        "村里自己办的", "--petitioner", "李四")  # kept in the village: it does not wait
    result = run("--dir", str(village), "--lang", "en", "sync", "--attempts", "1", check=False)
    assert result.returncode == 1
    assert "cannot reach the parent" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    status = json.loads(run("--dir", str(village), "--json", "status").stdout)
    # (and the figures report the session made first)
    assert status["waiting"] == 3 and status["last_error"].startswith("network")


def test_sync_endpoints_refuse_garbage_and_oversize(network):
    town, village, port = network
    base = f"http://127.0.0.1:{port}/sync"
    bad = requests.post(base + "/push", data=b"not a bundle", timeout=5)
    assert bad.status_code == 422 and bad.json()["error"]["reason"] == "malformed"
    big = requests.post(base + "/push", data=b"\0" * (4 * 1024 * 1024 + 1), timeout=30)
    assert big.status_code == 413
    status = json.loads(run("--dir", str(town), "--json", "status").stdout)
    assert status["refusals"] >= 1


def test_usb_round_trip_with_the_cli(tmp_path):
    town, village, stick = tmp_path / "zhen", tmp_path / "cun", tmp_path / "usb"
    run("--dir", str(town), "init", "--tier", "town", "--id", "zhen", "--name", "镇",
        "--parent", "http://127.0.0.1:9", "--parent-id", "shi", env=ENV)
    run("--dir", str(village), "init", "--tier", "village", "--id", "cun", "--name", "村",
        "--parent", "http://127.0.0.1:9", "--parent-id", "zhen", env=ENV)
    run("--dir", str(village), "user", "add", "liu", "--role", "liaison", "--name", "刘", env=ENV)
    pin_files(town, village)
    for i in range(3):
        add_escalated(village, f"第{i}件")
    run("--dir", str(village), "export", "--to", "zhen", str(stick))
    assert len(list(stick.glob("siji-cun-to-zhen-*.bundle"))) == 1
    imported = json.loads(run("--dir", str(town), "--json", "import", str(stick)).stdout)
    assert imported["events"] == 6 and imported["acks_written"] == ["siji-zhen-to-cun.ack"]
    assert len(cases_at(town)) == 3
    again = json.loads(run("--dir", str(town), "--json", "import", str(stick)).stdout)
    assert again["events"] == 0 and len(cases_at(town)) == 3  # carrying it twice is harmless
    run("--dir", str(village), "import", str(stick))  # the acknowledgement comes home
    status = json.loads(run("--dir", str(village), "--json", "status").stdout)
    assert status["waiting"] == 0 and status["links"][0]["acked"] == 6
    (stick / "siji-cun-to-zhen-0000000001-0000000006.bundle").write_bytes(b"garbage")
    bad = run("--dir", str(town), "import", str(stick), check=False)
    assert bad.returncode == 1 and "malformed" in bad.stderr and "Traceback" not in bad.stderr


def test_enroll_over_http_then_sync(tmp_path):
    port = free_port()
    town, village = tmp_path / "zhen", tmp_path / "cun"
    run("--dir", str(town), "init", "--tier", "town", "--id", "zhen", "--name", "青水镇",
        "--parent", "http://127.0.0.1:9", "--parent-id", "shi", env=ENV)
    run("--dir", str(village), "init", "--tier", "village", "--id", "cun", "--name", "东山村",
        "--parent", f"http://127.0.0.1:{port}", env=ENV)
    code = run("--dir", str(town), "--lang", "en", "enroll-code").stdout.split()[2].rstrip(",")
    proc = start_server(town, port)
    try:
        wrong = run("--dir", str(village), "enroll", "--code", "2222-2222-2222", check=False)
        assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
        done = run("--dir", str(village), "--lang", "en", "enroll", "--code", code)
        assert "Enrolled under zhen" in done.stdout and "Pair fingerprint" in done.stdout
        reused = run("--dir", str(village), "--lang", "en", "enroll", "--code", code,
                     check=False)
        assert reused.returncode == 1 and "already used" in reused.stderr
        run("--dir", str(village), "user", "add", "liu", "--role", "liaison", "--name", "刘",
            env=ENV)
        add_escalated(village, "x")  # with its own join (node.joined), the first sync sends 3
        assert "发出 3 条" in run("--dir", str(village), "sync").stdout
        assert len(cases_at(town)) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_enroll_by_files(tmp_path):
    town, village, stick = tmp_path / "zhen", tmp_path / "cun", tmp_path / "usb"
    stick.mkdir()
    run("--dir", str(town), "init", "--tier", "town", "--id", "zhen", "--name", "青水镇",
        "--parent", "http://127.0.0.1:9", "--parent-id", "shi", env=ENV)
    run("--dir", str(village), "init", "--tier", "village", "--id", "cun", "--name", "东山村",
        "--parent", "http://127.0.0.1:9", env=ENV)
    code = run("--dir", str(town), "--lang", "en", "enroll-code").stdout.split()[2].rstrip(",")
    run("--dir", str(village), "enroll", "--code", code, "--request-file",
        str(stick / "request.json"))
    accepted = run("--dir", str(town), "--lang", "en", "enroll-accept",
                   str(stick / "request.json"), "--certificate-file", str(stick / "answer.json"))
    installed = run("--dir", str(village), "--lang", "en", "enroll", "--code", code,
                    "--certificate-file", str(stick / "answer.json"))
    fingerprint = [line for line in accepted.stdout.splitlines() if "fingerprint" in line]
    assert fingerprint and fingerprint[0] in installed.stdout  # the same on both sides


def test_served_village_sends_an_urgent_warning_at_once(network, tmp_path):
    town, village, port = network
    run("--dir", str(village), "sync")  # first contact; then only the urgent path
    vport = free_port()
    proc = subprocess.Popen([SIJI, "--dir", str(village), "serve", "--port", str(vport)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**__import__("os").environ, "SIJI_SYNC_INTERVAL": "3600",
                                 "SIJI_SYNC_JITTER": "0", "SIJI_URGENT_CHECK": "1"})
    try:
        time.sleep(2)  # let the scheduled first sync and the watcher start
        run("--dir", str(village), "warning", "add", "--as", "liu", "-f", "subject=征地补偿",
            "-f", "place=东山村", "-f", "expected_size=40", "-f", "destination=city")
        for _ in range(100):  # at most 20 s; the next scheduled sync is an hour away
            listed = json.loads(run("--dir", str(town), "--json", "warning", "list").stdout)
            if listed:
                break
            time.sleep(0.2)
        assert [w["subject"] for w in listed] == ["征地补偿"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
