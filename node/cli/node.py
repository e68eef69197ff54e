"""`siji init`, `rebuild`, `figures`, `serve` and `demo`: making, keeping and serving a node."""

from __future__ import annotations

import gc
import logging
import sqlite3
import sys
import threading
from pathlib import Path

import click

from node import core, i18n, log, metrics, periods, store, trust, verifier
from node import figures as figure_domain
from node.cli.common import _emit, _lang, _open, _say, cli, pass_ctx
from node.errors import N_, NodeError, StoreBusy, StoreError


@cli.command()
@click.option("--tier", type=click.Choice(["city", "town", "area", "village"]), required=True)
@click.option("--id", "node_id", required=True, help="Node id, unique in the network.")
@click.option("--name", required=True, help="Name people read, e.g. 东山村.")
@click.option("--parent", "parent_url", default="", help="Parent node URL (not for the city).")
@click.option("--parent-id", default="", help="Parent node id, if known before enrollment.")
@click.option("--admin", default="admin", show_default=True, help="First admin's username.")
@click.option("--password", envvar="SIJI_ADMIN_PASSWORD", prompt="Admin password",
              hide_input=True, confirmation_prompt=True,
              help="First admin's password (or set SIJI_ADMIN_PASSWORD).")
@pass_ctx
def init(obj, tier, node_id, name, parent_url, parent_id, admin, password):
    """Make a node here: config, keys (0600), database and first admin.

    Example: siji --dir ./dongshan init --tier village --id dongshan --name 东山村
    --parent http://127.0.0.1:8001
    """
    node = core.init_node(obj["dir"], tier=tier, node_id=node_id, name=name,
                          parent_url=parent_url, parent_id=parent_id, admin=admin,
                          admin_password=password)
    fp = trust.fingerprint(node.signer.public_key().public_bytes_raw())
    node.close()
    _say(obj, {"tier": tier, "id": node_id, "dir": str(obj["dir"]), "fp": fp},
         N_("Made %(tier)s node %(id)s in %(dir)s (fingerprint %(fp)s)"))


# -- cases -----------------------------------------------------------------------


@cli.command()
@click.option("--offline", is_flag=True,
              help="Empty the derived tables first and rebuild them in one transaction: "
                   "faster, but every other writer waits for all of it (stop `siji serve`).")
@pass_ctx
def rebuild(obj, offline):
    """Recompute every derived row (cases, warnings, figures...) from the event log.

    In short write transactions, so `siji serve` goes on meanwhile; a progress bar on a
    terminal, the counts with --json.

    Example: siji rebuild
    """
    node = _open(obj)
    err = sys.stderr
    try:
        if offline:
            with store.write(node.db):
                counts = log.rebuild_from_scratch(node)
        else:
            with click.progressbar(length=1, label=i18n.translate(N_("Rebuilding"), _lang(obj)),
                                   file=err, hidden=obj.get("json") or not err.isatty(),
                                   show_pos=True, show_percent=True, show_eta=True) as bar:
                def progress(done, total):
                    bar.length = max(total, 1)
                    bar.update(done - bar.pos)
                counts = log.rebuild(node, progress)
    except (StoreBusy, sqlite3.OperationalError) as e:
        if not store.is_busy(e):
            raise
        raise StoreError(N_("the database stayed busy for %(seconds)s s (another process was "
                            "writing): stop `siji serve`, or leave out --offline, and run the "
                            "command again") if offline else
                         N_("the database stayed busy for %(seconds)s s (another process was "
                            "writing): run the command again (what was rebuilt stays)"),
                         seconds=f"{store.BUSY_TIMEOUT_MS / 1000:g}") from None
    _say(obj, counts, N_("Rebuilt %(cases)s cases and %(warnings)s warnings"))


@cli.command()
@pass_ctx
def check(obj):
    """Check the database: SQLite's own check, then every event against its digest and its
    origin's signature; lists what is damaged.

    Example: siji check
    """
    node = _open(obj)
    problems = log.check(node)
    _emit(obj, {"database": store.path_of(node.db), "problems": problems},
          lambda d: [click.echo(p) for p in d["problems"]])
    if problems:
        raise NodeError(N_("%(n)s problems in %(path)s: stop the node and restore the database "
                           "from the latest backup (docs/deploy.md)"), n=len(problems),
                        path=store.path_of(node.db))
    if not obj.get("json"):
        click.echo(i18n.translate(N_("%(path)s: no damage found"), _lang(obj),
                                  path=store.path_of(node.db)))


@cli.command("figures")
@click.option("--report", is_flag=True,
              help="First record this node's figures for its parent, where they changed (they "
                   "go up with the next sync; a sync does it too).")
@click.option("--period", type=click.Choice(periods.KINDS[:-1]), default="year",
              show_default=True, help="The period around --at.")
