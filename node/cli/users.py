"""`siji user ...`: the accounts of this node."""

from __future__ import annotations

import click

from node import i18n, store, users
from node.cli.common import _emit, _lang, _open, cli, pass_ctx
from node.errors import N_


@cli.group()
def user():
    """Accounts on this node: add, list, disable, enable.

    Example: siji user add wang --role handler --name 王办理
    """


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(sorted(users.ROLES)), required=True)
@click.option("--name", "display_name", required=True, help="Name shown to people.")
@click.option("--password", envvar="SIJI_PASSWORD", prompt=True, hide_input=True,
              confirmation_prompt=True, help="Password (or set SIJI_PASSWORD).")
@pass_ctx
def user_add(obj, username, role, display_name, password):
    """Add an account.

    Example: siji user add liu --role liaison --name 刘信息员
    """
    node = _open(obj)
    with store.write(node.db):
        added = users.add_user(node, username, display_name, role, password)
    _emit(obj, added, lambda u: click.echo(i18n.translate(
        N_("Added %(role)s %(name)s"), _lang(obj), role=u["role"], name=u["username"])))


@user.command("list")
@pass_ctx
def user_list(obj):
    """List accounts.

    Example: siji user list
    """
    node = _open(obj)
    rows = users.list_users(node)
    _emit(obj, rows, lambda rows: [click.echo(
        f"{u['username']}\t{i18n.label('role', u['role'], _lang(obj))}\t{u['display_name']}"
        + ("\t(disabled)" if u["disabled"] else "")) for u in rows])


def _change(obj, username: str, change, msgid: str, **shown) -> None:
    """Run ``change(node)`` on an account in one transaction; say ``msgid`` (or JSON)."""
    node = _open(obj)
    with store.write(node.db):
        result = change(node)
    _emit(obj, {"user": username, **shown, "result": result}, lambda _d: click.echo(
        i18n.translate(msgid, _lang(obj), name=username, **shown)))


@user.command("disable")
@click.argument("username")
@pass_ctx
def user_disable(obj, username):
    """Disable an account: it cannot log in, and its web sessions end at once.

    Example: siji user disable liu
    """
    _change(obj, username, lambda n: users.set_disabled(n, username, True)["disabled"],
            N_("Disabled %(name)s; their sessions have ended."))


@user.command("enable")
@click.argument("username")
@pass_ctx
def user_enable(obj, username):
    """Enable a disabled account again.

    Example: siji user enable liu
    """
    _change(obj, username, lambda n: users.set_disabled(n, username, False)["disabled"],
            N_("Enabled %(name)s."))


@user.command("password")
@click.argument("username")
@click.option("--password", envvar="SIJI_PASSWORD", prompt="New password", hide_input=True,
              confirmation_prompt=True, help="The new password (or set SIJI_PASSWORD).")
@pass_ctx
def user_password(obj, username, password):
    """Set an account's password (the operator's reset); its web sessions end.

    Example: siji user password liu
    """
    _change(obj, username, lambda n: users.set_password(n, username, password),
            N_("Set the password of %(name)s; their sessions have ended."))


@user.command("logout")
@click.argument("username")
@pass_ctx
def user_logout(obj, username):
    """End every web session of an account, wherever it is logged in.

    Example: siji user logout liu
    """
    _change(obj, username, lambda n: (users.get_user(n, username),
                                      users.end_sessions(n, username, "admin"))[1],
            N_("Ended the sessions of %(name)s."))
