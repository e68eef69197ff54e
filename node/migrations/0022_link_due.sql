-- Issue 19, many children: the routing decided once per event (node/sync/outbox.py,
-- ``route``). ``link_due`` holds, for each neighbour, the events routed since
-- ``links.routed_from`` that it may be owed; a session numbers for its peer from these
-- rows, not from every event that arrived for anyone. Events up to ``routed_from`` (a
-- link made before, or a link reset by ``resume``) are still looked at one by one.
-- The counter ``routed_lsn`` is how far the routing got.
ALTER TABLE links ADD COLUMN routed_from INTEGER NOT NULL DEFAULT 0;
CREATE TABLE link_due (
    peer  TEXT NOT NULL,
    lsn   INTEGER NOT NULL,
    PRIMARY KEY (peer, lsn)
) WITHOUT ROWID;
INSERT INTO counters (name, value) SELECT 'routed_lsn', coalesce(max(lsn), 0) FROM events;
UPDATE links SET routed_from = (SELECT value FROM counters WHERE name = 'routed_lsn');
