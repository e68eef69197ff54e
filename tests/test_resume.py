"""Every cut makes progress: bundles resume from a byte offset, over HTTP and on a stick.

The HTTP cases run the real endpoints and the real client, joined by Flask's
test client as a link whose connections each die after a byte budget (both
ways counted, as tests/faultproxy.py does it with real sockets in
tests/test_faults.py). The store's side of a part is checked on its own.
"""

from __future__ import annotations

import hashlib
import io
from urllib.parse import urlparse

import pytest
import requests
import urllib3
from conftest import HANDLER, case_fields
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_log import count
from test_session import Loopback, event_ids, register_many
from test_transport_contract import _Response
from test_web import Web, text

from node import cases, cli, create_app, envelope, store
from node.envelope import EnvelopeError, Piece
from node.sync import files, outbox, parts, session
from node.sync import status as sync_status
from node.sync.http import HttpTransport

REQUEST_HEAD, ANSWER_HEAD = 200, 150  # bytes a head takes on the link, about


class _CutAnswer(_Response):
    """An answer whose connection dies after ``keep`` bytes of its body."""

    def __init__(self, r, keep: int):
        super().__init__(r)
        arrived = io.BytesIO(r.data[:keep])

        def read1(n=-1):  # what arrived, then the reset
            got = arrived.read(n if n and n > 0 else -1)
            if not got:
                raise urllib3.exceptions.ProtocolError("connection reset")
            return got

        def read(n=-1, decode_content=True):  # all of it, or the reset (IncompleteRead)
            raise urllib3.exceptions.ProtocolError("connection reset")

        self.raw.read, self.raw.read1 = read, read1


class Budgets:
    """Stands in for requests.Session: each request goes to the app in-process, over a
    link whose connections die after the bytes in ``budgets`` (one a connection, then
    clean): a request that does not fit never arrives; an answer that does not fit
    arrives as far as it does."""

    def __init__(self, app, budgets):
        self.client, self.budgets = app.test_client(), list(budgets)
        self.left = self._next()
        self.connections, self.bytes, self.sent, self.heads, self.answers = 1, 0, [], [], []

    def _next(self) -> float:
        return self.budgets.pop(0) if self.budgets else float("inf")

    def _cut(self):
        self.bytes += max(0, self.left) if self.left != float("inf") else 0
        self.left = self._next()
        self.connections += 1
        raise requests.ConnectionError("connection reset")

    def post(self, url, data, timeout, headers, stream):
        headers = {k: v for k, v in headers.items() if v is not None}
        self.sent.append((urlparse(url).path, headers.get("Siji-Piece"), len(data)))
        self.heads.append(headers)
        if REQUEST_HEAD + len(data) > self.left:  # (what was tried is in sent all the same)
            self._cut()
        self.left -= REQUEST_HEAD + len(data)
        self.bytes += REQUEST_HEAD + len(data)
        r = self.client.post(urlparse(url).path, data=data, headers=headers)
        self.answers.append((r.headers.get("Siji-Part"), len(r.data)))
        if self.left < ANSWER_HEAD:
            self._cut()
        self.left -= ANSWER_HEAD
        self.bytes += ANSWER_HEAD
        if len(r.data) > self.left:
            keep = int(self.left)
            self.bytes += keep
            self.left, self.connections = self._next(), self.connections + 1
            return _CutAnswer(r, keep)
        self.left -= len(r.data)
        self.bytes += len(r.data)
        return _Response(r)


@pytest.fixture
def link(make_node, clock):
    town = make_node("town", "zhen")
    village = make_node("village", "cun", parent=town)
    return town, village, create_app(town.dir, clock=clock)


def refer_down(town, village, n: int) -> list[str]:
    ids = []
    with store.write(town.db):
        for i in range(n):
            cid = cases.register(town, HANDLER, case_fields(summary=f"镇交办第{i}件")).subject
            cases.act(town, HANDLER, cid, "accept", {})
            cases.act(town, HANDLER, cid, "refer", {"to": village.id, "instruction": "请核实",
                                                   "deadline": "2026-12-10"})
            ids.append(cid)
    return ids


