-- The subjects (cases, warnings) whose history a neighbour has been sent
-- (node/sync/policy.py): the first event of a subject a neighbour may have is
-- preceded by everything earlier, once.
CREATE TABLE link_subjects (
    peer     TEXT NOT NULL REFERENCES links(peer),
    subject  TEXT NOT NULL,
    PRIMARY KEY (peer, subject)
) WITHOUT ROWID;
