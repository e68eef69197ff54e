"""Enrollment: one-time codes, signed requests, certificates that chain to the root."""

from __future__ import annotations

import copy
import json

import pytest
from test_session import Loopback, register_many

from node import enroll, netkeys, store, trust
from node.enroll import EnrollError
from node.sync import session


@pytest.fixture
def city(make_node):
    return make_node("city", "shi")


@pytest.fixture
def town_alone(tmp_path, clock):
    from node import core
    node = core.init_node(tmp_path / "zhen", tier="town", node_id="zhen", name="青水镇",
                          parent_url="http://127.0.0.1:9", admin_password="admin-pass-1",
                          clock=clock)
    yield node
    node.close()


def code_at(node, hours=72):
    with store.write(node.db):
        return enroll.new_code(node, hours)


def accept(parent, payload):
    with store.write(parent.db):
        return enroll.accept_request(parent, payload)


def install(child, answer, code):
    with store.write(child.db):
        return enroll.install(child, answer, code)


def nodes(node):
    return {r[0]: r[1] for r in node.db.conn.execute("SELECT node_id, parent_id FROM nodes")}


def test_enrollment_pins_both_sides_and_chains_to_the_root(city, town_alone):
    code = code_at(city)
    answer = accept(city, enroll.make_request(town_alone, code))
    result = install(town_alone, answer, code)
    assert nodes(city)["zhen"] == "shi" and nodes(town_alone)["shi"] is None
    assert town_alone.settings["PARENT_ID"] == "shi"
    assert 'PARENT_ID = "shi"' in (town_alone.dir / "siji.toml").read_text("utf-8")
    city_pub = city.signer.public_key().public_bytes_raw()
    town_pub = town_alone.signer.public_key().public_bytes_raw()
    assert result["fingerprint"] == enroll.pair_fingerprint(city_pub, town_pub)
    cert = json.loads((town_alone.dir / "keys" / "node.cert").read_text("utf-8"))
    assert trust.certificate_valid(cert, city_pub, town_alone.today())
    root = json.loads((city.dir / "keys" / "root.cert").read_text("utf-8"))
    city_cert = json.loads((city.dir / "keys" / "node.cert").read_text("utf-8"))
    root_pub = trust.b64decode(root["sign_pub"])
    assert trust.certificate_valid(city_cert, root_pub, city.today())
    chain = json.loads((town_alone.dir / "keys" / "chain.json").read_text("utf-8"))
    assert chain[0] == city_cert and chain[-1] == root


def test_an_enrolled_pair_syncs(city, town_alone):
    from conftest import STAFF

    from node import users
    code = code_at(city)
    install(town_alone, accept(city, enroll.make_request(town_alone, code)), code)
    with store.write(town_alone.db):
        for username, display, role in STAFF:
            users.add_user(town_alone, username, display, role, "correct-horse-1")
    register_many(town_alone, 2)
    # two cases, each registered and escalated, and the keyed
    # digests of its petitioners (repeat.seen: the city handed the town its network key)
    assert netkeys.held(town_alone) == netkeys.held(city)
    assert session.run(town_alone, Loopback(city)).sent == 4 + 2 + 1  # and the town's join


def refused(parent, payload, message):
    before = parent.db.conn.execute("SELECT * FROM enroll_codes").fetchall(), nodes(parent)
    with pytest.raises(EnrollError, match=message):
        accept(parent, payload)
    assert (parent.db.conn.execute("SELECT * FROM enroll_codes").fetchall(),
            nodes(parent)) == before


def test_a_code_works_once(city, town_alone, make_node):
    code = code_at(city)
    accept(city, enroll.make_request(town_alone, code))
    other = make_node("town", "other")
    refused(city, enroll.make_request(other, code), "already used")


def test_an_expired_code_is_refused(city, town_alone, clock):
    code = code_at(city, hours=72)
    clock.advance(hours=73)
    refused(city, enroll.make_request(town_alone, code), "expired")


