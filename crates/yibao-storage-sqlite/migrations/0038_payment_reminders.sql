-- Payment reminders (缴费提醒, issue 19): one row per text message queued to remind a resident of
-- an unpaid contribution before the window closes, and what became of it (queued, sent, failed,
-- or cancelled because the payable was paid before it went out). `period` numbers the region's
-- reminder interval the message was queued in (days since 1970-01-01 divided by the interval in
-- days): the unique index holds a payable to one reminder per period, whatever races to queue it.
-- Kept after the message itself is pruned from message_outbox, for the counts and the interval.
CREATE TABLE payment_reminders (
    region_code TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    payable_id  TEXT    NOT NULL,
    fee_year    INTEGER NOT NULL CHECK (fee_year BETWEEN 2000 AND 2100),
    period      INTEGER NOT NULL,
    queued_at   INTEGER NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('queued', 'sent', 'failed', 'cancelled')),
    PRIMARY KEY (region_code, message_id)
) STRICT;
CREATE UNIQUE INDEX payment_reminders_one_per_period ON payment_reminders (region_code, payable_id, period);
CREATE INDEX payment_reminders_by_payable ON payment_reminders (region_code, payable_id, queued_at);
CREATE INDEX payment_reminders_by_year ON payment_reminders (region_code, fee_year, outcome);
