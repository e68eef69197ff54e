"""Delivering notices (node.notices) through Apprise: 企业微信 and 钉钉 robots, e-mail, SMS.

`siji serve` runs ``deliver`` every NOTIFY_CHECK seconds: each notice due is
sent through its channel; a failure is recorded, with the error, and tried
again later with capped exponential backoff (node.pacing), up to
notices.MAX_ATTEMPTS; a channel's last success and error show on the network
page. A channel's address holds its key: errors are kept with the address
taken out, and Apprise's own log is caught, never printed.
"""

from __future__ import annotations

import logging
import random
from urllib.parse import urlsplit

import apprise

from node import notices, pacing, store

log = logging.getLogger("siji.notices")


def _scrub(text: str, url: str) -> str:
    """``text`` without any part of ``url`` that could be a secret (key, token, password)."""
    parts = urlsplit(url)
    secrets = [p for p in (parts.username, parts.password, parts.netloc, parts.path.strip("/"),
                           parts.query, *parts.path.split("/")) if p and len(p) >= 4]
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, "…")
    return text


def send(url: str, title: str, body: str) -> str | None:
    """Send one message; None if it went, else what went wrong (without secrets)."""
    sender = apprise.Apprise()
    if not sender.add(url):
        return "the address is not one Apprise knows"
    with apprise.LogCapture(level=logging.WARNING) as captured:
        try:
            ok = sender.notify(title=title, body=body)
        except Exception as e:  # noqa: BLE001 - a plugin's failure is the channel's, not ours
            ok, captured_error = False, f"{type(e).__name__}: {e}"
        else:
            captured_error = None
        said = captured.getvalue().strip().splitlines()
    if ok:
        return None
    reason = captured_error or (said[-1] if said else "the channel refused or did not answer")
    return _scrub(reason, url)[:300]


def deliver(node, rand=random.random) -> dict:
    """Send every notice due now; returns how many went and how many failed."""
    urls = {c["name"]: c["url"] for c in notices.channels(node)}
    sent = failed = 0
    for notice in notices.due_notices(node):
        url = urls.get(notice["channel"])
        error = "the channel was removed" if url is None else send(url, notice["title"],
                                                                  notice["body"])
        with store.write(node.db):
            notices.record(node, notice, error, pacing.backoff(notice["attempts"], rand()))
        if error is None:
            sent += 1
        else:
            failed += 1
            log.warning("notice %s through %s failed (try %s): %s", notice["id"],
                        notice["channel"], notice["attempts"] + 1, error)
    return {"sent": sent, "failed": failed}


def send_test(node, name: str) -> str | None:
    """'Send a test' from the page or the CLI: at once, through one channel; the error, or
    None. Recorded like any notice's try."""
    test = notices.test_notice(node, name)
    error = send(test["channel"]["url"], test["title"], test["body"])
    with store.write(node.db):
        notices.record_test(node, name, error)
    return error

