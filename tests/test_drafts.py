"""Drafts sent with a key are written once; the upload endpoint, the manifest, the service worker.

The rule (node/drafts.py through web/ops.py, as the pages call it): a key sent again
with the same fields answers the first result and writes nothing; with other fields,
for another kind or from another account it is refused and writes nothing. The upload
endpoint answers JSON a page script can act on; the manifest and the service worker
are served with the headers browsers need. The browser side is test_offline_browser.py.
"""

from __future__ import annotations

import json
import re
import struct
import uuid

import pytest
from conftest import case_fields
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_web import Web, text

from node import drafts, store, users
from node.errors import ValidationError
from node.web import ops

LIU = {"username": "liu", "role": "liaison"}
ZHAO = {"username": "zhao", "role": "leader"}
WARNING = {"subject": "征地补偿款分配不公", "place": "东山村", "expected_size": "30"}
FORM = {"category": "dibao", "summary": "低保金三个月未发放", "p_name": "张三",
        "p_phone": "13800138000", "channel": "visit"}


def written(node) -> tuple[int, int]:
    """(events, draft keys) in the database: what a refused or repeated send must not change."""
    conn = node.db.conn
    return (conn.execute("SELECT count(*) FROM events").fetchone()[0],
            conn.execute("SELECT count(*) FROM draft_keys").fetchone()[0])


def new_key() -> str:
    return str(uuid.uuid4())


# -- the rule --------------------------------------------------------------------------

def test_the_same_key_twice_is_one_case_and_one_event(village):
    key = new_key()
    first = ops.register_case(village, LIU, case_fields(), key)
    before = written(village)
    again = ops.register_case(village, LIU, case_fields(), key)
    assert again == first
    assert written(village) == before
    assert village.db.conn.execute("SELECT count(*) FROM cases").fetchone()[0] == 1


def test_the_same_key_with_other_fields_is_refused_and_writes_nothing(village):
    key = new_key()
    first = ops.register_case(village, LIU, case_fields(), key)
    before = written(village)
    with pytest.raises(drafts.DraftConflict, match=first["id"]) as refused:
        ops.register_case(village, LIU, case_fields(summary="另一件事"), key)
    assert refused.value.code == "draft_conflict" and refused.value.http_status == 409
    assert written(village) == before


def test_a_key_of_another_account_or_kind_is_refused_without_naming_the_case(village):
    key = new_key()
    first = ops.register_case(village, LIU, case_fields(), key)
    before = written(village)
    with pytest.raises(drafts.DraftConflict) as other_user:
        ops.register_case(village, ZHAO, case_fields(), key)
    assert first["id"] not in str(other_user.value)  # someone else's case is not shown
    with pytest.raises(drafts.DraftConflict):
        ops.raise_warning(village, LIU, WARNING, key)
    assert written(village) == before


def test_a_refused_registration_leaves_no_key_and_the_fixed_one_goes(village):
    key = new_key()
    with pytest.raises(ValidationError):
        ops.register_case(village, LIU, case_fields(category="nope"), key)
    assert written(village)[1] == 0
    done = ops.register_case(village, LIU, case_fields(), key)
    assert done["id"].startswith("C-dongshan-")


def test_without_a_key_each_send_is_a_new_record_and_a_bad_key_is_refused(village):
    a = ops.register_case(village, LIU, case_fields())
    b = ops.register_case(village, LIU, case_fields())
    assert a["id"] != b["id"]
    before = written(village)
    for bad in ("short", "x" * 65, "不是钥匙-0000000000000", "a b c d e f g h i j"):
        with pytest.raises(ValidationError, match="draft_key"):
            ops.register_case(village, LIU, case_fields(), bad)
    assert written(village) == before


def test_a_warning_sent_twice_is_raised_once(village):
    key = new_key()
    first = ops.raise_warning(village, LIU, WARNING, key)
    assert ops.raise_warning(village, LIU, WARNING, key) == first
    assert village.db.conn.execute("SELECT count(*) FROM warnings").fetchone()[0] == 1


SENDS = st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from((0, 1)),
                           st.sampled_from(("liu", "zhao"))), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sends=SENDS)
