-- Rotating a channel's secret (yibao channel rotate-secret): the previous secret stays valid for a
-- bounded grace period, so a bank can switch its servers over without a window of refused requests.
-- Both columns are set together or not at all.
ALTER TABLE channels ADD COLUMN previous_secret_sealed TEXT;
ALTER TABLE channels ADD COLUMN previous_secret_until BIGINT;
ALTER TABLE channels ADD CONSTRAINT channels_previous_secret_pair
    CHECK ((previous_secret_sealed IS NULL) = (previous_secret_until IS NULL));