def test_a_wrong_code_is_refused(city, town_alone):
    code = code_at(city)
    wrong = code[:5] + ("2222-2222" if code[5:] != "2222-2222" else "3333-3333")
    refused(city, enroll.make_request(town_alone, wrong), "wrong")
    refused(city, enroll.make_request(town_alone, "ZZZZ-ZZZZ-ZZZZ"), "wrong")


def test_a_request_changed_on_the_way_is_refused(city, town_alone):
    code = code_at(city)
    payload = enroll.make_request(town_alone, code)
    changed = copy.deepcopy(payload)
    changed["request"]["name"] = "冒名镇"
    refused(city, changed, "wrong")


def test_a_request_not_signed_by_its_key_is_refused(city, town_alone, make_node):
    code = code_at(city)
    payload = enroll.make_request(town_alone, code)
    other = make_node("town", "other")
    payload["request"]["sign_pub"] = trust.b64(other.signer.public_key().public_bytes_raw())
    signed = {k: payload[k] for k in ("code_id", "request", "sig")}
    payload["mac"] = enroll._mac(enroll._mac_key(code), signed)  # even with the code
    refused(city, payload, "not signed")


def test_tier_rules(city, make_node):
    village = make_node("village", "cun")
    refused(city, enroll.make_request(village, code_at(city)), "may not enroll")
    with pytest.raises(Exception, match="no children"):
        code_at(village)


def test_a_taken_node_id_is_refused(city, town_alone, tmp_path, clock):
    from node import core
    code = code_at(city)
    accept(city, enroll.make_request(town_alone, code))
    impostor = core.init_node(tmp_path / "fake", tier="town", node_id="zhen", name="假镇",
                              parent_url="http://x", admin_password="admin-pass-1", clock=clock)
    refused(city, enroll.make_request(impostor, code_at(city)), "already taken")
    impostor.close()


@pytest.mark.parametrize("change", ["mac", "certificate", "parent", "chain"])
def test_the_child_refuses_an_answer_that_does_not_check_out(city, town_alone, change):
    code = code_at(city)
    answer = accept(city, enroll.make_request(town_alone, code))
    if change == "mac":
        answer["mac"] = answer["mac"][::-1]
    elif change == "certificate":
        answer["certificate"]["name"] = "x"
    elif change == "chain":  # a node above made up: its certificate no longer verifies
        answer["chain"][0]["parent"] = "elsewhere"
    else:
        answer["parent"]["node"] = "elsewhere"
    if change != "mac":  # even under a correct MAC the certificate itself must check out
        unsigned = {k: answer[k] for k in ("certificate", "parent", "chain", "resume",
                                           "network_keys")}
        answer["mac"] = enroll._mac(enroll._mac_key(code), unsigned)
    with pytest.raises(EnrollError, match={"mac": "does not match the code",
                                           "certificate": "not signed by the parent",
                                           "parent": "not signed by the parent",
                                           "chain": "chain does not verify"}[change]):
        install(town_alone, answer, code)
    assert "shi" not in nodes(town_alone) and town_alone.settings["PARENT_ID"] == ""


@pytest.mark.parametrize("payload", [None, [], {"request": {}}, {"code_id": "A", "request": {},
                                                                 "sig": "", "mac": ""}])
def test_malformed_requests(city, payload):
    refused(city, payload, "malformed")


# -- throttling wrong codes on /sync/enroll -----------------------------------------------

LIMITS = {"ENROLL_MAX_FAILURES": 3, "ENROLL_MAX_FAILURES_ALL": 7, "ENROLL_FAILURE_MINUTES": 10}


@pytest.fixture
def online(city, clock):
    """POST /sync/enroll to the city's app from a given client address."""
    from node import create_app
    app = create_app(city.dir, config=LIMITS, clock=clock)
    city.settings.update(LIMITS)  # the same limits for the file path, in process

    def post(payload, addr="10.0.0.1", client=None):
        return (client or app.test_client()).post(
            "/sync/enroll", json=payload, environ_overrides={"REMOTE_ADDR": addr})
    post.app = app
    return post


def stranger(code):
    """A code whose first group names no code here."""
    return ("ZZZZ" if code[:4] != "ZZZZ" else "YYYY") + "-2222-2222"


