-- Progress on any link (issue 16). What a link has shown of itself (node/pacing.py,
-- Pace): bytes moved and cuts seen, both decaying; the rate measured; bytes on the wire
-- an event takes; and the session under way: bytes the neighbour confirmed, and when.
ALTER TABLE links ADD COLUMN moved REAL NOT NULL DEFAULT 0;
ALTER TABLE links ADD COLUMN cuts REAL NOT NULL DEFAULT 0;
ALTER TABLE links ADD COLUMN rate REAL;
ALTER TABLE links ADD COLUMN event_wire REAL;
ALTER TABLE links ADD COLUMN sent_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE links ADD COLUMN progress_at TEXT;
-- Bundles in transit, each bound to the SHA-256 of the whole bundle (node/sync/parts.py).
CREATE TABLE parts (
    peer     TEXT NOT NULL,
    way      TEXT NOT NULL CHECK (way IN ('in', 'out')),
    digest   BLOB NOT NULL,
    size     INTEGER NOT NULL,
    held     INTEGER NOT NULL DEFAULT 0,
    done     INTEGER NOT NULL DEFAULT 0,
    first    INTEGER,
    last     INTEGER,
    data     BLOB,
    at       TEXT NOT NULL,
    PRIMARY KEY (peer, way)
);
CREATE TABLE part_pieces (
    peer     TEXT NOT NULL,
    start    INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (peer, start)
);