def first_bundle(town, village, n: int) -> bytes:
    """The bytes of a bundle of the first ``n`` events the village owes the town (sealed
    again it differs, but has the same length)."""
    with store.write(village.db):
        outbox.queue(village, town.id)
    first, evs = outbox.pending(village, town.id, n)
    return envelope.seal(evs, sender=village.id, recipient=town.id, first=first,
                         sender_key=village.signer, recipient_key=town.enc_key.public_key())


def sync_until_done(village, transport, sessions: int = 60) -> int:
    """Sessions, as the scheduler would run them, until one ends cleanly; how many."""
    for n in range(1, sessions + 1):
        try:
            session.run(village, transport, retries=2, wait=lambda _: None)
            return n
        except OSError:
            continue
    raise AssertionError("no session got through")


def assert_exactly_once(town, village, up: int, down: int) -> None:
    assert event_ids(town) == event_ids(village)
    assert count(town) == len(set(event_ids(town)))
    assert outbox.link(village.db, town.id)["acked"] == up
    assert outbox.link(town.db, village.id)["acked"] == down
    for node in (town, village):
        assert node.db.conn.execute("SELECT count(*) FROM inbox").fetchone()[0] == 0
        # nothing left in transit: only the digests of bundles applied whole
        assert node.db.conn.execute("SELECT count(*) FROM parts WHERE NOT done").fetchone()[
            0] == 0
        assert node.db.conn.execute("SELECT count(*) FROM part_pieces").fetchone()[0] == 0


def test_connections_that_each_die_after_3_kib_still_carry_everything(link):
    """Every bundle here is larger than what any connection carries: resent whole, as
    before, nothing would ever arrive; a piece at a time, both ways, it all does."""
    town, village, app = link
    register_many(village, 60)  # 120 events up
    refer_down(town, village, 20)  # 60 events down
    http = Budgets(app, [3 * 1024] * 400)
    sync_until_done(village, HttpTransport("http://zhen.test", http=http))
    assert_exactly_once(town, village, 120, 60)
    whole = max(n for path, piece, n in http.sent if path == "/sync/push" and piece is None)
    assert whole > 3 * 1024  # the first try, whole, before the link had shown its cuts
    assert http.connections > 5 and http.budgets  # it took many connections, not all of them


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(budgets=st.lists(st.integers(0, 16 * 1024), min_size=1, max_size=80),
       up=st.integers(1, 12), down=st.integers(0, 4))
def test_any_budgets_converge_exactly_once_both_ways(make_node, clock, budgets, up, down):
    town = make_node("town")
    village = make_node("village", parent=town)
    app = create_app(town.dir, clock=clock)
    register_many(village, up)
    refer_down(town, village, down)
    sync_until_done(village, HttpTransport("http://zhen.test", http=Budgets(app, budgets)),
                    sessions=len(budgets) + 2)
    assert_exactly_once(town, village, 2 * up, 3 * down)


def test_a_session_cut_mid_bundle_leaves_a_part_that_the_next_one_continues(link, clock,
                                                                            capsys):
    town, village, app = link
    register_many(village, 30)
    with store.write(village.db):  # the link has shown cuts: bundles go a piece at a time
        outbox.ensure_link(village.db, "zhen")
        village.db.conn.execute("UPDATE links SET moved = 20000, cuts = 1 WHERE peer = 'zhen'")
    http = Budgets(app, [6000, 0])  # some pieces get through; then nothing does
    with pytest.raises(OSError):
        session.run(village, HttpTransport("http://zhen.test", http=http))
    sending = parts.held(village, "zhen", "out")
    receiving = parts.held(town, "cun", "in")
    assert sending and receiving and 0 < sending[0] == receiving[0] < sending[1]
    kept = parts.outgoing(village, "zhen")
    # status says where it stands: bytes sent of bytes owed, and so does the liaison's page
    up = sync_status.summary(village)
    assert up["links"][0]["sending"] == list(sending)
    going = up["progress"]
    assert 1 <= going["sent_kib"] < going["total_kib"]
    w = Web(village, clock)
    w.login("liu")
    assert f"已发送 {going['sent_kib']} / {going['total_kib']} KiB" in text(w.get("/mine"))
    assert cli.main(["--dir", str(village.dir), "--lang", "en", "status"]) == 0
    assert f"Sent {going['sent_kib']} KiB of {going['total_kib']} KiB owed" in \
        capsys.readouterr().out
    # the next session, a new transport (a new process), sends the rest only
    http = Budgets(app, [])
    session.run(village, HttpTransport("http://zhen.test", http=http))
    first = http.sent[0]
    assert first[0] == "/sync/push" and Piece.parse(first[1]).start == sending[0]
    assert Piece.parse(first[1]).digest == kept.digest
    assert_exactly_once(town, village, 60, 0)
    assert sync_status.summary(village)["progress"] is None


