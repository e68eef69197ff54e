-- Issue 19: a node relays the keyed digests its children sent up in one signed event of
-- its own per session (repeat.relayed), so the city gets a few events from each town
-- rather than one from every petition below it. A digest row now names the subject that
-- brought it (``via``: D-<case> for the registrant's own repeat.seen, DR-<node>-<n> for a
-- relay), so that folding one subject again, or pruning, touches only its own rows, and
-- the time the registrant wrote the seen (``at``), by which a relay of it is judged.
CREATE TABLE person_digests_new (
    case_id        TEXT NOT NULL,
    origin         TEXT NOT NULL,
    idx            INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    version        INTEGER NOT NULL,
    digest         TEXT NOT NULL,
    registered_on  TEXT NOT NULL,
    category       TEXT NOT NULL,
    at             TEXT NOT NULL,
    via            TEXT NOT NULL,
    PRIMARY KEY (case_id, idx, kind, version, via)
);
INSERT INTO person_digests_new SELECT p.case_id, p.origin, p.idx, p.kind, p.version,
    p.digest, p.registered_on, p.category, coalesce((SELECT e.ts FROM events e WHERE
    e.subject = 'D-' || p.case_id AND e.type = 'repeat.seen'), p.registered_on ||
    'T00:00:00Z'), 'D-' || p.case_id FROM person_digests p;
DROP TABLE person_digests;
ALTER TABLE person_digests_new RENAME TO person_digests;
CREATE INDEX person_digests_digest ON person_digests(digest);
CREATE INDEX person_digests_via ON person_digests(via);
