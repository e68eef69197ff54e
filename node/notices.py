"""Notices: telling people at once, through what offices already use (企业微信 and 钉钉 group
robots, e-mail, an SMS gateway), of what needs them.

A notice is made when something that needs this node's people arrives here
(a warning raised below, an alarm, a case escalated to this unit, a referral,
a 督办单, an urge) or falls due (a deadline in two working days, a deadline
passed), and queued for every channel whose roles it concerns. Delivery
(node.sync.delivery, through Apprise) retries with backoff and records each
try; a channel that keeps failing shows on the network page.

Who is told of what is the table ``KINDS`` (docs/notifications.md prints it).
A notice carries no personal data: case and warning numbers, categories,
units, risk levels and dates. A channel is configured in siji.toml
(``NOTIFY``) or on the admin's network page; its address, which holds the
robot's key or the mail password, is a secret: it is never logged and shown
only masked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta

from node import deadlines, i18n, screening, trust
from node.cases.vocab import CATEGORIES, OPEN
from node.clock import iso
from node.errors import N_, AlreadyExists, ConfigError, NotFound, ValidationError
from node.settings import Setting, at_least_one, declare
from node.warnings.risk import DESTINATIONS, LEVELS


@dataclass(frozen=True)
class Kind:
    label: tuple[str, str]     # (zh, en)
    roles: tuple[str, ...]     # whose work it is
    when: str                  # for docs/notifications.md


KINDS = {
    "warning": Kind(("预警", "Early warning"), ("handler", "leader", "liaison"),
                    "a warning raised below reaches this node (each level on its way up)"),
    "alarm": Kind(("超时未签收告警", "Alarm: not acknowledged in time"), ("handler", "leader"),
                  "a unit directly below did not acknowledge a warning in time"),
    "escalation": Kind(("上报", "Case escalated here"), ("handler", "leader"),
                       "a case is escalated to this unit"),
    "referral": Kind(("交办", "Case referred here"), ("liaison", "handler", "leader"),
                     "a case is referred down to this unit"),
    "order": Kind(("督办单", "Supervision order"), ("liaison", "handler", "leader"),
                  "a supervision order is addressed to this unit"),
    "urge": Kind(("催办", "Urge"), ("liaison", "handler", "leader"),
                 "a unit above urges a case this unit holds"),
    "due_soon": Kind(("即将到期", "Deadline in two working days"),
                     ("liaison", "handler", "leader"),
                     "a case held here is due in two working days (checked each morning)"),
    "overdue": Kind(("已超期", "Deadline passed"), ("liaison", "handler", "leader"),
                    "a case held here passed its deadline (checked each morning)"),
}
ROLES = ("liaison", "handler", "leader", "admin")
_NAME = re.compile(r"[\w\u4e00-\u9fff][\w\u4e00-\u9fff .-]{0,39}")
i18n.add_labels("notice_kind", {k: v.label for k, v in KINDS.items()})


def check_channel(channel) -> dict:
    """A channel's normal form: name, url (an Apprise URL), roles, kinds; or ConfigError."""
    if not isinstance(channel, dict) or not {"name", "url", "roles"} <= set(channel) <= {
            "name", "url", "roles", "kinds"}:
        raise ConfigError(N_("setting NOTIFY: each channel needs name, url and roles (kinds "
                             "optional)"))
    name, url = channel["name"], channel["url"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(N_("setting NOTIFY: %(value)r is not a channel name"), value=name)
    if not isinstance(url, str) or "://" not in url or len(url) > 1000:
        raise ConfigError(N_("setting NOTIFY: channel %(name)s: the url must be an address "
                             "such as wecombot://KEY, dingtalk://TOKEN/ or "
                             "mailtos://user:password@host"), name=name)
    roles, kinds = channel["roles"], channel.get("kinds", list(KINDS))
    if not isinstance(roles, list) or not roles or not set(roles) <= set(ROLES):
        raise ConfigError(N_("setting NOTIFY: channel %(name)s: roles must be some of "
                             "%(allowed)s"), name=name, allowed=", ".join(ROLES))
    if not isinstance(kinds, list) or not set(kinds) <= set(KINDS):
        raise ConfigError(N_("setting NOTIFY: channel %(name)s: kinds must be some of "
                             "%(allowed)s"), name=name, allowed=", ".join(KINDS))
    return {"name": name, "url": url, "roles": sorted(set(roles)),
            "kinds": [k for k in KINDS if k in kinds]}


def _validate_setting(value: list) -> list:
    checked = [check_channel(c) for c in value]
    names = [c["name"] for c in checked]
    if len(names) != len(set(names)):
        raise ConfigError(N_("setting NOTIFY: two channels are named alike"))
    return checked


declare(
    Setting("NOTIFY", [], "Where people are told at once of what needs them "
            "(docs/notifications.md): a list of {name = \"...\", url = \"...\", roles = [...], "
            "kinds = [...]} channels, each an Apprise address: wecombot://KEY (企业微信 group "
            "robot), dingtalk://TOKEN/ (钉钉 robot), mailtos://user:password@host?to=... "
            "(e-mail), smseagle://... or json://host/path (an SMS gateway). More channels can "
            "be added on the network page. Keep this file private: the addresses hold keys.",
            list, _validate_setting),
    Setting("NOTIFY_CHECK", 20, "Seconds between deliveries of queued notices (`siji serve`); "
            "a failed one is tried again later, with backoff.", int,
            at_least_one("NOTIFY_CHECK")),
    Setting("LIVE_POLL", 20, "Seconds between an open page's checks for what awaits its user "
            "(the count in the title and menu, new urgent items shown at once); pages "
            "without JavaScript show the count as of loading and a refresh link.", int,
            at_least_one("LIVE_POLL")),
)


# -- channels ------------------------------------------------------------------------

def masked_url(url: str) -> str:
    """What people see of a channel's address: its kind and host, never its key."""
    scheme, _, rest = url.partition("://")
    host = rest.split("?", 1)[0].split("/", 1)[0].rsplit("@", 1)[-1]
    shown = host if scheme in ("mailto", "mailtos", "json", "jsons", "form", "forms", "xml",
                               "xmls", "smseagle", "smseagles") else ""
    return f"{scheme}://{shown}…" if shown else f"{scheme}://…"


def channels(node) -> list[dict]:
    """Every channel: those of siji.toml, then those added on the page, with their state."""
    state = {r[0]: r[1:] for r in node.db.conn.execute(
        "SELECT name, last_ok, last_error, failures FROM notify_state")}
    out = [{**c, "source": "config"} for c in node.settings["NOTIFY"]]
    for name, url, roles, kinds in node.db.conn.execute(
            "SELECT name, url, roles, kinds FROM notify_channels ORDER BY name"):
        out.append({"name": name, "url": url, "roles": json.loads(roles),
                    "kinds": json.loads(kinds), "source": "page"})
    for c in out:
        ok, error, failures = state.get(c["name"], (None, None, 0))
        c.update(last_ok=ok, last_error=error, failures=failures, shown=masked_url(c["url"]))
    return out


def add_channel(node, fields: dict) -> dict:
    """Add a channel from the page or the CLI (the caller owns the transaction)."""
    try:
        channel = check_channel({k: fields[k] for k in ("name", "url", "roles", "kinds")
                                 if k in fields})
    except ConfigError as e:
        raise ValidationError(N_("%(field)s: %(problem)s"), field="channel",
                              problem=e.english()) from None
    if any(c["name"] == channel["name"] for c in channels(node)):
        raise AlreadyExists(N_("a channel named %(name)s exists already"), name=channel["name"])
    node.db.conn.execute("INSERT INTO notify_channels (name, url, roles, kinds, added_at) "
                         "VALUES (?, ?, ?, ?, ?)", (channel["name"], channel["url"],
                                                    json.dumps(channel["roles"]),
                                                    json.dumps(channel["kinds"]), node.now()))
    return channel


def remove_channel(node, name: str) -> None:
    if node.db.conn.execute("DELETE FROM notify_channels WHERE name = ?",
                            (name,)).rowcount == 0:
        raise NotFound(N_("no channel %(name)s added here (one of siji.toml is removed there)"),
                       name=name)
    node.db.conn.execute("DELETE FROM notices WHERE channel = ? AND sent_at IS NULL", (name,))


# -- what to tell --------------------------------------------------------------------

def _text(lang: str, kind: str, subject: str, what: str) -> tuple[str, str]:
    title = i18n.label("notice_kind", kind, lang)
    return title, f"{title} {subject}：{what}" if lang == "zh" else f"{title} {subject}: {what}"


def queue(node, kind: str, key: str, subject: str, what: str) -> int:
    """Queue one notice for every channel concerned; returns how many. ``key`` makes it
    once only (an event id, or a deadline and its day). The caller owns the transaction."""
    title, body = _text(node.settings["LANGUAGE"], kind, subject, what)
    body = f"【{node.settings['NODE_NAME']}】{body}"
    n = 0
    for c in channels(node):
        if kind in c["kinds"] and set(c["roles"]) & set(KINDS[kind].roles):
            n += node.db.conn.execute(
                "INSERT OR IGNORE INTO notices (channel, kind, key, subject, title, body, "
                "created_at, next_try) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (c["name"], kind, key, subject, title, body, node.now(), node.now())).rowcount
    return n


def _names(node) -> dict[str, str]:
    return trust.names(node.db)


def _label(vocabulary: dict, code, lang: str) -> str:
    pair = vocabulary.get(code)
    return pair[0 if lang == "zh" else 1] if pair else str(code)


def for_events(node, evs) -> int:
    """Queue the notices the arrival of these events (from a neighbour) calls for here."""
    if not any(e.type.startswith(("case.", "warning.")) for e in evs):
        return 0
    lang, names, n = node.settings["LANGUAGE"], None, 0
    for ev in evs:
        kind, what = None, None
        if ev.type == "warning.raised" and ev.origin != node.id:
            w = node.db.conn.execute("SELECT subject, place, expected_size, destination, "
                                     "risk_level FROM warnings WHERE id = ?",
                                     (ev.subject,)).fetchone()
            if w:
                names = names or _names(node)
                kind = "warning"
                what = (f"{_label(LEVELS, w[4], lang)} · {screening.mask(w[0])} · "
                        f"{screening.mask(w[1])} · {w[2]} · "
                        f"{_label(DESTINATIONS, w[3], lang)} · {names.get(ev.origin, ev.origin)}")
        elif ev.type == "warning.alarmed" and ev.origin != node.id:
            names = names or _names(node)
            kind, what = "alarm", names.get(ev.origin, ev.origin)
        elif ev.type in ("case.escalated", "case.referred") and ev.body.get("to") == node.id:
            kind = "escalation" if ev.type == "case.escalated" else "referral"
            what = _case_line(node, ev.subject, lang, names := names or _names(node),
                              ev.origin)
        elif ev.type == "case.supervision_issued":
            case = _held(node, ev.subject)
            if case:
                names = names or _names(node)
                kind = "order"
                what = (f"{ev.body.get('order_id')} · {names.get(ev.origin, ev.origin)} · "
                        f"{ev.body.get('deadline')}")
        elif ev.type == "case.urged" and _held(node, ev.subject):
            names = names or _names(node)
            kind, what = "urge", _case_line(node, ev.subject, lang, names, ev.origin)
        if kind:
            n += queue(node, kind, ev.id, ev.subject, what)
    return n


def _held(node, case_id: str):
    return node.db.conn.execute("SELECT 1 FROM cases WHERE id = ? AND holder = ?",
                                (case_id, node.id)).fetchone()


def _case_line(node, case_id: str, lang: str, names: dict, sender: str) -> str:
    row = node.db.conn.execute("SELECT category, due_on FROM cases WHERE id = ?",
                               (case_id,)).fetchone()
    category, due = row if row else (None, None)
    return (f"{_label(CATEGORIES, category, lang)} · {names.get(sender, sender)}"
            + (f" · {due}" if due else ""))


def for_deadlines(node) -> int:
    """Queue, once a day, a notice for each case held here that is due in two working days
    or past due; returns how many. The caller owns the transaction."""
    today = node.today()
    soon = deadlines.due_working_days(node.calendar, today, 2)
    lang, n = node.settings["LANGUAGE"], 0
    marks = ",".join("?" * len(OPEN))
    for case_id, category, due in node.db.conn.execute(
            f"SELECT id, category, due_on FROM cases WHERE holder = ? AND state IN ({marks}) "
            "AND due_on IS NOT NULL AND due_on <= ?",
            (node.id, *OPEN, soon.isoformat())).fetchall():
        kind = "overdue" if date.fromisoformat(due) < today else "due_soon"
        what = f"{_label(CATEGORIES, category, lang)} · {due}"
        n += queue(node, kind, f"{kind}:{case_id}:{today.isoformat()}", case_id, what)
    return n


# -- delivery state --------------------------------------------------------------------

MAX_ATTEMPTS = 12  # tries before a notice is given up (its error stays for the admin)


def due_notices(node, limit: int = 50) -> list[dict]:
    rows = node.db.conn.execute(
        "SELECT id, channel, title, body, attempts FROM notices WHERE sent_at IS NULL AND "
        "given_up = 0 AND next_try <= ? ORDER BY id LIMIT ?", (node.now(), limit))
    return [dict(zip(("id", "channel", "title", "body", "attempts"), r, strict=True))
            for r in rows]


def record(node, notice: dict, error: str | None, retry_in: float) -> None:
    """The outcome of one try (the caller owns the transaction): sent, or the error and the
    next try; given up after MAX_ATTEMPTS, which flags the channel for the admin."""
    if error is None:
        node.db.conn.execute("UPDATE notices SET sent_at = ?, attempts = attempts + 1, "
                             "error = NULL WHERE id = ?", (node.now(), notice["id"]))
    else:
        attempts = notice["attempts"] + 1
        later = iso(node.clock() + timedelta(seconds=retry_in))
        node.db.conn.execute("UPDATE notices SET attempts = ?, error = ?, next_try = ?, "
                             "given_up = ? WHERE id = ?", (attempts, error[:300], later,
                                                           int(attempts >= MAX_ATTEMPTS),
                                                           notice["id"]))
        if attempts >= MAX_ATTEMPTS:
            trust.set_flag(node.db, node.id, "notify", f"channel {notice['channel']} failed "
                           f"{attempts} times: {error[:200]}")
    record_test(node, notice["channel"], error)


def record_test(node, name: str, error: str | None) -> None:
    """A channel's last success, or its last error and how many in a row, for the admin."""
    if error is None:
        node.db.conn.execute(
            "INSERT INTO notify_state (name, last_ok, failures) VALUES (?, ?, 0) ON CONFLICT"
            "(name) DO UPDATE SET last_ok = excluded.last_ok, failures = 0", (name, node.now()))
        return
    node.db.conn.execute(
        "INSERT INTO notify_state (name, last_error, last_error_at, failures) VALUES "
        "(?, ?, ?, 1) ON CONFLICT(name) DO UPDATE SET last_error = excluded.last_error, "
        "last_error_at = excluded.last_error_at, failures = failures + 1",
        (name, error[:300], node.now()))


def recent(node, limit: int = 30) -> list[dict]:
    rows = node.db.conn.execute(
        "SELECT channel, kind, subject, created_at, sent_at, attempts, error, given_up FROM "
        "notices ORDER BY id DESC LIMIT ?", (limit,))
    return [dict(zip(("channel", "kind", "subject", "created_at", "sent_at", "attempts",
                      "error", "given_up"), r, strict=True)) for r in rows]


def test_notice(node, name: str) -> dict:
    """The notice a 'send a test' sends through channel ``name``."""
    channel = next((c for c in channels(node) if c["name"] == name), None)
    if channel is None:
        raise NotFound(N_("no channel %(name)s"), name=name)
    lang = node.settings["LANGUAGE"]
    title = "四级网测试消息" if lang == "zh" else "siji test message"
    body = (f"【{node.settings['NODE_NAME']}】这是一条测试消息：此渠道可以收到四级网的通知。"
            if lang == "zh" else
            f"[{node.settings['NODE_NAME']}] A test: this channel receives siji's notices.")
    return {"channel": channel, "title": title, "body": body}