def test_any_order_of_repeats_writes_each_key_once_as_its_first_send(village, sends):
    """The first send of a key decides: a repeat by the same account with the same fields
    answers its case, anything else is refused; one case and one event per key."""
    run = uuid.uuid4().hex[:8]  # the node is shared between examples: keys of their own
    summaries = ("低保金三个月未发放", "养老补贴未到账")
    first: dict[str, tuple] = {}
    made: dict[str, str] = {}
    events_before = written(village)[0]
    for letter, variant, username in sends:
        key = f"{run}-{letter}-0000000000"
        user = LIU if username == "liu" else ZHAO
        fields = case_fields(summary=summaries[variant])
        if key not in first:
            first[key] = (variant, username)
            made[key] = ops.register_case(village, user, fields, key)["id"]
        elif first[key] == (variant, username):
            assert ops.register_case(village, user, fields, key)["id"] == made[key]
        else:
            with pytest.raises(drafts.DraftConflict):
                ops.register_case(village, user, fields, key)
    assert len(set(made.values())) == len(first)
    assert written(village)[0] - events_before == len(first)
    for key, case_id in made.items():
        row = village.db.conn.execute("SELECT summary FROM cases WHERE id = ?",
                                      (case_id,)).fetchone()
        assert row[0] == summaries[first[key][0]]


# -- the pages -------------------------------------------------------------------------

def draft_key(html: str) -> str:
    return re.search(r'name="draft_key" value="([^"]+)"', html).group(1)


def test_each_form_carries_a_fresh_key_and_a_double_submit_registers_once(village, clock):
    w = Web(village, clock)
    w.login("liu")
    first, second = draft_key(text(w.get("/cases/new"))), draft_key(text(w.get("/cases/new")))
    assert first != second
    a = w.post("/cases/new", {**FORM, "draft_key": first})
    b = w.post("/cases/new", {**FORM, "draft_key": first})  # the second tap
    assert a.status_code == b.status_code == 303 and a.location == b.location
    assert village.db.conn.execute("SELECT count(*) FROM cases").fetchone()[0] == 1
    again = w.post("/warnings/new", {**WARNING, "draft_key": first})
    assert again.status_code == 400 and "其他类型的记录" in text(again)
    w.post("/warnings/new", {**WARNING, "draft_key": draft_key(text(w.get("/warnings/new")))})
    assert village.db.conn.execute("SELECT count(*) FROM warnings").fetchone()[0] == 1


def test_the_offline_script_is_given_to_those_who_register_and_only_them(village, clock):
    w = Web(village, clock)
    assert 'id="siji-offline"' not in text(w.get("/login"))
    w.login("liu")
    page = text(w.get("/mine"))
    config = json.loads(re.search(r'<script type="application/json" id="siji-offline">'
                                  r"(.*?)</script>", page).group(1))
    assert config["user"] == "liu" and config["node"] == "dongshan"
    assert config["forms"] == {"/cases/new": "case", "/warnings/new": "warning"}
    assert config["t"]["count"] == "待上传 %(n)s"
    assert 'rel="manifest"' in page
    admin = Web(village, clock)
    admin.login("admin")
    assert 'id="siji-offline"' not in text(admin.get("/network"))
    assert admin.get("/drafts").status_code == 403


# -- the upload endpoint ---------------------------------------------------------------

def uploader(village, clock, username="liu") -> tuple[Web, dict]:
    """A logged-in client and the headers the page script sends (its token from a page)."""
    w = Web(village, clock)
    w.login(username)
    return w, {"X-CSRFToken": w.token, "Accept": "application/json"}


def test_upload_answers_the_record_and_the_same_answer_again(village, clock):
    w, headers = uploader(village, clock)
    session = w.client.get("/drafts/session").get_json()
    assert session == {"username": "liu", "node": "dongshan", "csrf_token": session["csrf_token"]}
    headers["X-CSRFToken"] = session["csrf_token"]
    key = new_key()
    first = w.client.post("/drafts/upload/case", data={**FORM, "draft_key": key},
                          headers=headers)
    assert first.status_code == 200
    answer = first.get_json()
    assert answer == {"id": answer["id"], "url": f"/cases/{answer['id']}"}
    again = w.client.post("/drafts/upload/case", data={**FORM, "draft_key": key},
                          headers=headers)
    assert again.get_json() == answer
    warning = w.client.post("/drafts/upload/warning", data={**WARNING, "draft_key": new_key()},
                            headers=headers).get_json()
    assert warning["url"] == f"/warnings/{warning['id']}"


