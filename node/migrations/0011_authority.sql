-- Authority (node/authority.py, node/membership.py): a node id that two keys claim,
-- with no confirmation by the city, is held: no key of it is trusted until the city
-- settles it. Flags are what an admin must look at: a membership conflict, a suspect
-- origin (it signed two different events under one number), a neighbour's clock.
ALTER TABLE nodes ADD COLUMN held TEXT;  -- why no key of this node id is trusted, or NULL
CREATE TABLE node_flags (
    node_id  TEXT NOT NULL,
    kind     TEXT NOT NULL,   -- membership | suspect | clock
    detail   TEXT NOT NULL,
    since    TEXT NOT NULL,
    PRIMARY KEY (node_id, kind)
) WITHOUT ROWID;
-- Evidence of equivocation (node/evidence.py): an origin signed two different events
-- under one number, or a link number carried two different events. Both are kept: the
-- stored event by its digest, the refused one whole.
CREATE TABLE evidence (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,   -- event | link
    origin      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    kept_digest BLOB,            -- the digest of the event stored under that number, if any
    other       TEXT NOT NULL,   -- the refused event's canonical wire JSON
    source      TEXT             -- the neighbour it came from
);
CREATE INDEX evidence_origin ON evidence(origin, seq);
-- The newest acknowledgement time taken from a neighbour: an older one is a replay.
ALTER TABLE links ADD COLUMN last_ack_at TEXT;
-- Events an admin released after they were held for their time (too far in the past):
-- their dates count from when this node received them (node/log.py, release_held).
CREATE TABLE clock_overrides (
    origin  TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    ts      TEXT NOT NULL,
    PRIMARY KEY (origin, seq)
) WITHOUT ROWID;
-- Web sessions kept on the server (node/users.py): a cookie names one by a random id,
-- stored here only as its SHA-256; logging out, a password change or an admin ends it.
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    username    TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    seen_at     TEXT NOT NULL,
    ended_at    TEXT,
    ended_why   TEXT             -- logout | password | admin | expired
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(username);
