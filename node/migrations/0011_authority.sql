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