@pytest.mark.parametrize(("kind", "data", "status", "code", "words"), [
    ("case", {**FORM, "summary": "另一件事", "draft_key": "sent"}, 409, "draft_conflict", "提交过"),
    ("case", {**FORM, "p_id_number": "110105194912310021"}, 400, "validation_error", "校验码"),
    ("case", {**FORM, "summary": "张三电话13800138000"}, 422, "numbers_in_text", "身份证号"),
    ("case", {**FORM, "draft_key": ""}, 400, "validation_error", "draft_key"),
    ("rumour", FORM, 404, "not_found", "页面"),
])
def test_upload_refusals_are_json_with_a_code_and_write_nothing(village, clock, kind, data,
                                                               status, code, words):
    w, headers = uploader(village, clock)
    sent = new_key()
    w.client.post("/drafts/upload/case", data={**FORM, "draft_key": sent}, headers=headers)
    before = written(village)
    data = {"draft_key": new_key(), **data}
    data["draft_key"] = sent if data["draft_key"] == "sent" else data["draft_key"]
    refused = w.client.post(f"/drafts/upload/{kind}", data=data, headers=headers)
    assert refused.status_code == status
    error = refused.get_json()["error"]
    assert error["code"] == code and words in error["message"]
    assert written(village) == before


def test_a_refused_upload_names_every_field_at_once(village, clock):
    w, headers = uploader(village, clock)
    data = {**FORM, "p_id_number": "110105194912310021", "p_phone": "12345",
            "draft_key": new_key()}
    before = written(village)
    error = w.client.post("/drafts/upload/case", data=data, headers=headers).get_json()["error"]
    assert error["code"] == "validation_error"
    assert "校验码" in error["message"] and "电话" in error["message"]
    assert written(village) == before


def test_numbers_kept_in_the_text_by_choice_are_registered(village, clock):
    w, headers = uploader(village, clock)
    data = {**FORM, "summary": "张三电话13800138000", "numbers": "keep", "draft_key": new_key()}
    assert w.client.post("/drafts/upload/case", data=data, headers=headers).status_code == 200


def test_upload_without_a_login_or_token_says_so_in_json(village, clock):
    w, headers = uploader(village, clock)
    no_token = w.client.post("/drafts/upload/case", data={**FORM, "draft_key": new_key()},
                             headers={"Accept": "application/json"})
    assert no_token.status_code == 400 and no_token.get_json()["error"]["code"] == "csrf_refused"
    with store.write(village.db):
        users.end_sessions(village, "liu", "admin")
    ended = w.client.post("/drafts/upload/case", data={**FORM, "draft_key": new_key()},
                          headers=headers)
    assert ended.status_code == 401 and ended.get_json()["error"]["code"] == "not_logged_in"
    again = w.client.get("/drafts/session", headers={"Accept": "application/json"})
    assert again.status_code == 401 and again.get_json()["error"]["code"] == "not_logged_in"
    assert written(village)[1] == 0
    admin, admin_headers = uploader(village, clock, "admin")
    role = admin.client.post("/drafts/upload/case", data={**FORM, "draft_key": new_key()},
                             headers=admin_headers)
    assert role.status_code == 403 and role.get_json()["error"]["code"] == "not_allowed"


# -- manifest and service worker -------------------------------------------------------

def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_manifest_names_the_node_and_its_icons_exist(village, clock):
    w = Web(village, clock)  # browsers fetch it without cookies: no login
    r = w.get("/manifest.webmanifest")
    assert r.status_code == 200 and r.mimetype == "application/manifest+json"
    manifest = r.get_json(force=True)
    assert manifest["short_name"] == "dongshan 名称" and "四级网" in manifest["name"]
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/"
    purposes = set()
    for icon in manifest["icons"]:
        image = w.client.get(icon["src"])
        assert image.status_code == 200 and image.mimetype == "image/png"
        width, height = png_size(image.data)
        assert icon["sizes"] == f"{width}x{height}"
        purposes.add(icon["purpose"])
    assert {"192x192", "512x512"} <= {i["sizes"] for i in manifest["icons"]}
    assert purposes == {"any", "maskable"}


def test_the_service_worker_is_served_fresh_from_the_root_with_what_it_keeps(village, clock):
    w = Web(village, clock)
    r = w.get("/sw.js")
    assert r.status_code == 200 and r.mimetype == "text/javascript"
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["Service-Worker-Allowed"] == "/"
    policy = r.headers["Content-Security-Policy"]
    assert "worker-src 'self'" in policy and "manifest-src 'self'" in policy
    first_line, code = text(r).split("\n", 1)
    config = json.loads(re.fullmatch(r"self\.SIJI = (.*);", first_line).group(1))
    assert config["pages"] == ["/cases/new", "/warnings/new", "/drafts"]
    assert "addEventListener('fetch'" in code
    assert not any("sw.js" in a for a in config["assets"])
    w.login("liu")
    page = text(w.get("/cases/new"))
    for asset in config["assets"]:  # the versioned URLs the pages use
        assert w.client.get(asset).status_code == 200
    for used in re.findall(r'(?:href|src)="(/static/[^"]+)"', page):
        assert used.replace("&amp;", "&") in config["assets"]
    assert w.get("/sw.js").get_data() == r.get_data()  # the same for everyone
