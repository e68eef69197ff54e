-- Personal fields that never go above a tier (node/disclosure.py): the values
-- of an event's committed fields travel beside it, so the store keeps them
-- beside the signed body; a petitioner's field withheld from this tier is
-- recorded with the tier it stays at.
ALTER TABLE events ADD COLUMN disclosed TEXT;  -- canonical JSON {path: [salt, value]}, or NULL
ALTER TABLE petitioners ADD COLUMN withheld TEXT;  -- JSON {field: tier it stays at}, or NULL
