"""A city in simulation: convergence and bytes against the fault rate, and the city's work
per simulated day against the number of villages.

Run: .venv/bin/python bench/simulate.py [--days 2] [--rates 0 0.1 0.2 0.3 0.5]
                                        [--villages 100 400 1600] [--out docs/simulate-faults.svg]
                                        [--json-out runs.json] [--from-json runs.json]

Each point is one `siji simulate` run (node/simulate) with the same seed, so the same
stories are played: the sweep over the default city (1 city, 10 towns, 40 areas, 400
villages) with 2% of the nodes off the network for a day or more and 2% of the villages
on USB sticks, at each connection failure rate; then fault-free cities of 100, 400 and
1,600 villages (10 towns, 40 areas, 2.5, 10 and 40 villages an area: 100 is 20 areas of
5). Writes the plot (SVG, pygal) and prints the tables of docs/benchmarks.md, with the
JSON of every run in --json-out if given.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import pygal

from node.simulate import Faults, Options, Shape, simulate

SCALES = {100: Shape(10, 2, 5), 400: Shape(10, 4, 10), 1600: Shape(10, 4, 40)}


def sweep(rates: list[float], days: int, seed: int) -> list[dict]:
    runs = []
    for rate in rates:
        started = time.perf_counter()
        report = simulate(Options(days=days, seed=seed, faults=Faults.at(rate)))
        report["wall_seconds"] = round(time.perf_counter() - started, 1)
        runs.append(report)
        print(f"rate {rate}: lost {report['lost']}, duplicated {report['duplicated']}, "
              f"rounds {report['convergence'].get('rounds')}, bytes {report['bytes']['total']:,}"
              f" ({report['wall_seconds']} s)", flush=True)
    return runs


def scale(villages: list[int], days: int, seed: int, settings: dict) -> list[dict]:
    runs = []
    for n in villages:
        started = time.perf_counter()
        report = simulate(Options(shape=SCALES[n], days=days, seed=seed, settings=settings,
                                  faults=Faults.at(0.0, offline=0.0, usb=0.0)))
        report["wall_seconds"] = round(time.perf_counter() - started, 1)
        runs.append(report)
        city = report["load"]["city"]
        print(f"{n} villages: city {city['events_received']['mean']} events, "
              f"{city['requests_served']['mean']} requests a day ({report['wall_seconds']} s)",
              flush=True)
    return runs


def plot(runs: list[dict], out: Path) -> None:
    """Rounds to converge and bytes (against the fault-free run) by fault rate."""
    chart = pygal.XY(title="siji simulate: 451 nodes, convergence and bytes by fault rate",
                     x_title="share of connections that fail", dots_size=4, stroke=True,
                     secondary_range=(0, max(2.0, max(_ratio(r, runs) for r in runs) * 1.2)),
                     range=(0, max(5, max(r["convergence"].get("rounds", 0) for r in runs) + 2)),
                     legend_at_bottom=True, truncate_legend=-1, width=720, height=420)
    chart.add("rounds to converge after the work stops (networked links)",
              [(r["faults"]["rate"], r["convergence"].get("rounds", 0)) for r in runs])
    chart.add("bytes moved / fault-free bytes", [(r["faults"]["rate"], _ratio(r, runs))
                                                 for r in runs], secondary=True)
    out.write_bytes(chart.render())


def _ratio(run: dict, runs: list[dict]) -> float:
    base = next(r for r in runs if r["faults"]["rate"] == 0)["bytes"]["total"]
    return round(run["bytes"]["total"] / base, 3)


def tables(runs: list[dict], scaled: list[dict]) -> str:
    lines = ["| fault rate | delivered | lost | duplicated | rounds (networked) | "
             "time (min) | USB trips, hours | bytes | × fault-free | high-risk same day |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        c, s = r["convergence"], r["same_day"]
        lines.append(
            f"| {r['faults']['rate']} | {r['delivered']:,} | {r['lost']} | {r['duplicated']} | "
            f"{c.get('rounds')} | {c.get('seconds', 0) / 60:.0f} | {c['usb_trips']}, "
            f"{c['all_seconds'] / 3600:.0f} | {r['bytes']['total']:,} | {_ratio(r, runs)} | "
            f"{s['same_day']}/{s['high_risk']} ({s['same_day_linked']}/"
            f"{s['high_risk_linked']} linked) |")
    lines += ["", "| villages | nodes | city: events received a day | of which digests "
              "(repeat.seen + repeat.relayed) | of which figures reports | of which cases and "
              "warnings | city: requests served a day | city: seconds serving a day | "
              "town: events received a day |", "|---|---|---|---|---|---|---|---|---|"]
    for r in scaled:
        city, town = r["load"]["city"], r["load"]["town"]
        kinds = city.get("received_by_type", {})
        digests = sum(n for t, n in kinds.items() if t.startswith("repeat."))
        reports = sum(n for t, n in kinds.items() if t.startswith("figures."))
        matters = sum(n for t, n in kinds.items() if t.split(".")[0] in ("case", "warning"))
        lines.append(f"| {r['shape']['villages']:,} | {r['nodes']:,} | "
                     f"{city['events_received']['mean']} | {digests:g} | {reports:g} | "
                     f"{matters:g} | {city['requests_served']['mean']} | "
                     f"{city['seconds_serving']['mean']} | {town['events_received']['mean']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rates", type=float, nargs="*", default=[0, 0.1, 0.2, 0.3, 0.5])
    parser.add_argument("--villages", type=int, nargs="*", default=[100, 400, 1600],
                        choices=sorted(SCALES))
    parser.add_argument("--repeat-up-to", choices=("village", "area", "town", "city"),
                        help="REPEAT_UP_TO for the scale runs (default: the nodes' default, "
                             "city)")
    parser.add_argument("--out", type=Path, default=Path("docs/simulate-faults.svg"))
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--from-json", type=Path,
                        help="Draw the plot and print the tables from the runs a --json-out "
                             "saved, without running anything.")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text("utf-8"))
        if saved["sweep"]:
            plot(saved["sweep"], args.out)
        print(tables(saved["sweep"], saved["scale"]))
        return
    logging.getLogger("siji.deadlines").setLevel(logging.ERROR)
    runs = sweep(args.rates, args.days, args.seed) if args.rates else []
    if runs and any(r["faults"]["rate"] == 0 for r in runs):
        plot(runs, args.out)
    scaled = scale(args.villages, args.days, args.seed,
                   {"REPEAT_UP_TO": args.repeat_up_to} if args.repeat_up_to else {})
    if args.json_out:
        args.json_out.write_text(json.dumps({"sweep": runs, "scale": scaled},
                                            ensure_ascii=False, indent=1), "utf-8")
    print(tables(runs, scaled))


if __name__ == "__main__":
    main()
