-- Failed web logins, per username and per client address, so that throttling
-- survives a restart (node/web/auth.py).
CREATE TABLE login_failures (
    key           TEXT PRIMARY KEY,    -- 'user:<username>' or 'addr:<client address>'
    failures      INTEGER NOT NULL,
    first_at      TEXT NOT NULL,       -- start of the current counting window
    locked_until  TEXT                 -- refused until then (UTC)
);
