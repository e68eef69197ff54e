-- Sync between neighbours: where each event came from, per-link state, and
-- the outbox of events queued for each link with their link sequence numbers.
ALTER TABLE events ADD COLUMN source TEXT;  -- the neighbour it came from; NULL if written here
CREATE TABLE links (
    peer           TEXT PRIMARY KEY,         -- the neighbour's node id
    scanned_lsn    INTEGER NOT NULL DEFAULT 0,  -- events up to this lsn were considered
    next_out       INTEGER NOT NULL DEFAULT 1,  -- next link sequence number to assign
    acked          INTEGER NOT NULL DEFAULT 0,  -- the peer applied our link up to here
    applied        INTEGER NOT NULL DEFAULT 0,  -- we applied the peer's link up to here
    batch          INTEGER NOT NULL DEFAULT 200,
    last_contact   TEXT,
    last_success   TEXT,
    last_error     TEXT,
    errors         INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE outbox (
    peer   TEXT NOT NULL REFERENCES links(peer),
    lseq   INTEGER NOT NULL,
    lsn    INTEGER NOT NULL REFERENCES events(lsn),
    PRIMARY KEY (peer, lseq)
);
ALTER TABLE inbox ADD COLUMN source TEXT;
