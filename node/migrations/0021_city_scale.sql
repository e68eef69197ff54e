-- Issue 19: the city at a year's size. What the city's pages ask on every load, answered
-- from an index instead of the case rows (a case row is 1-2 KB with its text: counting a
-- few cases among 100,000 held by one unit read every one of them). Only indexes.
-- What waits at a unit (cases.waiting_here on every page, the inbox): cases escalated here
-- and not yet decided, referrals to sign for; counted from the index alone.
CREATE INDEX cases_waiting ON cases(holder, handover, state, origin_node);
-- ... and their pages, newest first (the inbox, from-above: none pending read every case
-- held here).
CREATE INDEX cases_handover_page ON cases(holder, handover, registered_on);
-- Cases urged (催办) held here: the urges waiting and the from-above list.
CREATE INDEX cases_urged ON cases(holder, registered_on) WHERE urge_count > 0;
-- The reception log and a leader's 包案 cases (node/reception.py).
CREATE INDEX cases_reception ON cases(origin_node, registered_on) WHERE channel = 'leader_day';
CREATE INDEX cases_lead ON cases(lead_account, lead_unit) WHERE lead_account IS NOT NULL;
-- The search index's refresh compares each case's count of events and last change.
CREATE INDEX cases_search ON cases(id, event_count, updated_at);
-- A search's matches are joined to their cases by the document's rowid: without this each
-- match scanned search_state, and a common word at a city took a minute (51,550 cases).
CREATE UNIQUE INDEX search_state_doc ON search_state(doc);