def wrong_secret(code):
    """The same first group (so it names the code) with the wrong rest."""
    return code[:5] + ("2222-2222" if code[5:] != "2222-2222" else "3333-3333")


def error_code(response):
    return response.get_json()["error"]["code"]


def unspent(parent, code):
    row = parent.db.conn.execute("SELECT used_at FROM enroll_codes WHERE id = ?",
                                 (enroll._normal(code)[:4],)).fetchone()
    return row is not None and row[0] is None


def test_wrong_codes_lock_an_address_out_even_for_the_right_code(city, town_alone, online):
    code = code_at(city)
    for _ in range(3):
        answer = online(enroll.make_request(town_alone, stranger(code)))
        assert answer.status_code == 403 and error_code(answer) == "enroll_wrong_code"
    locked = online(enroll.make_request(town_alone, code))
    assert locked.status_code == 429 and error_code(locked) == "enroll_throttled"
    assert locked.headers["Retry-After"] == "600"  # all three fell at this very second
    assert "zhen" not in nodes(city) and unspent(city, code)
    other = online(enroll.make_request(town_alone, code), addr="10.0.0.2")
    assert other.status_code == 200 and "zhen" in nodes(city)  # one address, not everyone


def test_the_lock_lifts_as_failures_age_and_hammering_does_not_prolong_it(
        city, town_alone, online, clock):
    code = code_at(city)
    for _ in range(3):
        online(enroll.make_request(town_alone, stranger(code)))
    clock.advance(minutes=5)
    refusals = city.db.conn.execute("SELECT count(*) FROM refusals").fetchone()
    for _ in range(10):
        answer = online(enroll.make_request(town_alone, stranger(code)))
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "300"
    assert city.db.conn.execute("SELECT count(*) FROM refusals").fetchone() == refusals
    clock.advance(seconds=299)
    assert online(enroll.make_request(town_alone, code)).headers["Retry-After"] == "1"
    clock.advance(seconds=1)
    assert online(enroll.make_request(town_alone, code)).status_code == 200


def test_all_addresses_together_are_limited(city, town_alone, online, clock):
    code = code_at(city)
    for i in range(7):  # one each: no single address is near its own limit
        assert online(enroll.make_request(town_alone, stranger(code)),
                      addr=f"10.0.1.{i}").status_code == 403
    fresh = online(enroll.make_request(town_alone, code), addr="192.0.2.9")
    assert fresh.status_code == 429 and unspent(city, code)
    clock.advance(minutes=10)
    assert online(enroll.make_request(town_alone, code), addr="192.0.2.9").status_code == 200


def test_a_code_aimed_at_too_often_is_withdrawn(city, town_alone, online):
    code = code_at(city)
    for i in range(3):  # from three addresses: none is locked, but the code is spent
        answer = online(enroll.make_request(town_alone, wrong_secret(code)), addr=f"10.0.2.{i}")
        assert error_code(answer) == "enroll_wrong_code"
    right = online(enroll.make_request(town_alone, code), addr="192.0.2.9")
    assert right.status_code == 403 and "withdrawn after 3" in right.get_json()["error"][
        "message"]
    with pytest.raises(EnrollError, match="withdrawn"):  # by file too
        accept(city, enroll.make_request(town_alone, code))
    assert "zhen" not in nodes(city)
    again = code_at(city)
    assert online(enroll.make_request(town_alone, again), addr="192.0.2.9").status_code == 200


def test_a_success_resets_no_ones_count(city, town_alone, make_node, online):
    first, second = code_at(city), code_at(city)
    for _ in range(2):
        online(enroll.make_request(town_alone, stranger(first)), addr="10.0.0.1")
        online(enroll.make_request(town_alone, stranger(first)), addr="10.0.0.2")
    assert online(enroll.make_request(town_alone, first), addr="10.0.0.2").status_code == 200
    other = make_node("town", "other")
    for addr in ("10.0.0.1", "10.0.0.2"):  # neither the others' count nor its own went
        assert online(enroll.make_request(other, stranger(first)), addr=addr).status_code == 403
        assert online(enroll.make_request(other, second), addr=addr).status_code == 429


