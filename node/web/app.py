"""The node's web app: role pages and a JSON API over the same domain functions.

The app loads settings and keys once; each server thread keeps one SQLite
connection across its requests (waitress serves from threads). Every page but the login page
needs a logged-in user of this node (``auth``); every record a page shows
passes the unit check of ``access``. Pages and the API both call ``ops``,
which calls the domain modules, so the rules live in one place. Errors
become one JSON shape for ``/api/`` and a readable page for people; no
stack trace reaches a user.

Blueprints: ``auth`` (login, logout), ``liaison`` (register, my cases, what
came down, sync now), ``office`` (inbox, case and warning pages, actions,
printable forms), ``city``, ``network`` and ``accounts`` (admin) and ``api``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask, g, jsonify, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from werkzeug.middleware.proxy_fix import ProxyFix

from node import cases, core, disclosure, i18n, settings, store, trust, warnings
from node.errors import N_, NodeError, NotFound
from node.sync.blobs import bp as blobs_bp
from node.sync.http import bp as sync_bp
from node.web import (
    accounts,
    api,
    api_office,
    attachments,
    auth,
    awaiting,
    city,
    dashboard,
    drafts,
    liaison,
    lookup,
    network,
    office,
    ops,
    reception,
    rounds,
    search,
)
from node.web.forms import LABELS, SELECTS

log = logging.getLogger("siji.web")
STATIC = Path(__file__).parent / "static"


def make_app(node_dir=None, config=None, clock=None) -> Flask:
    node_dir = Path(node_dir or os.environ.get("SIJI_DIR", "."))
    values = settings.load(node_dir, config)
    key_dir = node_dir / values["KEY_DIR"]
    signer = trust.load_signing_key(key_dir)
    enc_key = trust.load_encryption_key(key_dir)
    first = core.Node(node_dir, values, store.open_db(node_dir / values["DATABASE"]), signer,
                      clock or core.system_clock)  # migrate once, up front
    core.recount_deadlines(first)  # and count the deadlines again if the calendar changed
    first.close()
    app = Flask("node.web")
    app.config.from_mapping(values)
    app.config.update(
        NODE_DIR=node_dir,
        SECRET_KEY=values["SECRET_KEY"] or auth.session_key(key_dir),
        # one cookie per node: two nodes on one host (different ports) must not share it
        SESSION_COOKIE_NAME=f"siji-{values['NODE_ID']}",
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=values["HTTPS"],  # behind a TLS proxy: never over plain HTTP
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=values["SESSION_MINUTES"]),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session, which expires
        SEND_FILE_MAX_AGE_DEFAULT=365 * 24 * 3600,  # static URLs carry a content hash
    )
    clock = clock or core.system_clock
    calendar_holder = {}

    per_thread = threading.local()

    def node() -> core.Node:
        """This thread's node: one database connection per server thread, kept across
        requests, so SQLite's page cache stays warm (a connection per request read every
        page it needed from the file again, and made a bundle's apply twice as slow)."""
        if "node" not in g:
            n = getattr(per_thread, "node", None)
            if n is None:
                db = store.open_db(node_dir / values["DATABASE"])
                n = core.Node(node_dir, values, db, signer, clock)
                n.enc_key = enc_key  # loaded once, not per request
                if "calendar" in calendar_holder:
                    n.calendar = calendar_holder["calendar"]
                else:
                    calendar_holder["calendar"] = n.calendar
                per_thread.node = n
            g.node = n
        return g.node

    app.extensions["siji.node"] = node
    if values["HTTPS"]:  # the TLS proxy in front says the scheme was https (docs/deploy.md)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_for=1)

    @app.before_request
    def choose_language():  # before the CSRF check, whose refusal is a translated page
        chosen = request.args.get("lang") or request.cookies.get("lang")
        g.lang = chosen if chosen in settings.LANGUAGES else values["LANGUAGE"]

    csrf = CSRFProtect(app)
    app.register_blueprint(sync_bp)
    csrf.exempt(sync_bp)  # node-to-node: the bundle signatures authenticate, not cookies
    app.register_blueprint(blobs_bp)
    csrf.exempt(blobs_bp)  # node-to-node: each request is signed by the node making it

    for bp in (auth.bp, liaison.bp, office.bp, city.bp, dashboard.bp, network.bp, accounts.bp,
               api.bp, api_office.bp, rounds.bp, reception.bp, search.bp, lookup.bp,
               attachments.bp, drafts.bp):
        app.register_blueprint(bp)
    csrf.exempt(api.login)  # JSON only (checked there): a cross-site form cannot send it
    csrf.exempt(api_office.lookup)  # the same, for the public lookup

    @app.teardown_appcontext
    def release(_exc):
        n = g.pop("node", None)
        if n is not None and n.db.conn.in_transaction:  # never carry one into the next request
            n.db.conn.rollback()

    app.before_request(auth.load_user)

    @app.after_request
    def headers(response):
        if request.args.get("lang") in settings.LANGUAGES:
            response.set_cookie("lang", request.args["lang"], max_age=365 * 24 * 3600,
                                samesite="Lax", httponly=True)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.blueprint == sync_bp.name:  # answers to nodes, never pages: and each
            return response  # byte of their heads counts on a link that cuts (sync/http)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
            "style-src 'self'; script-src 'self'; connect-src 'self'; worker-src 'self'; "
            "manifest-src 'self'; form-action 'self'; frame-ancestors 'none'")
        if not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        if values["HTTPS"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    def error_response(e: NodeError):
        text = i18n.message(e, g.get("lang", values["LANGUAGE"]))
        if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
            return jsonify(e.as_dict(text)), e.http_status  # a script asking for JSON (drafts)
        return render_template("error.html", message=text), e.http_status

    app.register_error_handler(NodeError, error_response)

    @app.errorhandler(CSRFError)
    def csrf_refused(_e):
        err = NodeError(N_("the form has expired or did not come from this site; "
                           "open the page again and resend it"))
        err.code, err.http_status = "csrf_refused", 400
        return error_response(err)

    @app.errorhandler(404)
    def not_found(_e):
        return error_response(NotFound(N_("no such page")))

    @app.errorhandler(405)
    def not_allowed_method(_e):
        err = NodeError(N_("this address does not take that kind of request"))
        err.code, err.http_status = "method_not_allowed", 405
        return error_response(err)

    @app.errorhandler(413)
    def too_large(_e):
        err = NodeError(N_("what was sent is too large"))
        err.code, err.http_status = "too_large", 413
        return error_response(err)

    @app.errorhandler(500)
    def server_error(_e):
        err = NodeError(N_("internal error; the operator can find details in the node's log"))
        err.code, err.http_status = "internal_error", 500
        return error_response(err)

    @app.get("/healthz")
    def health():
        return jsonify({"node": values["NODE_ID"], "tier": values["TIER"], "ok": True})

    _jinja(app, values, node)
    return app


def _jinja(app: Flask, values: dict, node) -> None:
    """Template helpers: _(), labels, local times, versioned static URLs, the CSRF token."""
    hashes: dict[str, str] = {}

    def static(filename: str) -> str:
        if filename not in hashes:
            data = (STATIC / filename).read_bytes()
            hashes[filename] = hashlib.sha256(data).hexdigest()[:10]
        return url_for("static", filename=filename, v=hashes[filename])

    def translate(msgid: str, **params) -> str:
        return i18n.translate(msgid, g.lang, **params)

    def label(kind: str, code) -> str:
        return i18n.label(kind, code, g.lang)

    def vocab(vocabulary: dict, code) -> str:
        pair = vocabulary.get(code)
        return code if pair is None or code is None else pair[0 if g.lang == "zh" else 1]

    def local_time(ts: str | None) -> str:
        if not ts:
            return "—"
        try:
            moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            return ts
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(node().tz).strftime("%Y-%m-%d %H:%M")

    def lang_url(code: str) -> str:
        args = {k: v for k, v in request.args.items() if k != "lang"}
        return url_for(request.endpoint or "auth.home", **(request.view_args or {}), **args,
                       lang=code) if request.endpoint else "/?lang=" + code

    def show(name: str, value) -> str:
        """A field value from an event body as people read it."""
        if name in SELECTS and isinstance(value, str):
            return vocab(SELECTS[name], value)
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value)

    def card(case: dict) -> dict:
        if "names" not in g:
            g.names = ops.node_names(node())
        return ops.card(node(), case, g.names)

    def awaiting_now() -> dict | None:
        """What awaits the logged-in user (web/awaiting.py), once per request."""
        if g.get("user") is None:
            return None
        if "awaiting" not in g:
            g.awaiting = awaiting.awaiting(node(), g.user, g.lang)
        return g.awaiting

    def calendar_gaps() -> str:
        return "、".join(str(y) for y in cases.calendar_gaps(node()))

    app.jinja_env.filters["shown"] = disclosure.shown  # a withheld value as withheld
    app.jinja_env.globals.update(
        show=show, field_labels=LABELS, categories_all=cases.CATEGORIES,
        levels_all=warnings.LEVELS, decisions_all=cases.DECISIONS, ratings_all=cases.RATINGS,
        _=translate, label=label, vocab=vocab, static=static, csrf_token=generate_csrf,
        local_time=local_time, lang_url=lang_url, node_settings=values,
        calendar_gaps=calendar_gaps, card=card, awaiting_now=awaiting_now,
        describe_change=lambda change: cases.describe_change(change, g.lang),
        order_overdue=lambda order: cases.order_overdue(order, node().today().isoformat()),
        current_user=lambda: g.get("user"), session=session)
