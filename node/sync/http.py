"""The parent's sync endpoints and the child's HTTP transport.

The bundle and acknowledgement signatures are the authentication on this
path: no passwords or cookies. Bodies are capped (413 past the cap); a busy
parent queues a request for a turn (at most QUEUE_SECONDS), then answers 429
with Retry-After; every refusal is recorded with its reason and shown by
``siji status``.

A bundle goes up whole, or, on a link that cuts, a piece at a time (the
``Siji-Piece`` header), each piece kept by the parent as it arrives; it comes
down in one answer that the child keeps as it reads, asking for the rest
(``Siji-Resume``) if the answer is cut (node/sync/parts.py, docs/protocol.md
2.5). Every request waits as long as the link needs for what it carries
(node.pacing.Pace.timeout).
"""

from __future__ import annotations

import json
import math
import threading
import time

import requests
import urllib3
from flask import Blueprint, Response, current_app, jsonify, request

from node import enroll as enrollment
from node import envelope, log, pacing, store
from node.envelope import EnvelopeError, Piece
from node.errors import N_, NodeError, StoreBusy
from node.sync import inbox, outbox, parts, session

MAX_BODY = envelope.MAX_BUNDLE
CONCURRENT = 4        # sync requests served at once; more wait for a turn...
QUEUE_SECONDS = 15    # ...this long at most, then get 429
RETRY_AFTER = 5       # seconds suggested to a client turned away
bp = Blueprint("sync", __name__, url_prefix="/sync")
_slots = threading.BoundedSemaphore(CONCURRENT)


Busy = session.Busy
# The long-poll (/sync/wait): a child's request held until something is owed to it
WAITERS = 32          # held at once, for all children; more get 429 (`siji serve` has threads
LONG_POLL_MAX = 60    # for them beside the pages); seconds one is held at most
LOOK_EVERY = 0.5      # seconds between looks at the log while this process stores nothing
_waiters = threading.BoundedSemaphore(WAITERS)
_arrival = threading.Condition()
_listening: list = []
READ = 64 * 1024      # bytes read at a time from an answer (what arrived is kept)
# The heads of a request: short, since each piece pays for them on a link that cuts (the
# Accept-Encoding that http.client then adds says identity, which is what is sent).
HEADERS = {"Content-Type": "application/octet-stream", "User-Agent": "siji",
           "Accept-Encoding": None, "Accept": None, "Connection": None}


class RemoteRefused(NodeError):
    """The parent refused what we sent, with a reason."""

    code = "remote_refused"


def _node():
    return current_app.extensions["siji.node"]()


def _refusal(node, e: EnvelopeError, data: bytes):
    """Answer a refused bundle or acknowledgement, recorded as inbox.record_refused says."""
    inbox.record_refused(node, e, data)
    body = e.as_dict()
    body["error"]["reason"] = e.reason
    body["error"]["msgid"] = e.msgid  # the child says it in its own language
    return jsonify(body), e.http_status


def _too_many(node) -> Response | None:
    """A 429 for a client address past SYNC_REQUESTS_PER_MINUTE, else None."""
    limiter = current_app.extensions.get("siji.sync_limiter")
    if limiter is None:
        limiter = current_app.extensions["siji.sync_limiter"] = pacing.RateLimiter(
            node.settings["SYNC_REQUESTS_PER_MINUTE"])
    wait = limiter.wait(enrollment.client_key(request.remote_addr), time.monotonic())
    if not wait:
        return None
    response = jsonify({"error": {"code": "busy", "message": "too many requests",
                                  "params": {}}})
    response.headers["Retry-After"] = str(math.ceil(wait))
    return response


def _busy():
    """429 with Retry-After: no turn came free in time (or too many wait already)."""
    response = jsonify({"error": {"code": "busy", "message": "busy", "params": {}}})
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response, 429


def _serve(handler):
    refused = _too_many(_node())
    if refused is not None:
        return refused, 429
    length = request.content_length
    if length is None or length > MAX_BODY:
        return jsonify({"error": {"code": "too_large", "message": "bundle too large",
                                  "params": {"max": str(MAX_BODY)}}}), 413
    # a busy parent queues a child briefly: a child turned away would wait for its next try
    if not _slots.acquire(timeout=QUEUE_SECONDS):
        return _busy()
    try:
        data = request.get_data(cache=False)
        node = _node()
        try:
            reply = handler(node, data)
        except EnvelopeError as e:
            return _refusal(node, e, data)
        except StoreBusy:  # (the child tries again after Retry-After)
            return _busy()
        if reply is None:
            return Response(status=204)
        if isinstance(reply, Response):
            return reply
        return Response(reply, mimetype="application/octet-stream")
    finally:
        _slots.release()


