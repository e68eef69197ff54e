"""What the people of the simulated city do, hour by hour, through the domain commands.

Each node's staff act on what their own node holds, as they would on its pages:
village liaisons register petitions (a few a week per village), settle most on the
spot, escalate some and raise early warnings; areas settle or pass on what comes up;
towns accept, assign, reply, refer some back down (交办) and escalate a few; the city
refers what reaches it back to a town with a supervision order (督办); every level
above a warning acknowledges it. The texts are the demo's (node/demo/sample.py and
node/demo/stories.py).

Every choice about a case is drawn from a generator seeded by the run's seed and the
case's number, so runs at different fault rates play the same stories: what differs
is only when each step can happen, which depends on what has arrived.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from node import cases, log, store, warnings
from node.demo import sample, stories
from node.errors import NodeError


@dataclass(frozen=True)
class Volume:
    """Rates per node per simulated day (Poisson means)."""

    village_petitions: float = 0.4   # a few a week
    area_petitions: float = 0.2
    town_petitions: float = 0.5      # visitors at the town's office
    city_petitions: float = 1.0
    village_warnings: float = 0.03   # about one a month per village
    collective: float = 0.01         # share of village petitions by a group (集体访)
    village_escalate: float = 0.2    # share a village cannot settle and passes up
    village_settle: float = 0.55     # share settled on the spot (the rest wait, noted)
    area_escalate: float = 0.5       # share of what reaches an area that goes on to the town
    town_refer: float = 0.15         # share a town refers back down (交办)
    town_escalate: float = 0.05      # share a town passes to the city


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: small means only."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


HOURS = range(8, 18)  # office hours: actions happen in these hours of the day


@dataclass
class Workload:
    seed: int
    volume: Volume = field(default_factory=Volume)
    stage: dict = field(default_factory=dict)   # (node, subject) -> the last step taken
    plan: dict = field(default_factory=dict)    # node -> {hour: [what to start]}
    done: Counter = field(default_factory=Counter)  # action -> times done
    refused: Counter = field(default_factory=Counter)  # action -> times refused
    high_risk: dict = field(default_factory=dict)  # warning id -> (origin, local day raised)

    def rng(self, *parts) -> random.Random:
        return random.Random("/".join(map(str, (self.seed, *parts))))

    # -- the day's plan ------------------------------------------------------------------

    def plan_day(self, place, day: int) -> None:
        """New petitions and warnings of ``place`` for simulated day ``day``, by hour."""
        v, rng = self.volume, self.rng(place.id, "day", day)
        petitions = {"village": v.village_petitions, "area": v.area_petitions,
                     "town": v.town_petitions, "city": v.city_petitions}[place.tier]
        hours: dict[int, list] = {}
        for n in range(poisson(rng, petitions)):
            hours.setdefault(rng.choice(HOURS), []).append(("petition", f"{day}-{n}"))
        if place.tier == "village":
            for n in range(poisson(rng, v.village_warnings)):
                hours.setdefault(rng.choice(HOURS), []).append(("warning", f"{day}-{n}"))
        self.plan[place.id] = hours

    # -- one hour at one node ------------------------------------------------------------

    def hour(self, node, place, net, hour: int) -> None:
        """What the staff of ``node`` do in this hour: the planned new matters, then the
        next step of what they hold."""
        for kind, key in self.plan.get(place.id, {}).get(hour, []):
            if kind == "petition":
                self._petition(node, place, key)
            else:
                self._warning(node, place, key)
        self._acknowledge(node, place)
        self._followups(node, place)
        self._held(node, place, net)

    def _do(self, node, action: str, work) -> object | None:
        """One command in one transaction (as a page or the CLI runs it); a refusal by the
        rules is counted, not raised."""
        try:
            with store.write(node.db):
                result = work()
        except NodeError:
            self.refused[action] += 1
            return None
        self.done[action] += 1
        return result

    def _petition(self, node, place, key: str) -> None:
        rng = self.rng(place.id, "petition", key)
        role = "liaison" if place.tier == "village" else "handler"
        fields = sample.case_fields(rng, length=rng.randrange(120, 260))
        if place.tier == "village" and rng.random() < self.volume.collective:
            fields.update(people_count=rng.randrange(8, 30), channel="visit",
                          category="grassroots")
        event = self._do(node, "register", lambda: cases.register(
            node, log.Actor(role, role), fields))
        if event is not None and place.tier == "village":
            self.stage[(place.id, event.subject)] = "new"

    def _warning(self, node, place, key: str) -> None:
        rng = self.rng(place.id, "warning", key)
        fields = sample.warning_fields(rng, place=place.name + rng.choice(sample.GROUPS),
                                       today=node.today())
        actor = log.Actor("liaison", "liaison")
        event = self._do(node, "raise", lambda: warnings.raise_warning(node, actor, fields))
        if event is None:
            return
        level = node.db.conn.execute("SELECT risk_level FROM warnings WHERE id = ?",
                                     (event.subject,)).fetchone()[0]
        if level in ("major", "serious"):
            self.high_risk[event.subject] = (place.id, node.today().isoformat())
        if rng.random() < 0.5:
            self._do(node, "warning.handle", lambda: warnings.act(
                node, actor, event.subject, "handle",
                {"measures": sample.warning_measures(rng)}))

    def _acknowledge(self, node, place) -> None:
        """Every level above a warning acknowledges it (签收) in the hour it arrives."""
        if place.tier == "village":
            return
        role = "handler"
        for (wid,) in node.db.conn.execute(
                "SELECT id FROM warnings WHERE origin_node != ? AND status IN "
                "('raised', 'acknowledged', 'handling') AND id NOT IN "
                "(SELECT warning_id FROM warning_acks WHERE node_id = ?)",
                (node.id, node.id)).fetchall():
            self._do(node, "warning.acknowledge", lambda wid=wid: warnings.act(
                node, log.Actor(role, role), wid, "acknowledge",
                {"note": "已签收，已安排专人跟进。"}))

    def _followups(self, node, place) -> None:
        """A village follows up its petitioners' replied cases (回访), within a day or two
        (the town's leader then closes them: _town)."""
        if place.tier == "village":
            for (cid,) in node.db.conn.execute(
                    "SELECT id FROM cases WHERE origin_node = ? AND state = 'replied' AND "
                    "rating IS NULL", (node.id,)).fetchall():
                rng = self.rng(cid, "followup")
                if rng.random() < 0.5:  # within a day or two
                    continue
                self._do(node, "followup", lambda cid=cid, rng=rng: cases.act(
                    node, log.Actor("liaison", "liaison"), cid, "followup",
                    {"rating": rng.choice(("satisfied", "satisfied", "basic"))}))

    def _held(self, node, place, net) -> None:
        """The next step of each case this node holds, by its tier."""
        rows = node.db.conn.execute(
            "SELECT id, state, handover, referred_by, rating, origin_node FROM cases "
            "WHERE holder = ? AND state NOT IN ('concluded', 'terminated', 'not_accepted', "
            "'referred_out', 'merged')", (node.id,)).fetchall()
        step = {"village": self._village, "area": self._area, "town": self._town,
                "city": self._city}[place.tier]
        for row in rows:
            step(node, place, net, *row)
        if place.tier in ("town", "city"):
            self._orders(node, place)

    def _act(self, node, role: str, cid: str, action: str, fields: dict) -> bool:
        return self._do(node, action, lambda: cases.act(
            node, log.Actor(role, role), cid, action, fields)) is not None

    def _village(self, node, place, net, cid, state, handover, referred_by, rating, origin):
        key = (place.id, cid)
        if self.stage.get(key) != "new" or state != "registered":
            return
        rng = self.rng(cid, "village")
        fate = rng.random()
        collective = node.db.conn.execute("SELECT collective FROM cases WHERE id = ?",
                                          (cid,)).fetchone()[0]
        if collective or fate < self.volume.village_escalate:
            if self._act(node, "liaison", cid, "escalate", {
                    "to": place.parent, "reason": rng.choice(stories.ESCALATIONS)}):
                self.stage[key] = "escalated"
        elif fate < self.volume.village_escalate + self.volume.village_settle:
            if self._act(node, "liaison", cid, "settle", {
                    "reply": rng.choice(stories.SETTLE_REPLIES),
                    "decision": rng.choice(("explain", "support"))}):
                self.stage[key] = "settled"
        else:
            if self._act(node, "liaison", cid, "note",
                         {"text": "已登记，村两委约定下周入户调解。"}):
                self.stage[key] = "kept"

    def _area(self, node, place, net, cid, state, handover, referred_by, rating, origin):
        key = (place.id, cid)
        stage = self.stage.get(key)
        rng = self.rng(cid, "area")
        if handover == "pending" and referred_by and stage != "signed":  # 交办 from the town
            if self._act(node, "handler", cid, "sign", {"note": "已签收交办件。"}):
                self.stage[key] = "signed"
            return
        if stage == "signed":
            if self._act(node, "handler", cid, "note", {
                    "text": "已入户核实，情况属实，已约见当事人，具体意见报镇里答复。"}) and \
                    self._act(node, "handler", cid, "escalate", {
                        "to": place.parent, "reason": "交办件已核实，请镇里依规答复。"}):
                self.stage[key] = "returned"
            return
        if stage is not None or state != "registered":
            return
        if rng.random() < self.volume.area_escalate or origin == node.id and rng.random() < 0.3:
            if self._act(node, "handler", cid, "escalate", {
                    "to": place.parent, "reason": "涉及镇级审批事项，需镇里统筹处理。"}):
                self.stage[key] = "escalated"
        elif self._act(node, "handler", cid, "settle", {
                "reply": rng.choice(stories.SETTLE_REPLIES), "decision": "explain"}):
            self.stage[key] = "settled"

    def _town(self, node, place, net, cid, state, handover, referred_by, rating, origin):
        key = (place.id, cid)
        stage = self.stage.get(key)
        rng = self.rng(cid, "town")
        H = "handler"  # noqa: N806
        if handover == "pending" and referred_by:  # 交办 from the city, with its order
            if self._act(node, H, cid, "sign", {"note": "已签收市局交办件。"}):
                self.stage[key] = "from_city"
            return
        if state == "registered" and stage is None:
            if self._act(node, H, cid, "accept", {}):
                self.stage[key] = "accepted"
            return
        if state not in ("accepted", "in_progress"):
            if state == "replied" and rating is not None:
                self._act(node, "leader", cid, "close", {
                    "report": "事项已按期答复，回访当事人表示满意，无遗留问题，同意结案。",
                    "signers": ["leader", "handler"]})
            return
        if stage == "accepted":
            fate = rng.random()
            area = next((a.id for a in net.children(node.id) if origin.startswith(a.id)),
                        None)
            if fate < self.volume.town_escalate:
                if self._act(node, H, cid, "escalate", {
                        "to": place.parent, "reason": "涉及跨镇政策协调，需市局统筹处理。"}):
                    self.stage[key] = "escalated"
            elif fate < self.volume.town_escalate + self.volume.town_refer and area:
                if self._act(node, H, cid, "refer", {
                        "to": area, "instruction": rng.choice(stories.INSTRUCTIONS),
                        "deadline": (node.today() + timedelta(days=10)).isoformat()}):
                    self.stage[key] = "referred"
            elif self._act(node, H, cid, "assign", {"assignee": "镇民政办 handler"}):
                self.stage[key] = "assigned"
            return
        if stage in ("assigned", "returned", "from_city", "referred") or stage is None:
            if stage == "from_city" and node.db.conn.execute(
                    "SELECT 1 FROM supervision_orders WHERE case_id = ? AND status != 'closed' "
                    "AND status != 'feedback'", (cid,)).fetchone():
                return  # the city's order is answered first (_orders)
            if rng.random() < 0.4:  # the reply takes a few days
                decision, reply = rng.choice(stories.REPLIES)
                if self._act(node, H, cid, "reply", {"decision": decision, "reply": reply}):
                    self.stage[key] = "replied"

    def _city(self, node, place, net, cid, state, handover, referred_by, rating, origin):
        key = (place.id, cid)
        stage = self.stage.get(key)
        rng = self.rng(cid, "city")
        H = "handler"  # noqa: N806
        if state == "registered" and stage is None:
            if self._act(node, H, cid, "accept", {}):
                self.stage[key] = "accepted"
            return
        if stage == "accepted" and state in ("accepted", "in_progress"):
            town = origin.split("p")[0] if origin != node.id else rng.choice(
                net.children(node.id)).id
            deadline = (node.today() + timedelta(days=15)).isoformat()
            if self._act(node, H, cid, "refer", {
                    "to": town, "instruction": rng.choice(stories.INSTRUCTIONS),
                    "deadline": deadline}) and self._act(node, "leader", cid, "supervise", {
                        "instruction": "请按期办结并报送办理结果。", "deadline": deadline}):
                self.stage[key] = "referred"

    def _orders(self, node, place) -> None:
        """Supervision orders: the target town acknowledges and answers them; the city
        closes those answered."""
        for case_id, order, issuer, target, status in node.db.conn.execute(
                "SELECT case_id, id, issuer, target, status FROM supervision_orders WHERE "
                "status != 'closed' AND (target = ? OR issuer = ?)",
                (node.id, node.id)).fetchall():
            if target == node.id and status == "issued":
                self._act(node, "handler", case_id, "supervision_ack", {"order_id": order})
            elif target == node.id and status == "acknowledged":
                self._act(node, "handler", case_id, "supervision_feedback", {
                    "order_id": order, "feedback": "已入户核实并约谈当事人，正在依规办理。"})
            elif issuer == node.id and status == "feedback":
                self._act(node, "leader", case_id, "supervision_close", {"order_id": order})