def test_only_wrong_codes_count(city, town_alone, make_node, online):
    used, fresh = code_at(city), code_at(city)
    online(enroll.make_request(make_node("town", "early"), used), addr="10.0.0.9")
    for _ in range(5):
        assert online({"nonsense": 1}).status_code == 403
        assert error_code(online(enroll.make_request(town_alone, used))) == "enroll_refused"
    assert online(enroll.make_request(town_alone, fresh)).status_code == 200
    origins = {r[0] for r in city.db.conn.execute("SELECT origin FROM refusals")}
    assert origins == {"addr:10.0.0.1"}  # every refusal names where it came from


def test_the_lock_is_kept_in_the_database(city, town_alone, online, clock):
    from node import create_app
    code = code_at(city)
    for _ in range(3):
        online(enroll.make_request(town_alone, stranger(code)))
    restarted = create_app(city.dir, config=LIMITS, clock=clock)  # nothing kept in memory
    assert online(enroll.make_request(town_alone, code),
                  client=restarted.test_client()).status_code == 429


def test_requests_at_once_cannot_slip_past_the_count(city, town_alone, online):
    from concurrent.futures import ThreadPoolExecutor
    code = code_at(city)
    payload = enroll.make_request(town_alone, stranger(code))
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(lambda _: online(payload).status_code, range(16)))
    assert statuses == [403] * 3 + [429] * 13


def test_ipv6_counts_per_64_and_mapped_ipv4_as_ipv4(city, town_alone, online):
    assert enroll.client_key("2001:db8::1") == enroll.client_key("2001:db8::ffff:1")
    assert enroll.client_key("2001:db8::1") == "addr:2001:db8::/64"
    assert enroll.client_key("::ffff:10.0.0.1") == "addr:10.0.0.1"
    assert enroll.client_key(None) == enroll.client_key("garbage") == "addr:unknown"
    code = code_at(city)
    for i in range(3):
        online(enroll.make_request(town_alone, stranger(code)), addr=f"2001:db8::{i + 1}")
    assert online(enroll.make_request(town_alone, code), addr="2001:db8::77").status_code == 429
    assert online(enroll.make_request(town_alone, code),
                  addr="2001:db8:0:1::1").status_code == 200


@pytest.mark.parametrize("name", ["ENROLL_MAX_FAILURES", "ENROLL_MAX_FAILURES_ALL",
                                  "ENROLL_FAILURE_MINUTES"])
def test_limits_are_at_least_one(city, name):
    from node import settings
    from node.errors import ConfigError
    with pytest.raises(ConfigError, match=f"{name} must be at least 1"):
        settings.load(city.dir, {name: 0})


def test_a_locked_out_child_is_told_in_one_line_and_the_lock_outlives_a_restart(tmp_path):
    import os
    import signal

    import requests
    from test_serve import free_port, run, start_server
    port = free_port()
    env = {"SIJI_ADMIN_PASSWORD": "admin-pass-1"}
    town, village = tmp_path / "zhen", tmp_path / "cun"
    run("--dir", str(town), "init", "--tier", "town", "--id", "zhen", "--name", "青水镇",
        "--parent", "http://127.0.0.1:9", "--parent-id", "shi", env=env)
    run("--dir", str(village), "init", "--tier", "village", "--id", "cun", "--name", "东山村",
        "--parent", f"http://127.0.0.1:{port}", env=env)
    code = run("--dir", str(town), "--lang", "en", "enroll-code").stdout.split()[2].rstrip(",")
    serve_env = {**os.environ, "SIJI_ENROLL_MAX_FAILURES": "1"}
    proc = start_server(town, port, env=serve_env)
    try:
        wrong = run("--dir", str(village), "--lang", "en", "enroll", "--code", stranger(code),
                    check=False)
        assert wrong.returncode == 1 and "code is wrong" in wrong.stderr
        for lang, words in (("en", "too many wrong codes"), ("zh", "分钟后再试")):
            locked = run("--dir", str(village), "--lang", lang, "enroll", "--code", code,
                         check=False)
            assert locked.returncode == 1 and words in locked.stderr
            assert len(locked.stderr.strip().splitlines()) == 1
            assert "Traceback" not in locked.stderr and code not in locked.stderr
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        proc = start_server(town, port, env=serve_env)
        again = requests.post(f"http://127.0.0.1:{port}/sync/enroll", json={}, timeout=5)
        assert again.status_code == 429 and 0 < int(again.headers["Retry-After"]) <= 900
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        server_log = proc.stderr.read()
    assert code[5:] not in server_log  # the secret part of a code is never logged