@click.option("--at", metavar="YYYY-MM-DD", help="A day in the period (default: today).")
@click.option("--from", "start", metavar="YYYY-MM-DD", help="A range instead: its first day.")
@click.option("--to", "end", metavar="YYYY-MM-DD", help="... and its last day.")
@click.option("--under", metavar="NODE", help="Only this unit's row (this node or a child).")
@pass_ctx
def figures_cmd(obj, report, period, at, start, end, under):
    """The figures of this node's subtree (counts and rates, no personal data), by unit.

    Example: siji figures --period month --at 2026-11-01
    """
    node = _open(obj)
    if report:
        with store.write(node.db):
            figure_domain.report(node)
    span = periods.parse({"period": period, "at": at, "from": start, "to": end}, node.today())
    facts = figure_domain.facts(node)
    if under is not None and under not in facts.made:
        raise NodeError(N_("%(field)s: unknown value %(value)s"), field="under", value=under)
    formulas = metrics.formulas(node.settings)
    now, last = facts.sums(span, "unit"), facts.sums(span.last_year(), "unit")
    zero = metrics.measures([], [])
    units = [u for u in ([under] if under else [node.id, *sorted(set(facts.made) - {node.id})])]
    data = {"period": {"start": span.start.isoformat(), "end": span.end.isoformat()},
            "units": {u: {"made": facts.made.get(u), "measures": now.get(u, zero),
                          "last_year": last.get(u, zero),
                          "rates": metrics.rates(now.get(u, zero), formulas)} for u in units}}
    lang = _lang(obj)

    def human(d):
        click.echo(i18n.translate(N_("Figures for %(start)s to %(end)s"), lang,
                                  **d["period"]))
        for unit, row in d["units"].items():
            m, r = row["measures"], row["rates"]
            shown = ", ".join(f"{i18n.label('measure', k, lang)} {m[k]}" for k in (
                "n", "people", "batches", "overdue", "warnings"))
            rates = ", ".join(f"{i18n.label('metric', k, lang)} "
                              f"{'-' if v is None else f'{v:g}%'}" for k, v in r.items())
            click.echo(f"{unit}\t{shown}; {rates}; {row['made'] or '-'}")
    _emit(obj, data, human)


@cli.command()
@click.option("--host", help="Address to listen on (default: HOST setting).")
@click.option("--port", type=int, help="Port (default: PORT setting).")
@pass_ctx
def serve(obj, host, port):
    """Serve this node's pages and API with waitress.

    Example: siji serve --port 8001
    """
    from node.sync import jobs  # here, with the web app and the server: they load slowly
    from node.web import lanes
    from node.web.app import make_app
    app = make_app(obj["dir"])
    settings = app.config
    store.checkpoint_in_background(settings["NODE_DIR"] / settings["DATABASE"])
    host, port = host or settings["HOST"], port or settings["PORT"]
    _say(obj, {"serving": f"http://{host}:{port}/", "node": settings["NODE_ID"]},
         N_("Serving %(name)s on http://%(host)s:%(port)s/"), name=settings["NODE_NAME"],
         host=host, port=port)
    logging.getLogger("siji").setLevel(logging.INFO)
    scheduler = jobs.start(obj["dir"], settings)
    # the helpers that check a bundle's signatures, ready before the first bundle arrives
    threading.Thread(target=verifier.start, name="siji-verifier-start", daemon=True).start()
    # What startup made lives as long as the process: keep it out of the collector's
    # oldest generation, which it would otherwise scan again and again while bundles are
    # applied (measured: GC took 5% of applying a stream of bundles, 2% after this).
    gc.collect()
    gc.freeze()
    try:
        # /sync/* has threads of its own, so it never waits behind the pages (web/lanes.py)
        lanes.serve(app, host, port)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)


@cli.command()
@click.option("--dir", "demo_dir", type=click.Path(file_okay=False, path_type=Path),
              default="demo", show_default=True,
              help="Where the demo network lives, one directory per node (not the global "
                   "--dir, which names one node).")
@click.option("--base-port", type=click.IntRange(1024, 65535 - 14),
              help="The city's port; the other 14 nodes take the ports after it (default "
                   "8000, or the ports this demo used last time).")
@click.option("--fresh", is_flag=True,
              help="Delete the demo network in --dir and start over.")
@pass_ctx
def demo(obj, demo_dir, base_port, fresh):
    """Run a whole demo network on 127.0.0.1 until Ctrl-C: 1 city, 2 towns, 4 areas, 8 villages.

    Each node is its own `siji serve` process on its own port, enrolled with its
    parent and syncing every few seconds, with made-up cases and warnings. Run it
    again to resume the same network.

    Example: siji demo --dir ./demo --base-port 8000
    """
    from node import demo as network  # here: it loads requests, which loads slowly
    network.run(demo_dir, base_port=base_port, fresh=fresh, lang=_lang(obj),
                as_json=obj.get("json", False))
