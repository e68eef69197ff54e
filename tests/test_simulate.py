"""`siji simulate`: a small city through the same code path as the 451-node run."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner
from conftest import LIAISON, case_fields

from node import cases, store
from node.cli import cli
from node.errors import NodeError
from node.simulate import Faults, Options, Shape, simulate, wire
from node.sync import session

SMALL = Shape(towns=2, areas_per_town=1, villages_per_area=3)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Two days of a city of 11 nodes: 30% of connections fail, a byte flipped in 3%,
    a node off the network, a village on a USB stick; busier than the default volume,
    so that every step of the work happens."""
    from node.simulate.workload import Volume
    options = Options(shape=SMALL, days=2, seed=3,
                      faults=Faults.at(0.3, offline=0.2, usb=0.2, usb_every=1),
                      volume=Volume(village_petitions=3, village_warnings=1,
                                    town_escalate=0.3, town_refer=0.3),
                      workdir=str(tmp_path_factory.mktemp("simulate")))
    return simulate(options)


def test_a_small_city_converges_with_nothing_lost_or_duplicated(report):
    assert report["nodes"] == 11
    assert report["convergence"]["converged"], report["convergence"]
    assert report["lost"] == 0, report["lost_examples"]
    assert report["duplicated"] == 0
    assert report["unexpected"] == 0
    assert report["delivered"] > 50
    assert report["faults"]["usb_villages"] == 1 and report["bytes"]["usb"] > 0


def test_the_faults_happened_and_the_work_went_on(report):
    requests = report["requests"]
    assert requests["cut"] > 0 and requests["failed_to_connect"] > 0
    done = report["work"]["done"]
    for action in ("register", "escalate", "accept", "refer", "supervise", "raise",
                   "warning.acknowledge", "reply"):
        assert done.get(action), action


def test_high_risk_warnings_with_a_link_reach_the_city_the_same_day(report):
    same = report["same_day"]
    assert same["high_risk_linked"] > 0
    assert same["same_day_linked"] == same["high_risk_linked"], same["late_linked"]


def test_a_flipped_byte_is_refused_and_the_next_session_delivers(make_node):
    town = make_node("town", "zhen")
    village = make_node("village", "cun", parent=town)
    with store.write(village.db):
        cid = cases.register(village, LIAISON, case_fields()).subject
        cases.act(village, LIAISON, cid, "escalate", {"to": "zhen", "reason": "需上级处理"})
    meter, rng = wire.Meter(), random.Random(1)
    flipping = wire.Link(town, wire.Faults(corrupt=1.0), rng, meter)
    while meter.corrupted == 0 or meter.refused == 0:  # the byte may land in an answer
        with pytest.raises((wire.Refused, OSError, NodeError)):
            session.run(village, flipping)
    assert town.db.conn.execute("SELECT count(*) FROM cases").fetchone()[0] in (0, 1)
    session.run(village, wire.Link(town, wire.Faults(), rng, meter))
    assert town.db.conn.execute("SELECT holder FROM cases WHERE id = ?",
                                (cid,)).fetchone()[0] == "zhen"


def test_the_command_prints_the_report_as_json(tmp_path):
    result = CliRunner().invoke(cli, [
        "--json", "simulate", "--towns", "1", "--areas-per-town", "1", "--villages-per-area", "2",
        "--days", "1", "--fault-rate", "0.2", "--offline", "0", "--usb", "0",
        "--workdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["nodes"] == 5 and data["lost"] == 0 and data["duplicated"] == 0