def test_a_setting_written_at_enrollment_survives_a_restart(town_alone):
    from node import core
    enroll.set_setting(town_alone, "PARENT_URL", "http://新镇.example:8000")
    enroll.set_setting(town_alone, "PARENT_ID", "shi2")
    again = core.open_node(town_alone.dir)
    try:
        assert again.settings["PARENT_URL"] == "http://新镇.example:8000"
        assert again.settings["PARENT_ID"] == "shi2"
    finally:
        again.close()


# -- the QR text of the network page, given to `siji enroll --code` -------------------------

def test_the_qr_text_gives_code_parent_and_id():
    from node.web.network import enroll_text
    text = enroll_text("7kqm 4hxa-p2zd", "http://zhen.example:8000/", "zhen")
    assert enroll.parse_qr(text) == {"code": "7KQM-4HXA-P2ZD",
                                     "parent_url": "http://zhen.example:8000",
                                     "parent_id": "zhen"}


@pytest.mark.parametrize("text", [
    "siji-enroll:", "siji-enroll:7KQM-4HXA-P2ZD", "siji-enroll:7KQM-4HXA-P2ZD?",
    "siji-enroll:7KQM-4HXA?parent=http://a:1&id=zhen",          # too short
    "siji-enroll:7KQM-4HXA-P2Z1?parent=http://a:1&id=zhen",     # 1 is not in the alphabet
    "siji-enroll:7KQM-4HXA-P2ZD?parent=ftp://a:1&id=zhen",
    "siji-enroll:7KQM-4HXA-P2ZD?parent=zhen.example&id=zhen",
    "siji-enroll:7KQM-4HXA-P2ZD?parent=http://a:1",
    "siji-enroll:7KQM-4HXA-P2ZD?parent=http://a:1&id=zhen&id=other",
    "siji-enroll:7KQM-4HXA-P2ZD?parent=http://a:1&id=zhen&x=1",
    "siji-enroll:7KQM-4HXA-P2ZD?parent=http://a:1&id=a%20b",
    "siji-enroll:7KQM-4HXA-P2ZD?parent=http://a:1&id=",
    "SIJI:7KQM-4HXA-P2ZD?parent=http://a:1&id=zhen",
])
def test_a_malformed_qr_text_is_refused(text):
    from node.errors import ValidationError
    with pytest.raises(ValidationError):
        enroll.parse_qr(text)


@pytest.fixture
def cli_child(tmp_path):
    from node import cli
    assert cli.main(["--dir", str(tmp_path / "cun"), "init", "--tier", "town", "--id", "zhen",
                     "--name", "青水镇", "--parent", "http://old.example:1",
                     "--password", "admin-pass-1"]) == 0
    return tmp_path / "cun"


def test_siji_enroll_takes_the_qr_text(city, cli_child, monkeypatch, capsys):
    from node import cli, core
    from node.sync import http
    from node.web.network import enroll_text
    asked = []

    def post(url, payload):
        asked.append(url)
        return accept(city, payload)

    monkeypatch.setattr(http, "post_enrollment", post)
    monkeypatch.setattr(http, "node_at", lambda url: "shi")
    code = code_at(city)
    capsys.readouterr()
    assert cli.main(["--dir", str(cli_child), "--lang", "en", "enroll", "--code",
                     enroll_text(code, "http://shi.example:8000/", "shi")]) == 0
    out = capsys.readouterr().out
    assert asked == ["http://shi.example:8000"] and "Enrolled under shi." in out
    child = core.open_node(cli_child)
    try:
        assert child.settings["PARENT_URL"] == "http://shi.example:8000"
        assert child.settings["PARENT_ID"] == "shi"
    finally:
        child.close()


