-- The same-day chain of a warning: when each node above the origin received
-- it, and the alarm a node raised for not acknowledging it in time. Both are
-- derived from warning.received / warning.alarmed events (node/warnings.py).
CREATE TABLE warning_receipts (
    warning_id  TEXT NOT NULL REFERENCES warnings(id) ON DELETE CASCADE,
    node_id     TEXT NOT NULL,
    at          TEXT NOT NULL,           -- in the node's time zone, for people
    ts          TEXT NOT NULL,           -- the receipt event's UTC time, for the alarm's clock
    PRIMARY KEY (warning_id, node_id)
);

CREATE TABLE warning_alarms (
    warning_id  TEXT NOT NULL REFERENCES warnings(id) ON DELETE CASCADE,
    node_id     TEXT NOT NULL,           -- the node that did not acknowledge in time
    hours       INTEGER NOT NULL,        -- its WARNING_ACK_HOURS when it raised the alarm
    at          TEXT NOT NULL,
    PRIMARY KEY (warning_id, node_id)
);
