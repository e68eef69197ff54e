-- One-time enrollment codes a parent's admin hands to a child's admin.
CREATE TABLE enroll_codes (
    id           TEXT PRIMARY KEY,        -- the code's first group, said aloud to find it
    mac_key      BLOB NOT NULL,           -- derived from the code (SHA-256); the code is not kept
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used_at      TEXT,
    used_by      TEXT
);
