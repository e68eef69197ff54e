"""The phone keeps working offline: drafts, their upload, the service worker, the manifest.

With JavaScript on, a service worker (``static/sw.js``, served from ``/sw.js``
so its scope is the whole site) keeps the register and warning forms and the
drafts page on the phone. What a liaison saves while the node cannot be
reached is kept in the browser (IndexedDB) as a draft with a key of its own
(``static/drafts-store.js``), listed on ``/drafts`` as 待上传, and sent by
``static/offline.js`` to ``/drafts/upload/<kind>`` once the node answers:
the same flat fields the HTML form posts, so ``forms`` reads both, and the
key makes a repeat answer the first result (``node.drafts``). Without
JavaScript the forms post as they always did, with the key as a hidden field
so a double submit registers once.

The upload and session answers are JSON, and so are their errors (the API's
shape: the page script asks for JSON), so the script can tell a refusal,
which stays on the draft, from a lost login or a link that is down, which
leave the draft waiting.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request, url_for
from flask_wtf.csrf import generate_csrf

from node import cases, i18n
from node.errors import N_, NodeError, NotFound, ValidationError
from node.web import forms, ops
from node.web.auth import needs, node

bp = Blueprint("drafts", __name__)
THEME, BACKGROUND = "#8c1d18", "#f6f6f4"  # siji.css: the top bar, the page
ICONS = (("icon-192.png", "192x192", "any"), ("icon-512.png", "512x512", "any"),
         ("icon-maskable-512.png", "512x512", "maskable"))
KINDS = {"case": "liaison.register", "warning": "liaison.new_warning"}  # kind -> its form

# what the page script shows, in the user's language (it cannot call gettext)
TEXTS = {
    "count": N_("Waiting to upload %(n)s"),
    "case": N_("Register a case"),
    "warning": N_("Raise a warning"),
    "saved": N_("saved %(when)s"),
    "waiting": N_("waiting to upload"),
    "refused": N_("refused: %(reason)s"),
    "edit": N_("Edit"),
    "discard": N_("Discard"),
    "confirm_discard": N_("Discard this draft? It was not sent and cannot be recovered."),
    "uploaded": N_("Uploaded:"),
    "login": N_("Log in again to send the drafts kept on this phone"),
    "others": N_("%(n)s drafts of other accounts are kept on this phone; they are sent "
                 "when that account logs in here."),
    "saved_here": N_("Saved on this phone. It is sent by itself once the node can be "
                     "reached."),
    "not_kept": N_("This page is not kept on the phone for use without a connection. "
                   "Your drafts are below."),
    "offline": N_("No connection: what you save now is kept on this phone and sent later."),
    "untitled": N_("(no summary)"),
}


class NumbersInText(NodeError):
    """A draft's text holds ID or phone numbers, and the liaison has not said where they go."""

    code = "numbers_in_text"
    http_status = 422


@bp.app_template_global()
def new_draft_key() -> str:
    """A fresh key for a form as the server renders it (the page script makes its own)."""
    return str(uuid.uuid4())


@bp.app_template_global()
def offline_config() -> dict | None:
    """What the page script needs, rendered into a JSON block; None: no drafts for this user."""
    user = g.get("user")
    if user is None or user["role"] not in cases.WORKERS:
        return None
    return {
        "user": user["username"], "node": node().id,
        "worker": url_for("drafts.service_worker"), "drafts": url_for("drafts.page"),
        "session": url_for("drafts.session"), "upload": url_for("drafts.upload", kind="_"),
        "login": url_for("auth.login", next=url_for("drafts.page")),
        "forms": {url_for(endpoint): kind for kind, endpoint in KINDS.items()},
        "t": {name: i18n.translate(msgid, g.lang) for name, msgid in TEXTS.items()},
    }


@bp.get("/drafts")
@needs(*cases.WORKERS)
def page():
    return render_template("drafts.html")


@bp.get("/drafts/session")
@needs(*cases.WORKERS)
def session():
    """Who is logged in here and a fresh CSRF token: the script sends only their drafts."""
    return jsonify({"username": g.user["username"], "node": node().id,
                    "csrf_token": generate_csrf()})


@bp.post("/drafts/upload/<kind>")
@needs(*cases.WORKERS)
def upload(kind):
    """One draft, as the form would post it plus its key: {id, url}, or an error."""
    if kind not in KINDS:
        raise NotFound(N_("no such page"))
    key = request.form.get("draft_key")
    if not key:
        raise ValidationError(N_("%(field)s is required"), field="draft_key")
    try:
        return jsonify(_send(kind, request.form, key))
    except ValidationError as e:  # every field's error at once, as the form shows them
        text = ("；" if g.lang == "zh" else "; ").join(i18n.message(one, g.lang) for one in e.all)
        return jsonify(e.as_dict(text)), e.http_status


def _send(kind: str, form, key: str) -> dict:
    if kind == "warning":
        done = ops.raise_warning(node(), g.user, forms.warning_values(form), key)
        return {"id": done["id"], "url": url_for("office.warning_page", warning_id=done["id"])}
    fields = forms.register_values(form)
    choice = form.get("numbers")
    if choice == "move":
        fields = forms.move_numbers(fields)
    elif choice != "keep" and forms.numbers_in_text(fields):  # as the form asks online
        raise NumbersInText(N_("the text holds ID or phone numbers that belong in the "
                               "petitioner's own fields: edit the draft and choose where "
                               "they go"))
    done = ops.register_case(node(), g.user, fields, key)
    return {"id": done["id"], "url": url_for("office.case_page", case_id=done["id"])}


@bp.get("/manifest.webmanifest")
def manifest():
    """The web app manifest: the node's name and icons, for "add to home screen"."""
    static = current_app.jinja_env.globals["static"]
    name = current_app.config["NODE_NAME"] or current_app.config["NODE_ID"]
    body = {
        "name": f"{name} · {i18n.translate(N_('siji petition network'), g.lang)}",
        "short_name": name, "lang": "zh-CN" if g.lang == "zh" else "en",
        "start_url": url_for("auth.home"), "scope": "/", "display": "standalone",
        "theme_color": THEME, "background_color": BACKGROUND,
        "icons": [{"src": static(f), "sizes": sizes, "type": "image/png", "purpose": purpose}
                  for f, sizes, purpose in ICONS],
    }
    return Response(json.dumps(body, ensure_ascii=False), mimetype="application/manifest+json",
                    headers={"Cache-Control": "no-cache"})


@bp.get("/sw.js")
def service_worker():
    """static/sw.js after one line of settings: the pages to keep, the static files by
    their versioned URLs. A new stylesheet or script changes these bytes, so browsers
    install the new worker, which keeps the new files and drops the old ones."""
    static, folder = current_app.jinja_env.globals["static"], Path(current_app.static_folder)
    config = {
        "pages": [url_for(endpoint) for endpoint in KINDS.values()] + [url_for("drafts.page")],
        "forms": {url_for(endpoint): kind for kind, endpoint in KINDS.items()},
        "assets": [static(f.name) for f in sorted(folder.iterdir())
                   if f.is_file() and f.name != "sw.js"],
        "store": static("drafts-store.js"), "fallback": url_for("drafts.page"),
        "signs": [url_for("auth.login"), url_for("auth.logout")],
    }
    code = (folder / "sw.js").read_text("utf-8")
    config["version"] = hashlib.sha256(
        (json.dumps(config, sort_keys=True) + code).encode()).hexdigest()[:12]
    return Response(f"self.SIJI = {json.dumps(config)};\n{code}", mimetype="text/javascript",
                    headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})
