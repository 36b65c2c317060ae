-- Rotating a channel's secret (yibao channel rotate-secret): the previous secret stays valid for a
-- bounded grace period, so a bank can switch its servers over without a window of refused requests.
ALTER TABLE channels ADD COLUMN previous_secret_sealed TEXT
    CHECK (previous_secret_sealed IS NULL OR length(previous_secret_sealed) > 0);
ALTER TABLE channels ADD COLUMN previous_secret_until INTEGER
    CHECK (previous_secret_until IS NULL OR previous_secret_until > 0);
-- Both columns are set together or not at all. SQLite cannot add a table CHECK to an existing
-- table, so triggers hold the pair (PostgreSQL: CHECK channels_previous_secret_pair).
CREATE TRIGGER channels_previous_secret_pair_insert BEFORE INSERT ON channels
WHEN (NEW.previous_secret_sealed IS NULL) <> (NEW.previous_secret_until IS NULL)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: channels_previous_secret_pair');
END;
CREATE TRIGGER channels_previous_secret_pair_update BEFORE UPDATE ON channels
WHEN (NEW.previous_secret_sealed IS NULL) <> (NEW.previous_secret_until IS NULL)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: channels_previous_secret_pair');
END;
