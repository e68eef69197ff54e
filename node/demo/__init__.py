"""`siji demo`: a whole four-tier network on 127.0.0.1 in one command.

One city, two towns, two areas per town and two villages per area: fifteen
nodes, each made as `siji init` makes one, in its own directory under the
demo directory (default ./demo), each served by its own `siji serve`
process on its own port: the city on the base port, the others after it in
the order of :data:`NETWORK`. Each child is enrolled with its parent by a
one-time code over HTTP, as `siji enroll-code` and `siji enroll --code` do
it, and syncs every few seconds (SYNC_INTERVAL in its siji.toml).

Sample data is made at the node it belongs to, with the domain commands
(``cases.register``/``act``, ``warnings.raise_warning``/``act``) under the
node's own users, backdated over the last weeks so that deadlines fall due,
due soon and overdue. Nothing is written into another node's database:
what crosses tiers (an escalation up, a referral down, a warning) travels
by sync under whatever routing policy the nodes apply, so the demo needs no
change when routing does.

Running it again resumes the network in its directory; ``--fresh`` starts
over. SIGINT (Ctrl-C) or SIGTERM stops every node process. The node
processes run in their own sessions, so a Ctrl-C in the terminal reaches
only the demo, which stops them in order; on Linux each also gets SIGTERM
if the demo itself dies (PR_SET_PDEATHSIG), so none is left behind.

The package: ``network`` (the places, the directory, making and enrolling
nodes), ``processes`` (starting, watching and stopping them), ``stories``
(the sample data) and ``sample`` (made-up names and texts).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path

import click

from node import core, i18n
from node.demo.network import (
    DEFAULT_BASE_PORT,
    INDEX,
    MANIFEST,
    NETWORK,
    PASSWORD,
    TIER_ORDER,
    _check_ports,
    _clear,
    _lock,
    _read_manifest,
    _say,
    _width,
    describe,
    enroll_node,
    enrolled,
    make_node,
    one_hash,
    table,
    url,
)
from node.demo.processes import Running, _watch, start, stop, wait_ready
from node.demo.stories import seed, seed_round
from node.errors import N_, ConfigError

# what the tests and benchmarks use of the package, besides run
__all__ = ["INDEX", "MANIFEST", "NETWORK", "Running", "_width", "describe", "enroll_node",
           "make_node", "run", "seed", "start", "stop", "table", "url", "wait_ready"]


class _Stop(Exception):
    """SIGINT or SIGTERM arrived: stop every node."""


def _raise_stop(signum, frame):
    raise _Stop(signum)


def run(root: Path, *, base_port: int | None = None, fresh: bool = False, lang: str = "zh",
        as_json: bool = False) -> None:
    """Make or resume the demo network in ``root``, serve it until SIGINT or SIGTERM."""
    root = Path(os.path.abspath(root))
    runs: dict[str, Running] = {}
    # from the start, so that no signal can leave a node process behind
    handlers = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    lock = None
    try:
        lock = _lock(root, fresh)
        base_port = _prepare(root, base_port, fresh, lang)
        _serve(root, base_port, runs, lang, as_json)
    except _Stop:
        pass
    finally:
        for s in handlers:
            signal.signal(s, signal.SIG_IGN)
        if runs:
            _say(lang, N_("Stopping %(n)s node processes"), n=len(runs))
            stop(list(runs.values()))
        if lock is not None:
            lock.close()
        for s, handler in handlers.items():
            signal.signal(s, handler)


def _rounds(root: Path, wait: float = 30.0) -> None:
    """Each town's screening round (排查), once its villages' enrollments have come up to it
    by sync (a few seconds); a town still without them is skipped, and gets its round the
    next time the demo starts."""
    towns = [p for p in NETWORK if p.tier == "town"]
    deadline = time.monotonic() + wait
    while towns and time.monotonic() < deadline:
        towns = [t for t in towns if seed_round(root, t) is None and not _has_round(root, t)]
        if towns:
            time.sleep(1)


def _has_round(root: Path, place) -> bool:
    node = core.open_node(root / place.id)
    try:
        return node.db.conn.execute("SELECT 1 FROM rounds LIMIT 1").fetchone() is not None
    finally:
        node.close()


def _prepare(root: Path, base_port: int | None, fresh: bool, lang: str) -> int:
    """Choose the ports, check them, clear the directory if fresh; returns the base port."""
    manifest = _read_manifest(root)
    stored = (manifest or {}).get("base_port")  # --fresh keeps the ports chosen before
    if not (isinstance(stored, int) and 1024 <= stored <= 65535 - len(NETWORK) + 1):
        if manifest and not fresh:
            raise ConfigError(N_("the demo in %(dir)s is damaged: start it over with "
                                 "--fresh"), dir=root)
        stored = None
    base_port = base_port or stored or DEFAULT_BASE_PORT
    _check_ports(base_port)
    if fresh:
        _clear(root)
    (root / MANIFEST).write_text(json.dumps({"siji_demo": 1, "base_port": base_port}), "utf-8")
    if manifest and not fresh:
        _say(lang, N_("Resuming the demo network in %(dir)s"), dir=root)
    else:
        _say(lang, N_("Making a demo network of %(n)s nodes in %(dir)s"), n=len(NETWORK),
             dir=root)
    return base_port


def _serve(root: Path, base_port: int, runs: dict[str, Running], lang: str,
           as_json: bool) -> None:
    """Make, enroll, start and seed what is missing (``runs`` fills as processes start)."""
    with one_hash():
        for place in NETWORK:
            make_node(root, place, base_port)
    for tier in TIER_ORDER:  # a parent serves before its children enroll with it
        for place in (p for p in NETWORK if p.tier == tier):
            if not enrolled(root, place):
                wait_ready([runs[place.parent]])
                enroll_node(root, place, base_port)
            runs[place.id] = start(root, place, base_port)
    wait_ready(list(runs.values()))
    # deadlines past the shipped holiday calendar would each log a warning here
    logging.getLogger("siji.deadlines").setLevel(logging.ERROR)
    refused = [line for place in NETWORK for line in seed(root, place, lang)]
    _rounds(root)
    if refused:
        _say(lang, N_("%(n)s sample steps were refused and skipped; the first: %(first)s"),
             n=len(refused), first=refused[0])
    data = describe(root, base_port)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo(i18n.translate(N_("The demo network is running: %(n)s nodes in %(dir)s. "
                                     "Every account's password is %(password)s."), lang,
                                  n=len(NETWORK), dir=root, password=PASSWORD))
        click.echo("")
        click.echo(table(data, lang))
        click.echo("")
        click.echo(i18n.translate(N_("Ctrl-C stops every node. Run siji demo again to "
                                     "resume this network, or siji demo --fresh to start "
                                     "over."), lang))
    _watch(list(runs.values()), lang)