def _header_piece(name: str) -> Piece | None:
    text = request.headers.get(name)
    return None if text is None else Piece.parse(text)


def _push(node, data: bytes):
    piece = _header_piece("Siji-Piece")
    if piece is None:
        return session.serve_push(node, data, kept=True)
    taken, ack = session.serve_piece(node, piece, data)
    if ack is not None:
        return ack
    # 202: kept, send on from Siji-Held; 409: the piece starts past what is held
    response = Response(status=409 if taken.gap else 202)
    response.headers["Siji-Held"] = str(taken.held)
    del response.headers["Content-Type"]  # (no body: every byte of the heads counts)
    return response


def _pull(node, data: bytes):
    batch = request.headers.get("Siji-Batch", "")
    batch = min(outbox.BATCH, int(batch)) if batch.isascii() and batch.isdigit() and int(
        batch) > 0 else outbox.BATCH
    reply = session.serve_pull_part(node, data, batch, _header_piece("Siji-Resume"))
    if reply is None:
        return None
    out, start = reply
    response = Response(out.data[start:], mimetype="application/octet-stream")
    response.headers["Siji-Part"] = Piece(node.id, out.digest, start, out.size).text()
    return response


@bp.post("/push")
def push():
    return _serve(_push)


@bp.post("/pull")
def pull():
    return _serve(_pull)


@bp.post("/wait")
def wait():
    """A child's long-poll: its signed acknowledgement (as for a pull; nothing is applied),
    and ``Siji-Wait``, the seconds it will wait. Answered 200 as soon as something is owed
    to it (it then syncs), 204 when the time is up with nothing owed. Held outside the
    sync slots: a waiting child takes no turn from one that sends or fetches."""
    node = _node()
    refused = _too_many(node)
    if refused is not None:
        return refused, 429
    if (request.content_length or 0) > 64 * 1024:
        return jsonify({"error": {"code": "too_large", "message": "too large",
                                  "params": {}}}), 413
    if not _waiters.acquire(blocking=False):
        return _busy()
    try:
        data = request.get_data(cache=False)
        try:
            ack = envelope.open_ack(data, me=node.id, sender_key=inbox.neighbour_key(node))
        except EnvelopeError as e:
            return _refusal(node, e, data)
        asked = request.headers.get("Siji-Wait", "")
        seconds = min(LONG_POLL_MAX, int(asked)) if asked.isascii() and asked.isdigit() else 0
        return Response(status=200 if _owed_within(node, ack.sender, ack.upto, seconds)
                        else 204)
    finally:
        _waiters.release()


def _wake() -> None:
    with _arrival:
        _arrival.notify_all()


def _owed_within(node, child: str, upto: int, seconds: float) -> bool:
    """Whether something is owed to ``child`` now or becomes owed within ``seconds``: looked
    at again as soon as this process stores an event (log.on_stored), and every
    LOOK_EVERY seconds for what another process (the CLI) wrote."""
    if not _listening:  # once per process, as the first child waits
        _listening.append(log.on_stored(_wake))
    deadline, position = time.monotonic() + seconds, 0
    while True:
        owed, position = outbox.owes(node, child, upto, position)
        left = deadline - time.monotonic()
        if owed or left <= 0:
            return owed
        with _arrival:
            _arrival.wait(min(LOOK_EVERY, left))


@bp.post("/enroll")
def enroll():
    """A child's enrollment request, authenticated by its one-time code (node.enroll)."""
    refused = _too_many(_node())
    if refused is not None:
        return refused, 429
    if (request.content_length or 0) > 64 * 1024:
        return jsonify({"error": {"code": "too_large", "message": "too large",
                                  "params": {}}}), 413
    payload = request.get_json(silent=True)
    try:  # throttled per client address and for all (node.enroll.accept_online)
        answer = enrollment.accept_online(_node(), payload, request.remote_addr)
    except enrollment.EnrollThrottled as e:
        response = jsonify(e.as_dict())
        response.headers["Retry-After"] = str(e.retry_after)
        return response, 429
    except NodeError as e:  # recorded in refusals by accept_online
        return jsonify(e.as_dict()), e.http_status
    return jsonify(answer)


def node_at(base_url: str, timeout=(5, 10)):
    """The node id a node's /healthz answers with (not authenticated: a first check)."""
    answer = requests.get(base_url.rstrip("/") + "/healthz", timeout=timeout).json()
    return answer.get("node") if isinstance(answer, dict) else None


