-- Draft keys (node/drafts.py): a registration or warning sent with a key is written
-- once; the same key sent again answers the first result and writes nothing. Written in
-- the same transaction as the event. This node's own, not derived from events:
-- `siji rebuild` leaves it, and it never travels.
CREATE TABLE draft_keys (
    key        TEXT PRIMARY KEY,  -- made by the phone (or the form), one per draft
    username   TEXT NOT NULL,     -- who sent it first
    kind       TEXT NOT NULL,     -- case | warning
    digest     TEXT NOT NULL,     -- SHA-256 of the sent fields' sorted JSON
    result_id  TEXT NOT NULL,     -- the case or warning it made
    at         TEXT NOT NULL
) WITHOUT ROWID;
