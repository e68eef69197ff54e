"""`siji warning ...`: raise, list and act on early warnings (预警)."""

from __future__ import annotations

import click

from node import i18n, store, warnings
from node.cli.common import _actor, _emit, _fields, _lang, _open, cli, pass_ctx
from node.errors import N_


@cli.group()
def warning():
    """Early warnings (预警): add, list, act.

    Example: siji warning list --status raised
    """


@warning.command("add")
@click.option("--as", "username", required=True)
@click.option("-f", "pairs", multiple=True, help="A field as key=value (repeatable).")
@click.option("--json", "json_file", type=click.File("r", encoding="utf-8"))
@pass_ctx
def warning_add(obj, username, pairs, json_file):
    """Raise an early warning of a group petition.

    Example: siji warning add --as liu -f subject=征地补偿 -f place=东山村
    -f expected_size=30 -f destination=city -f expected_date=2026-12-01
    """
    node = _open(obj)
    with store.write(node.db):
        event = warnings.raise_warning(node, _actor(node, username), _fields(pairs, json_file))
        w = warnings.get(node, event.subject)
    _emit(obj, {"id": w["id"], "risk_level": w["risk_level"], "risk_score": w["risk_score"]},
          lambda d: click.echo(i18n.translate(
              N_("Raised %(id)s, risk %(level)s (score %(score)s)"), _lang(obj), id=d["id"],
              level=warnings.LEVELS[d["risk_level"]][0 if _lang(obj) == "zh" else 1],
              score=d["risk_score"])))


@warning.command("list")
@click.option("--status", help="Only warnings in this status.")
@pass_ctx
def warning_list(obj, status):
    """List warnings, highest risk first.

    Example: siji warning list --status raised
    """
    node = _open(obj)
    rows = warnings.listing(node, status)
    lang = _lang(obj)

    def human(rows):
        for w in rows:
            click.echo("\t".join([w["id"], i18n.label("state", w["status"], lang),
                                  warnings.LEVELS[w["risk_level"]][0 if lang == "zh" else 1],
                                  w["subject"], str(w["expected_size"])]))
        click.echo(i18n.translate(N_("%(n)s warnings"), lang, n=len(rows)))
    _emit(obj, rows, human)


@warning.command("act")
@click.argument("warning_id")
@click.argument("action", metavar="ACTION",
                type=click.Choice(sorted(set(warnings.RULES) - {"raise"})))
@click.option("--as", "username", required=True)
@click.option("-f", "pairs", multiple=True, help="A field as key=value (repeatable).")
@pass_ctx
def warning_act(obj, warning_id, action, username, pairs):
    """Acknowledge, handle, defuse, escalate or close a warning.

    Example: siji warning act YJ-dongshan-2026-0001 acknowledge --as wang
    """
    node = _open(obj)
    with store.write(node.db):
        warnings.act(node, _actor(node, username), warning_id, action, _fields(pairs, None))
        status = warnings.get(node, warning_id)["status"]
    _emit(obj, {"id": warning_id, "status": status},
          lambda d: click.echo(i18n.translate(N_("%(id)s: %(action)s done, now %(state)s"),
                                              _lang(obj), id=warning_id, action=action,
                                              state=status)))
