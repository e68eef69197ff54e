"""One contract, two transports: what holds over HTTP must hold over USB files.

The HTTP case runs the real endpoints and the real client, joined by
Flask's test client instead of a socket (the socket is covered by
tests/test_sync_http.py). The files case writes and reads real files.
"""

from __future__ import annotations

import io
import json
from urllib.parse import urlparse

import pytest
from conftest import HANDLER, LIAISON, case_fields
from test_log import count, dump
from test_session import event_ids, register_many

from node import cases, create_app, envelope, pacing, store
from node.envelope import EnvelopeError
from node.sync import files, outbox, parts, session
from node.sync.http import HttpTransport, RemoteRefused


class _Response:
    def __init__(self, r):
        self.status_code, self.headers = r.status_code, r.headers
        self.raw, self._data = io.BytesIO(r.data), r.data
        self.raw.read = lambda n=-1, decode_content=True, _f=self.raw.read: _f(n)
        self.raw.read1 = self.raw.read

    def json(self):
        return json.loads(self._data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FlaskHttp:
    """Stands in for requests.Session: the same calls, answered by the app in-process."""

    def __init__(self, app):
        self.client = app.test_client()

    def post(self, url, data, timeout, headers, stream):
        headers = {k: v for k, v in headers.items() if v is not None}
        return _Response(self.client.post(urlparse(url).path, data=data, headers=headers))


class FileTransport:
    """Each push and pull goes through a directory, as a USB stick would carry it."""

    def __init__(self, child, parent, directory):
        self.child, self.parent, self.dir = child, parent, directory
        self.dir.mkdir(exist_ok=True)

    def _clear(self):
        for p in self.dir.iterdir():
            p.unlink()

    def push(self, out, pace=None):
        data = out.data
        self._clear()
        header = envelope.read_header(data)
        (self.dir / f"siji-{header.sender}-to-{header.recipient}-{header.first:010d}-"
                    f"{header.last:010d}.bundle").write_bytes(data)
        report = files.import_dir(self.parent, self.dir)
        if report["refused"]:
            raise RemoteRefused("refused: %(m)s", m=report["refused"][0][1])
        return (self.dir / f"siji-{self.parent.id}-to-{self.child.id}.ack").read_bytes()

    def pull(self, ack, into=None, pace=None):
        self._clear()
        (self.dir / f"siji-{self.child.id}-to-{self.parent.id}.ack").write_bytes(ack)
        files.import_dir(self.parent, self.dir)
        written = files.export_bundles(self.parent, self.child.id, self.dir)
        return written[0].read_bytes() if written else None


@pytest.fixture(params=["http", "files"])
def link(request, make_node, clock, tmp_path):
    town = make_node("town", "zhen")
    village = make_node("village", "cun", parent=town)
    if request.param == "http":
        app = create_app(town.dir, clock=clock)
        transport = HttpTransport("http://zhen.test", http=FlaskHttp(app))
    else:
        transport = FileTransport(village, town, tmp_path / "usb")
    return town, village, transport


def test_everything_arrives_once(link):
    town, village, transport = link
    register_many(village, 6)
    assert session.run(village, transport).sent == 12
    assert event_ids(town) == event_ids(village)
    assert session.run(village, transport).sent == 0
    assert count(town) == 12 and outbox.link(village.db, "zhen")["acked"] == 12


def test_referral_down_and_acknowledgement_up(link):
    town, village, transport = link
    with store.write(town.db):
        cid = cases.register(town, HANDLER, case_fields()).subject
        cases.act(town, HANDLER, cid, "refer", {"to": "cun", "instruction": "核实",
                                               "deadline": "2026-12-10"})
    assert session.run(village, transport).received == 2
    with store.write(village.db):
        cases.act(village, LIAISON, cid, "sign", {})
    session.run(village, transport)
    assert cases.get(town, cid)["handover"] == "signed"
    assert session.run(village, transport).received == 0


def test_lost_replies_are_harmless(link):
    town, village, transport = link
    register_many(village, 3)

    class LoseFirstReply:
        lost = False

        def push(self, out, pace):
            reply = transport.push(out, pace)
            if not self.lost:
                self.lost = True
                raise ConnectionError("reply lost")
            return reply

        def pull(self, ack, into, pace):
            return transport.pull(ack, into, pace)

    lossy = LoseFirstReply()
    with pytest.raises(ConnectionError):
        session.run(village, lossy)
    session.run(village, lossy)
    assert event_ids(town) == event_ids(village) and count(town) == 6


def test_a_tampered_bundle_changes_nothing(link):
    town, village, transport = link
    register_many(village, 2)
    with store.write(village.db):
        outbox.queue(village, "zhen")
    first, evs = outbox.pending(village, "zhen", 10)
    out = parts.Outgoing.seal(evs, sender="cun", recipient="zhen", first=first,
                              sender_key=village.signer, recipient_key=town.enc_key.public_key())
    data = bytearray(out.data)
    data[-3] ^= 0xFF
    out.data = bytes(data)
    before = dump(town)
    with pytest.raises((RemoteRefused, EnvelopeError)):
        transport.push(out, pacing.Pace(outbox.BATCH, outbox.BATCH))
    assert dump(town) == before and count(town) == 0
    assert town.db.conn.execute("SELECT count(*) FROM refusals").fetchone()[0] == 1
