-- Issue 19: every list filtered and paged in SQL (node/cases/query.py), newest first by
-- (registered_on, id); counts from the same conditions. Only indexes: nothing to fill.
CREATE INDEX cases_page ON cases(registered_on, id);
CREATE INDEX cases_origin ON cases(origin_node, registered_on);
CREATE INDEX cases_holder_page ON cases(holder, registered_on);
CREATE INDEX cases_category ON cases(category, registered_on);
CREATE INDEX cases_state_page ON cases(state, registered_on);
CREATE INDEX cases_referred ON cases(referred_by) WHERE referred_by IS NOT NULL;
CREATE INDEX warnings_page ON warnings(raised_at, id);
CREATE INDEX warnings_origin ON warnings(origin_node, raised_at);
