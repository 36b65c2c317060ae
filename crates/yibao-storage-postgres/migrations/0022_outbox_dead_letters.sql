-- Dead letters (outbox events that ran out of attempts) are counted for the metrics every
-- 15 seconds; without this index that count reads the whole outbox (30 days of events).
CREATE INDEX outbox_dead_letters ON outbox (seq) WHERE dead;
