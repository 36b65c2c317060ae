-- Debit-run outcomes told to the resident (扣款结果通知, issue 19): when a bank's result file is
-- imported, each item it answered (succeeded, failed for want of balance, failed for another
-- reason) becomes one text message to the debited resident's mobile phone on record, unless they
-- turned reminders off; sent by the citizen site's sender like a payment reminder. One row per
-- item, whatever imports the file again: the primary key decides.
CREATE TABLE debit_notices (
    region_code TEXT    NOT NULL,
    run_no      TEXT    NOT NULL,
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    message_id  TEXT    NOT NULL,
    fee_year    INTEGER NOT NULL CHECK (fee_year BETWEEN 2000 AND 2100),
    kind        TEXT    NOT NULL CHECK (kind IN ('succeeded', 'insufficient_balance', 'failed')),
    queued_at   INTEGER NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('queued', 'sent', 'failed')),
    PRIMARY KEY (region_code, run_no, seq)
) STRICT;
CREATE UNIQUE INDEX debit_notices_by_message ON debit_notices (region_code, message_id);
CREATE INDEX debit_notices_by_year ON debit_notices (region_code, fee_year, outcome);