def post_enrollment(base_url: str, payload: dict, timeout=(5, 30)) -> dict:
    """The child's side of online enrollment; returns the parent's answer."""
    response = requests.post(base_url.rstrip("/") + "/sync/enroll", json=payload,
                             timeout=timeout)
    retry = response.headers.get("Retry-After", "")
    if response.status_code == 429 and retry.isascii() and retry.isdigit():
        raise enrollment.EnrollThrottled(int(retry))  # one translated line: try again in N minutes
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code != 200 or not isinstance(data, dict):
        message = (data or {}).get("error", {}).get("message") if isinstance(
            data, dict) else f"HTTP {response.status_code}"
        raise RemoteRefused(N_("the parent refused: %(message)s"), message=message)
    return data


def join(node, url: str, code: str, expected_parent: str | None = None) -> dict:
    """Enroll over HTTP with the parent at ``url``: request, check, install; returns what
    ``enroll.install`` does.

    ``expected_parent`` (from a QR text) is checked against the parent's /healthz
    before the code is sent, so a wrong text does not use up the code, and again,
    authenticated, against the certificate's issuer before anything is installed.
    """
    try:
        if expected_parent:  # before the code is sent: a wrong text leaves the code unused
            enrollment.check_parent(expected_parent, node_at(url), url)
        answer = post_enrollment(url, enrollment.make_request(node, code))
    except (OSError, ValueError):
        raise NodeError(N_("cannot reach the parent at %(url)s to enroll; nothing was changed, "
                           "try again when it answers"), url=url) from None
    enrollment.check_parent(expected_parent, enrollment.issuer_of(answer), url)
    with store.write(node.db):
        result = enrollment.install(node, answer, code)
        outbox.resume(node, result["parent"], result["resume_link"])
    return result


def parent_refusal(body: bytes, status: int) -> RemoteRefused:
    """The parent's reason for refusing, as one line in this node's language: its message
    id and parameters when it sends them (the same siji has the same catalogue), else
    its English message, else the HTTP status."""
    try:
        error = json.loads(body)["error"]
        message = str(error["message"])
    except (ValueError, KeyError, TypeError):
        return RemoteRefused(N_("the parent refused: %(message)s"), message=f"HTTP {status}")
    msgid, params = error.get("msgid"), error.get("params")
    if isinstance(msgid, str) and isinstance(params, dict) and all(
            isinstance(v, str) for v in params.values()):
        try:
            refusal = RemoteRefused(msgid, **params)
        except (KeyError, ValueError, TypeError):  # a message id this version cannot fill
            refusal = None
        if refusal is not None:
            refusal.code = str(error.get("code", refusal.code))
            return refusal
    return RemoteRefused(N_("the parent refused: %(message)s"), message=message)


