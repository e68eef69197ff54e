"""The layers' seams: the log knows domains only through the registry, settings only
through their declarations, and the pure routing rules agree with the domains' words."""

from __future__ import annotations

import pytest

from node import events, log, registry, routing, settings, store, warnings
from node.errors import EventRefused


def test_an_event_of_a_kind_no_domain_registers_is_refused_and_changes_nothing(village):
    forged = events.sign(village.signer, origin=village.id, seq=99, ts="2026-11-23T02:00:00Z",
                         actor="liu", role="liaison", type="rumour.spread", subject="R-1",
                         body={"text": "x"})
    parsed = events.from_json(events.to_json(forged))  # the shape alone is fine on the wire
    before = village.db.conn.execute("SELECT count(*) FROM events").fetchone()[0]
    with pytest.raises(EventRefused, match="unknown event type rumour.spread"), \
            store.write(village.db):
        log.receive(village, parsed)
    assert village.db.conn.execute("SELECT count(*) FROM events").fetchone()[0] == before


def test_every_registered_domain_owns_its_urgent_types():
    kinds = {d.kind for d in registry.domains()}
    assert {"case", "warning", "node", "figures"} <= kinds
    for domain in registry.domains():
        assert all(t.startswith(domain.kind + ".") for t in domain.urgent), domain.kind
    assert {"case.escalated", "warning.raised", "warning.alarmed"} <= registry.urgent_types()


def test_a_kind_registered_twice_is_refused():
    cases_domain = registry.domain_of("case.registered")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(registry.Domain(**{**cases_domain.__dict__, "name": "other"}))
    assert registry.domain_of("case.registered") is cases_domain


def test_a_setting_declared_twice_is_refused_and_each_name_is_declared_once():
    names = [s.name for s in settings.SETTINGS]
    assert len(names) == len(set(names)) == len(settings.BY_NAME)
    first = settings.BY_NAME["LIMITS"]
    with pytest.raises(ValueError, match="declared twice"):
        settings.declare(settings.Setting("LIMITS", {}, "again", dict))
    assert settings.BY_NAME["LIMITS"] is first


def test_the_routing_rules_know_the_risk_levels_in_the_warnings_order():
    assert tuple(warnings.LEVELS) == routing.LEVEL_ORDER