def test_a_download_cut_short_is_kept_and_the_next_session_asks_for_the_rest(link):
    town, village, app = link
    refer_down(town, village, 12)
    http = Budgets(app, [2500, 0])  # the first answer is cut; then nothing gets through
    with pytest.raises(OSError):
        session.run(village, HttpTransport("http://zhen.test", http=http))
    into = parts.incoming(village, "zhen")
    assert into.digest is not None and 0 < len(into.data) < into.size
    held = len(into.data)
    assert sync_status.links(village)[0]["receiving"] == [held, into.size]
    http = Budgets(app, [])
    session.run(village, HttpTransport("http://zhen.test", http=http))
    # it asked for the rest of the same bundle, which the town had kept, and got only that
    resume = Piece.parse(http.heads[0]["Siji-Resume"])
    assert (resume.digest, resume.start, resume.size) == (into.digest, held, into.size)
    part, length = http.answers[0]
    assert Piece.parse(part).start == held and length == into.size - held
    assert_exactly_once(town, village, 0, 36)


def test_a_lost_acknowledgement_costs_one_piece_not_the_bundle(link):
    """The town applied a whole bundle and its answer was lost: the village sends the same
    bytes again, a piece at a time, and the first piece gets the acknowledgement."""
    town, village, app = link
    register_many(village, 40)
    size = len(first_bundle(town, village, 80))
    with store.write(village.db):
        village.db.conn.execute("UPDATE links SET batch = 80 WHERE peer = 'zhen'")
    http = Budgets(app, [REQUEST_HEAD + size + ANSWER_HEAD + 10])  # cut inside the answer
    session.run(village, HttpTransport("http://zhen.test", http=http), retries=1)
    assert_exactly_once(town, village, 80, 0)
    pushes = [(piece, n) for path, piece, n in http.sent if path == "/sync/push"]
    assert pushes[0] == (None, size)  # whole, applied, its answer lost
    again = Piece.parse(pushes[1][0])
    assert again.start == 0 and pushes[1][1] < size / 2  # one piece of the same bundle
    assert http.answers[1] == (None, http.answers[0][1])  # answered with the acknowledgement
    assert len(pushes) == 2


def test_a_single_413_does_not_halve_the_batch_for_good(link):
    town, village, _ = link
    register_many(village, 100)
    limit = len(first_bundle(town, village, 50))
    session.run(village, Loopback(town, max_bytes=limit))  # a proxy that takes 50 events
    assert outbox.link(village.db, "zhen")["batch"] < 100
    register_many(village, 250)
    session.run(village, Loopback(town))  # the proxy is gone: the batch grows back
    assert outbox.link(village.db, "zhen")["batch"] > 100  # (a quarter a bundle: test_pacing)
    assert count(town) == 700


