-- A supervision order's number is unique within its case, not across the
-- store: an issuer reusing a number on another case must not break applying
-- events. SQLite cannot change a primary key in place, so copy the table.
CREATE TABLE supervision_orders_new (
    id              TEXT NOT NULL,
    case_id         TEXT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    issuer          TEXT NOT NULL,
    target          TEXT NOT NULL,
    instruction     TEXT NOT NULL,
    deadline        TEXT NOT NULL,
    status          TEXT NOT NULL,
    issued_on       TEXT NOT NULL,
    acknowledged_on TEXT,
    feedback        TEXT,
    feedback_on     TEXT,
    closed_on       TEXT,
    PRIMARY KEY (case_id, id)
);
INSERT INTO supervision_orders_new SELECT id, case_id, issuer, target, instruction, deadline,
    status, issued_on, acknowledged_on, feedback, feedback_on, closed_on FROM supervision_orders;
DROP TABLE supervision_orders;
ALTER TABLE supervision_orders_new RENAME TO supervision_orders;
