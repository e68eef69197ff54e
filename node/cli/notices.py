"""`siji notify ...`: the channels people are told through, and a test through one."""

from __future__ import annotations

import click

from node import notices, store
from node.cli.common import _emit, _open, _say, cli, pass_ctx
from node.errors import N_, NodeError


@cli.group()
def notify():
    """Notices (通知): the channels people are told through at once (docs/notifications.md).

    Example: siji notify list
    """


@notify.command("list")
@pass_ctx
def notify_list(obj):
    """List the channels (addresses masked), with their last success and error.

    Example: siji notify list
    """
    node = _open(obj)
    rows = [{k: c[k] for k in ("name", "shown", "roles", "kinds", "source", "last_ok",
                               "last_error", "failures")} for c in notices.channels(node)]
    _emit(obj, rows, lambda rs: [click.echo("\t".join((
        r["name"], r["shown"], ",".join(r["roles"]), ",".join(r["kinds"]), r["source"],
        r["last_ok"] or "-", r["last_error"] or "-"))) for r in rs])


@notify.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice(notices.ROLES), help="Whose notices it gets (repeatable).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(list(notices.KINDS)),
              help="Which notices (repeatable; default: all).")
@pass_ctx
def notify_add(obj, name, url, roles, kinds):
    """Add a channel: an Apprise address (wecombot://KEY, dingtalk://TOKEN/, mailtos://...).

    Example: siji notify add 办公室群 wecombot://KEY --role handler --role leader
    """
    node = _open(obj)
    fields = {"name": name, "url": url, "roles": list(roles)}
    if kinds:
        fields["kinds"] = list(kinds)
    with store.write(node.db):
        channel = notices.add_channel(node, fields)
    _say(obj, {"name": channel["name"], "roles": channel["roles"], "kinds": channel["kinds"]},
         N_("Added the channel %(name)s."), name=channel["name"])


@notify.command("remove")
@click.argument("name")
@pass_ctx
def notify_remove(obj, name):
    """Remove a channel added here (one of siji.toml is removed there).

    Example: siji notify remove 办公室群
    """
    node = _open(obj)
    with store.write(node.db):
        notices.remove_channel(node, name)
    _say(obj, {"name": name, "removed": True}, N_("Removed the channel %(name)s."), name=name)


@notify.command("test")
@click.argument("name")
@pass_ctx
def notify_test(obj, name):
    """Send a test message through a channel now.

    Example: siji notify test 办公室群
    """
    from node.sync import delivery  # here: Apprise loads slowly
    node = _open(obj)
    error = delivery.send_test(node, name)
    if error:
        raise NodeError(N_("The test through %(name)s failed: %(error)s"), name=name,
                            error=error)
    _say(obj, {"name": name, "sent": True},
         N_("The test went through %(name)s: check that it arrived."), name=name)