class HttpTransport:
    """The child's side: POST the bytes, map the parent's answers to what session expects.

    ``timeout``, if given, stands for the SYNC_TIMEOUT setting (seconds beyond what
    the link needs for the bytes in flight)."""

    def __init__(self, base_url: str, timeout: float | None = None,
                 http: requests.Session | None = None, clock=time.monotonic):
        self.base = base_url.rstrip("/")
        self.patience, self.clock = timeout, clock
        self.http = http or requests.Session()

    def _post(self, path: str, data: bytes, headers: dict, pace: pacing.Pace,
              into: parts.Incoming | None = None) -> tuple[int, bytes, dict]:
        """(status, body, heads) of one exchange. What it shows of the link goes into
        ``pace``; an answer that carries part of a bundle is read into ``into``, which
        keeps what arrived if the connection dies."""
        if self.patience is not None:
            pace.patience = self.patience
        seconds = pace.timeout(len(data))
        started = self.clock()
        try:  # (the connect timeout is also what urllib3 gives the sending of the body)
            response = self.http.post(self.base + path, data=data, timeout=(seconds, seconds),
                                      headers={**HEADERS, **headers}, stream=True)
        except OSError as e:
            if _unreachable(e):  # no connection: nothing to learn about the link's cuts
                raise session.Unreachable(str(e)) from None
            pace.cut(len(data) // 2)  # (how much got through is not known: half, on average)
            raise
        with response:
            if response.status_code == 413:
                raise session.TooLarge(N_("the parent refused the bundle as too large"))
            if response.status_code == 429:
                raise Busy(_seconds(response.headers.get("Retry-After", "")))
            arrived = into.received if into is not None else 0
            try:
                if into is not None and response.status_code == 200 and \
                        "Siji-Part" in response.headers:
                    body = _read_part(response, into)
                else:
                    body = response.raw.read(MAX_BODY + 1, decode_content=True)
            except (urllib3.exceptions.HTTPError, OSError) as e:
                # the link dropped inside the answer: a network failure like any other
                pace.cut(len(data) + (into.received - arrived if into is not None else 0))
                raise requests.ConnectionError(str(e)) from None
            if len(body) > MAX_BODY:
                raise RemoteRefused(N_("the parent's answer is too large"))
            pace.carried(len(data) + len(body) + pacing.HEADS, self.clock() - started)
            if response.status_code not in (200, 202, 204, 409):
                raise parent_refusal(body, response.status_code)
            return response.status_code, body, response.headers

    def push(self, out: parts.Outgoing, pace: pacing.Pace) -> bytes:
        """Send ``out`` whole, or, on a link that cuts (pace.piece smaller than what is
        left), a piece at a time from what the parent holds; returns its acknowledgement."""
        stuck = 0
        while True:
            size = min(pace.piece(), out.size - out.held)
            if out.held == 0 and size == out.size:
                status, body, heads = self._post("/sync/push", out.data, {}, pace)
            else:
                status, body, heads = self._post(
                    "/sync/push", out.data[out.held:out.held + size],
                    {"Siji-Piece": out.piece(out.held).text()}, pace)
            if status == 200:
                return body  # (out.held moves when the session has checked the ack)
            held = heads.get("Siji-Held", "")
            if status == 204 or not (held.isascii() and held.isdigit()) or int(
                    held) > out.size:
                raise RemoteRefused(N_("the parent refused: %(message)s"),
                                    message=f"HTTP {status} to a piece")
            stuck = stuck + 1 if int(held) <= out.held else 0
            if stuck > 3:  # it takes nothing of what is sent: stop rather than loop
                raise RemoteRefused(N_("the parent refused: %(message)s"),
                                    message=f"it keeps {held} bytes of the bundle")
            out.held = int(held)

    def wait(self, ack: bytes, seconds: int) -> bool:
        """Hold a long-poll at the parent (/sync/wait) for up to ``seconds``: True as soon
        as something is owed to this node, False if nothing was. A parent too old to know
        the long-poll answers 404: RemoteRefused, like any other refusal."""
        try:
            response = self.http.post(
                self.base + "/sync/wait", data=ack, headers={**HEADERS, "Siji-Wait": str(
                    seconds)}, timeout=(10, seconds + (self.patience or 60)))
        except OSError as e:
            if _unreachable(e):
                raise session.Unreachable(str(e)) from None
            raise
        with response:
            if response.status_code == 429:
                raise Busy(_seconds(response.headers.get("Retry-After", "")))
            if response.status_code not in (200, 204):
                raise parent_refusal(response.content, response.status_code)
            return response.status_code == 200

    def pull(self, ack: bytes, into: parts.Incoming, pace: pacing.Pace) -> bytes | None:
        headers = {"Siji-Batch": str(pace.batch)}
        resume = into.resume()
        if resume is not None:
            headers["Siji-Resume"] = resume.text()
        status, body, _ = self._post("/sync/pull", ack, headers, pace, into)
        if status == 204:
            return None
        if status != 200:
            raise RemoteRefused(N_("the parent refused: %(message)s"), message=f"HTTP {status}")
        return body


def _seconds(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _unreachable(error: OSError) -> bool:
    """Whether ``error`` (from requests) says no connection was made to the parent."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.ConnectionError) and isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.NameResolutionError)


def _read_part(response, into: parts.Incoming) -> bytes:
    """Read an answer carrying part of a bundle into ``into``; returns the bundle whole."""
    try:
        part = Piece.parse(response.headers["Siji-Part"])
        length = int(response.headers.get("Content-Length", ""))
    except (EnvelopeError, ValueError):
        raise RemoteRefused(N_("the parent refused: %(message)s"),
                            message="a malformed Siji-Part") from None
    if part.start + length != part.size or not into.follow(part):
        raise RemoteRefused(N_("the parent refused: %(message)s"),
                            message="a part that does not follow what arrived")
    while len(into.data) < into.size:  # (read1: what has arrived, kept before the next read)
        chunk = response.raw.read1(min(READ, into.size - len(into.data)))
        if not chunk:
            raise urllib3.exceptions.ProtocolError("the answer ended early")
        into.data += chunk
        into.received += len(chunk)
    whole = into.whole()
    if whole is None:  # damaged on the way: dropped, and asked for again
        raise urllib3.exceptions.ProtocolError("the bundle does not match its digest")
    into.data = bytearray()  # (taken: nothing is held any more)
    return whole
