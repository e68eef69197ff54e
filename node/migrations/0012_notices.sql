-- Notices (node/notices.py): channels added on the network page (those of siji.toml
-- are read from it), each channel's last success and error, and the notices queued,
-- sent or retried, each once per channel and key.
CREATE TABLE notify_channels (
    name      TEXT PRIMARY KEY,
    url       TEXT NOT NULL,    -- an Apprise address: a secret, never logged
    roles     TEXT NOT NULL,    -- JSON list of roles
    kinds     TEXT NOT NULL,    -- JSON list of notice kinds
    added_at  TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE notify_state (
    name           TEXT PRIMARY KEY,
    last_ok        TEXT,
    last_error     TEXT,
    last_error_at  TEXT,
    failures       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE notices (
    id          INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,    -- what makes it once only: an event id, a deadline and day
    subject     TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    next_try    TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    sent_at     TEXT,
    error       TEXT,
    given_up    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (channel, key)
);
CREATE INDEX notices_due ON notices(sent_at, given_up, next_try);
