"""What every `siji` command shares: the root group, its options, and small helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from node import core, i18n, log, users
from node.errors import N_, ValidationError

pass_ctx = click.make_pass_decorator(dict, ensure=True)


def _lang(ctx_obj) -> str:
    return ctx_obj.get("lang") or os.environ.get("SIJI_LANG") or "zh"


def _open(obj) -> core.Node:
    """Open the node for this command; it is closed when the command ends, however it ends."""
    node = core.open_node(obj["dir"])
    click.get_current_context().call_on_close(node.close)
    return node


def _actor(node, username: str) -> log.Actor:
    user = users.get_user(node, username)
    if user["disabled"]:
        raise ValidationError(N_("user %(name)s is disabled"), name=username, field="as")
    return log.Actor(user["username"], user["role"])


def _fields(pairs: tuple[str, ...], json_file) -> dict:
    """-f key=value pairs (and/or a JSON object file) as a dict of fields."""
    out = {}
    if json_file is not None:
        try:
            out = json.load(json_file)
        except ValueError as e:
            raise ValidationError(N_("%(field)s: not valid JSON (%(problem)s)"), field="--json",
                                  problem=str(e)) from None
        if not isinstance(out, dict):
            raise ValidationError(N_("%(field)s: expected a JSON object"), field="--json")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(N_("%(field)s: expected key=value, got %(value)s"),
                                  field="-f", value=pair)
        if value in ("true", "false"):
            value = value == "true"
        out[key] = value
    return out


def _say(obj, data: dict, msgid: str, **params) -> None:
    """The result of a command: ``data`` as JSON with --json, else ``msgid`` in the user's
    language, filled with ``params`` (default: ``data``)."""
    _emit(obj, data, lambda d: click.echo(i18n.translate(msgid, _lang(obj), **(params or d))))


def _emit(obj, data, human) -> None:
    if obj.get("json"):
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        human(data)


@click.group()
@click.option("--dir", "-d", "node_dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="SIJI_DIR", default=".", show_default=True,
              help="The node directory (or set SIJI_DIR).")
@click.option("--lang", type=click.Choice(["zh", "en"]), envvar="SIJI_LANG",
              help="Language of messages (default zh).")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.version_option(package_name="siji")
@click.pass_context
def cli(ctx, node_dir, lang, as_json):
    """siji 四级网: one node of the petition reporting network.

    Example: siji --dir ./dongshan case list --due overdue
    """
    ctx.ensure_object(dict)
    ctx.obj.update(dir=node_dir, lang=lang, json=as_json)


def _enrolled(obj, data: dict, msgid: str, fp: str) -> None:
    """An enrollment's result, with the pair fingerprint both admins compare by phone."""
    _emit(obj, {**data, "fingerprint": fp}, lambda _d: (
        click.echo(i18n.translate(msgid, _lang(obj), **data)),
        click.echo(i18n.translate(N_("Pair fingerprint %(fp)s: read it to the other admin by "
                                     "phone; it must be the same on both sides."), _lang(obj),
                                  fp=fp))))