def test_the_part_a_neighbour_sends_is_kept_as_it_arrives(link):
    """The store's side: bytes beyond what is held are kept, a piece sent again is not kept
    twice, a piece past what is held says how much is, a new bundle starts over, a piece
    damaged on the way makes the part start over, and a bundle applied keeps its digest."""
    town, village, _ = link
    data = bytes(range(256)) * 40  # 10,240 bytes
    digest = hashlib.sha256(data).digest()

    def give(start, end, digest=digest, payload=None):
        with store.write(town.db):
            return parts.receive(town, Piece("cun", digest, start, len(data)),
                                 data[start:end] if payload is None else payload)

    assert give(0, 4000).held == 4000
    assert give(2000, 6000).held == 6000            # overlap: the new 2,000 kept
    assert give(2000, 6000).held == 6000            # the same again: nothing new
    gap = give(7000, 9000)
    assert gap.gap and gap.held == 6000             # past what is held
    done = give(6000, len(data))
    assert done.whole == data and not done.gap
    with pytest.raises(EnvelopeError, match="malformed piece"):
        give(0, 100)                                # a piece too small to keep
    with pytest.raises(EnvelopeError, match="malformed piece"):
        give(len(data) - 10, len(data) + 10, payload=b"x" * 20)  # past the bundle's end
    other = hashlib.sha256(b"other").digest()
    assert give(0, 4000, digest=other).held == 4000  # another bundle: starts over
    assert give(4000, 5000, digest=digest).gap      # the first one is gone
    damaged = bytearray(data)
    damaged[5000] ^= 1
    assert give(0, 4000).held == 4000
    assert give(4000, len(data), payload=bytes(damaged[4000:])).gap  # starts over
    assert parts.held(town, "cun", "in") is None
    with store.write(town.db):
        parts.applied(town, "cun", digest, len(data))
    assert give(4000, 8000).done and give(0, 4000).done
    # one part per neighbour: what a neighbour can make a node keep is one bundle
    assert town.db.conn.execute("SELECT count(*) FROM parts WHERE peer = 'cun'").fetchone()[
        0] == 1


def test_a_stranger_cannot_start_a_part(link, make_node):
    town, _, _ = link
    stranger = make_node("village", "stranger")
    claim = envelope.sign_part(stranger.signer, "zhen", Piece("stranger", bytes(32), 0, 5000))
    with pytest.raises(EnvelopeError) as info:
        session.serve_piece(town, claim, b"x" * 1000)
    assert info.value.reason == "unknown_sender"
    unsigned = Piece("cun", bytes(32), 0, 5000)
    with pytest.raises(EnvelopeError) as info:
        session.serve_piece(town, unsigned, b"x" * 1000)
    assert info.value.reason == "bad_signature"
    assert town.db.conn.execute("SELECT count(*) FROM parts").fetchone()[0] == 0


# -- on a stick -------------------------------------------------------------------------

def test_a_bundle_file_cut_short_is_refused_as_truncated_and_the_rest_still_goes(
        link, tmp_path):
    town, village, _ = link
    register_many(village, 30)
    usb = tmp_path / "usb"
    with store.write(village.db):
        outbox.ensure_link(village.db, "zhen")
    written = files.export_bundles(village, "zhen", usb)
    size = written[0].stat().st_size
    assert written[0].name.endswith(f".{size}.bundle")
    written[0].write_bytes(written[0].read_bytes()[:size // 2])  # the stick was pulled
    (usb / "siji-cun-to-zhen-0000000099-0000000100.5000.bundle.part").write_bytes(b"x" * 10)
    report = files.import_dir(town, usb)
    (name, why), = report["refused"]
    assert name == written[0].name and why.startswith("truncated: only ")
    assert f"of its {size} bytes" in why and "signature" not in why
    assert report["incomplete"] == ["siji-cun-to-zhen-0000000099-0000000100.5000.bundle.part"]
    assert count(town) == 0  # what came after the cut one lands past a gap: nothing applied
    assert town.db.conn.execute("SELECT count(*) FROM refusals").fetchone()[0] == 0
    # copied again whole, it goes; export clears what it left half written before
    (usb / f"siji-cun-to-zhen-{'9' * 10}-{'9' * 10}.1.bundle.part").write_bytes(b"")
    files.export_bundles(village, "zhen", usb)
    assert not list(usb.glob("siji-cun-to-zhen-9*.part"))
    report = files.import_dir(town, usb)
    assert not [r for r in report["refused"] if r[1].startswith("truncated")]
    assert count(town) == 60


def test_the_cli_says_truncated_and_names_what_it_left_alone(link, tmp_path, capsys):
    town, village, _ = link
    register_many(village, 3)
    usb = tmp_path / "usb"
    written = files.export_bundles(village, "zhen", usb)
    data = written[0].read_bytes()
    written[0].write_bytes(data[:-1])
    written[0].with_name(written[0].name + ".part").write_bytes(data[:10])
    assert cli.main(["--dir", str(town.dir), "--lang", "en", "import", str(usb)]) == 1
    err = capsys.readouterr().err
    assert f"refused {written[0].name}: truncated: only {len(data) - 1} of its " in err
    assert f"left alone {written[0].name}.part: an incomplete copy" in err
    assert "Traceback" not in err and "does not verify" not in err
