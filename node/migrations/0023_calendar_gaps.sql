-- Issue 19: the admin's banner names the years of stored deadlines that rest on the
-- statutory holidays only (recount.calendar_gaps). Finding them read every case (0.23 s
-- every admin page at a city of 250,000 cases); these give the years by a few seeks.
CREATE INDEX cases_due_provisional ON cases(due_on) WHERE due_provisional = 1;
CREATE INDEX cases_request_provisional ON cases(request_until) WHERE request_provisional = 1;
