-- Urgent first (issue 19, node/sync/outbox.py): the events numbered for a neighbour ahead
-- of the routine scan (an urgent event and what it builds on), so that the scan, when it
-- reaches them, does not number them again. A row goes once the scan has passed it.
CREATE TABLE link_ahead (
    peer  TEXT NOT NULL REFERENCES links(peer),
    lsn   INTEGER NOT NULL,
    PRIMARY KEY (peer, lsn)
) WITHOUT ROWID;
