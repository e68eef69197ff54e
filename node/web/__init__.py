"""The node's web app: a plain case list until the role pages land (issue 6).

The app loads settings and keys once; each request gets its own SQLite
connection (waitress serves from threads). Errors become one JSON shape for
``/api/`` and a readable page for people; no stack trace reaches a user.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, g, jsonify, render_template, request

from node import cases, core, i18n, settings, store, trust
from node.errors import NodeError, NotFound


def make_app(node_dir=None, config=None, clock=None) -> Flask:
    node_dir = Path(node_dir or os.environ.get("SIJI_DIR", "."))
    values = settings.load(node_dir, config)
    key_dir = node_dir / values["KEY_DIR"]
    signer = trust.load_signing_key(key_dir)
    enc_key = trust.load_encryption_key(key_dir)
    store.open_db(node_dir / values["DATABASE"]).conn.close()  # migrate once, up front
    app = Flask(__name__)
    app.config.from_mapping(values)
    app.config["NODE_DIR"] = node_dir
    clock = clock or core.system_clock
    calendar_holder = {}

    def node() -> core.Node:
        if "node" not in g:
            db = store.open_db(node_dir / values["DATABASE"])
            g.node = core.Node(node_dir, values, db, signer, clock)
            g.node.enc_key = enc_key  # loaded once, not per request
            if "calendar" in calendar_holder:
                g.node.calendar = calendar_holder["calendar"]
            else:
                calendar_holder["calendar"] = g.node.calendar
        return g.node

    app.extensions["siji.node"] = node
    from node.sync.http import bp as sync_bp
    app.register_blueprint(sync_bp)

    @app.teardown_appcontext
    def close(_exc):
        n = g.pop("node", None)
        if n is not None:
            n.close()

    def lang() -> str:
        chosen = request.args.get("lang") or request.cookies.get("lang")
        return chosen if chosen in settings.LANGUAGES else values["LANGUAGE"]

    @app.errorhandler(NodeError)
    def node_error(e: NodeError):
        text = i18n.message(e, lang())
        if request.path.startswith("/api/"):
            return jsonify(e.as_dict(text)), e.http_status
        return render_template("error.html", message=text, lang=lang()), e.http_status

    @app.errorhandler(404)
    def not_found(_e):
        return node_error(NotFound("no such page"))

    @app.errorhandler(500)
    def server_error(_e):
        err = NodeError("internal error; the operator can find details in the node's log")
        err.code, err.http_status = "internal_error", 500
        return node_error(err)

    @app.get("/")
    def index():
        rows = cases.listing(node())
        return render_template("index.html", rows=rows, node=values, lang=lang(),
                               label=i18n.label, categories=cases.CATEGORIES)

    @app.get("/api/cases")
    def api_cases():
        rows = cases.listing(node(), state=request.args.get("state"),
                             due=request.args.get("due"))
        keys = ("id", "state", "category", "holder", "registered_on", "due_on", "due_kind",
                "days_overdue")
        return jsonify({"cases": [{k: r[k] for k in keys} for r in rows]})

    @app.get("/healthz")
    def health():
        return jsonify({"node": values["NODE_ID"], "tier": values["TIER"], "ok": True})

    return app