@pytest.mark.parametrize(("args", "words"), [
    (["--code", "siji-enroll:7KQM?parent=http://a:1&id=shi"], "not an enrollment QR text"),
    (["--code", "siji-enroll:7KQM-4HXA-P2ZD?parent=http://a:1&id=shi", "--parent",
      "http://b:2"], "names the parent http://a:1"),
])
def test_siji_enroll_refuses_a_bad_qr_text_in_one_line(cli_child, monkeypatch, capsys, args,
                                                       words):
    from node import cli
    from node.sync import http

    def post(url, payload):
        raise AssertionError("nothing may be sent")

    monkeypatch.setattr(http, "post_enrollment", post)
    before = (cli_child / "siji.toml").read_text("utf-8")
    capsys.readouterr()
    assert cli.main(["--dir", str(cli_child), "--lang", "en", "enroll", *args]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and words in err
    assert err.startswith("siji: ") and "Traceback" not in err
    assert (cli_child / "siji.toml").read_text("utf-8") == before


def test_siji_enroll_refuses_an_answer_from_another_node_than_the_qr_names(
        city, cli_child, monkeypatch, capsys):
    from node import cli
    from node.sync import http
    from node.web.network import enroll_text
    sent = []
    monkeypatch.setattr(http, "post_enrollment",
                        lambda url, payload: sent.append(url) or accept(city, payload))
    code = code_at(city)
    for node_at, posted in (("shi", []), ("other", ["http://shi.example:8000"])):
        # the node at the URL is not the QR text's: refused before the code is sent; one
        # that claims to be but answers as another is refused before anything is installed
        monkeypatch.setattr(http, "node_at", lambda url, node_at=node_at: node_at)
        capsys.readouterr()
        assert cli.main(["--dir", str(cli_child), "--lang", "en", "enroll", "--code",
                         enroll_text(code, "http://shi.example:8000", "other")]) == 1
        err = capsys.readouterr().err
        assert "names the parent other, but http://shi.example:8000 is shi" in err
        assert len(err.strip().splitlines()) == 1 and sent == posted
        assert not (cli_child / "keys" / "node.cert").exists()


def test_a_node_restored_from_a_backup_goes_on_above_its_numbers_once_enrolled_again(
        make_node, tmp_path):
    """Restored from an old copy, a village's next events would reuse numbers its parent
    holds (refused as equivocation). Enrolled again, it goes on above them: its parent's
    answer says where it stands."""
    import shutil

    from conftest import LIAISON, case_fields
    from test_revoke import enroll_under
    from test_session import Loopback

    from node import cases, core
    from node.sync import outbox, session
    town, village = make_node("town", "zhen"), make_node("village", "cun")
    enroll_under(town, village)
    village.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copytree(village.dir, tmp_path / "backup")
    for i in range(3):
        with store.write(village.db):
            cid = cases.register(village, LIAISON, case_fields(summary=f"第{i}件")).subject
            cases.act(village, LIAISON, cid, "escalate", {"to": "zhen", "reason": "需镇处理"})
    session.run(village, Loopback(town))
    village.close()
    restored = core.open_node(tmp_path / "backup", clock=town.clock)
    try:
        code = code_at(town)
        answer = accept(town, enroll.make_request(restored, code))
        with store.write(restored.db):
            result = enroll.install(restored, answer, code)
            outbox.resume(restored, result["parent"], result["resume_link"])
        with store.write(restored.db):
            cid = cases.register(restored, LIAISON, case_fields(summary="恢复后登记")).subject
            cases.act(restored, LIAISON, cid, "escalate", {"to": "zhen", "reason": "需镇处理"})
        session.run(restored, Loopback(town))  # nothing refused: new numbers, new link marks
        assert town.db.conn.execute("SELECT count(*) FROM cases WHERE id = ?",
                                    (cid,)).fetchone()[0] == 1
        assert town.db.conn.execute("SELECT count(*) FROM evidence").fetchone()[0] == 0
    finally:
        restored.close()
