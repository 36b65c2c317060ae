-- Delivered outbox events are pruned after the configured retention (outbox_delivered_kept_days),
-- oldest first in bounded batches; this index finds them without reading the whole outbox.
CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;
