"""`siji simulate`: a whole city of nodes in one process over faulty links (node/simulate)."""

from __future__ import annotations

import json
import logging

import click

from node import i18n
from node.cli.common import _lang, cli, pass_ctx
from node.errors import N_


def _line(lang: str, msgid: str, **params) -> None:
    click.echo(i18n.translate(msgid, lang, **params))


@cli.command()
@click.option("--towns", type=click.IntRange(1, 100), default=10, show_default=True,
              help="Towns under the city.")
@click.option("--areas-per-town", type=click.IntRange(1, 50), default=4, show_default=True,
              help="Areas under each town.")
@click.option("--villages-per-area", type=click.IntRange(1, 100), default=10,
              show_default=True, help="Villages under each area.")
@click.option("--days", type=click.IntRange(1, 60), default=3, show_default=True,
              help="Simulated days of work.")
@click.option("--fault-rate", type=click.FloatRange(0, 0.9), default=0.3, show_default=True,
              help="Share of connections that fail: a quarter never connect, the rest are "
                   "cut inside the request or the answer; a tenth as many have a byte "
                   "flipped.")
@click.option("--offline", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              help="Share of the nodes below the city that are off the network for one to "
                   "three days.")
@click.option("--usb", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              help="Share of the villages with no network, only a USB stick carried to "
                   "their area and back.")
@click.option("--usb-every", type=click.IntRange(1, 30), default=2, show_default=True,
              help="Days between the trips of a USB stick.")
@click.option("--petitions", type=click.FloatRange(0, 50), default=0.4, show_default=True,
              help="New petitions a day at each village (a Poisson mean: a few a week).")
@click.option("--warnings", "warnings_", type=click.FloatRange(0, 50), default=0.03,
              show_default=True,
              help="Early warnings raised a day at each village (a Poisson mean).")
@click.option("--sync-hours", type=click.IntRange(1, 12), default=2, show_default=True,
              help="Hours between a node's scheduled sessions (urgent events go at once).")
@click.option("--repeat-up-to", type=click.Choice(["village", "area", "town", "city"]),
              default="city", show_default=True,
              help="Every node's REPEAT_UP_TO: how far up the keyed digests of each "
                   "petition's petitioners go (one event a petition).")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed of the work and of the faults: the same seed plays the same run.")
@click.option("--workdir", type=click.Path(file_okay=False),
              help="Where the nodes' temporary directory goes (default: /dev/shm if there "
                   "is one, else the system's temporary directory).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@pass_ctx
def simulate(obj, towns, areas_per_town, villages_per_area, days, fault_rate, offline, usb,
             usb_every, petitions, warnings_, sync_hours, repeat_up_to, seed, workdir, as_json):
    """Simulate a whole city (451 nodes by default) over faulty links, and count.

    Every node is real (SQLite, keys, enrollment, the domain commands); sessions run
    the real protocol over in-process links that fail, cut and corrupt bytes. Prints
    events delivered, lost and duplicated, rounds to converge, bytes, the share of
    high-risk warnings at the city the same day, and each tier's load.

    Example: siji simulate --days 3 --fault-rate 0.3 --seed 1
    """
    from node import simulate as sim  # here: it loads the demo's texts and Flask
    lang = _lang(obj)
    as_json = as_json or obj.get("json", False)
    logging.getLogger("siji.deadlines").setLevel(logging.ERROR)
    options = sim.Options(
        shape=sim.Shape(towns, areas_per_town, villages_per_area), days=days,
        faults=sim.Faults.at(fault_rate, offline=offline, usb=usb, usb_every=usb_every),
        seed=seed, sync_hours=sync_hours, workdir=workdir,
        volume=sim.Volume(village_petitions=petitions, village_warnings=warnings_),
        settings={} if repeat_up_to == "city" else {"REPEAT_UP_TO": repeat_up_to})
    report = sim.simulate(options, progress=None if as_json else (
        lambda text: click.echo(text, err=True)))
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    conv, same = report["convergence"], report["same_day"]
    _line(lang, N_("Nodes: %(nodes)s; days: %(days)s; fault rate: %(rate)s"),
          nodes=report["nodes"], days=report["days"], rate=report["faults"]["rate"])
    _line(lang, N_("Events delivered: %(delivered)s; lost: %(lost)s; duplicated: "
                   "%(duplicated)s; sent where they should not go: %(unexpected)s"),
          **{k: report[k] for k in ("delivered", "lost", "duplicated", "unexpected")})
    _line(lang, N_("Networked links caught up %(rounds)s rounds (%(minutes)s simulated minutes) "
                   "after the work stopped; every link, USB included: %(converged)s, after "
                   "%(all_rounds)s rounds, %(hours)s simulated hours and %(trips)s USB trips"),
          rounds=conv.get("rounds"), minutes=round(conv.get("seconds", 0) / 60),
          converged=i18n.translate(N_("yes") if conv["converged"] else N_("no"), lang),
          all_rounds=conv["all_rounds"],
          hours=round(conv["all_seconds"] / 3600, 1), trips=conv["usb_trips"])
    _line(lang, N_("Bytes moved: %(total)s (network %(network)s, USB %(usb)s)"),
          **{k: f"{v:,}" for k, v in report["bytes"].items()})
    _line(lang, N_("High-risk warnings at the city the same day: %(same)s of %(all)s; of "
                   "those raised with a network link: %(linked_same)s of %(linked)s"),
          same=same["same_day"], all=same["high_risk"], linked_same=same["same_day_linked"],
          linked=same["high_risk_linked"])
    for tier, load in report["load"].items():
        _line(lang, N_("%(tier)s (%(n)s): per node and day, %(events)s events received, "
                       "%(requests)s requests served, %(bytes)s bytes served"),
              tier=i18n.label("tier", tier, lang), n=load["nodes"],
              events=load["events_received"]["mean"],
              requests=load["requests_served"]["mean"], bytes=load["bytes_served"]["mean"])
