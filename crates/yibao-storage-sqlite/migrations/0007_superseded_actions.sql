-- A re-uploaded statement that no longer supports what an earlier upload of the day did with a
-- channel-only line (长款), once that left the house (the refund handed to the channel, receipts
-- issued), records it as a difference of its own class for staff. SQLite cannot alter a CHECK, so
-- reconciliation_items is rebuilt, every row kept.
CREATE TABLE reconciliation_items_new (
    channel_id      TEXT    NOT NULL REFERENCES channels (channel_id),
    statement_date  TEXT    NOT NULL CHECK (date(statement_date) = statement_date),
    channel_txn_id  TEXT    NOT NULL,
    class           TEXT    NOT NULL CHECK (class IN ('channel_only', 'platform_only', 'amount_mismatch',
                        'duplicate', 'refund_unknown', 'other_day', 'superseded_action')),
    region_code     TEXT,
    payment_no      TEXT,
    platform_fen    INTEGER NOT NULL,
    channel_fen     INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('open', 'carried', 'escalated', 'resolved')),
    resolution      TEXT,
    note            TEXT,
    resolved_by     TEXT,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (channel_id, statement_date, channel_txn_id, class)
) STRICT;
INSERT INTO reconciliation_items_new (channel_id, statement_date, channel_txn_id, class, region_code, payment_no,
    platform_fen, channel_fen, status, resolution, note, resolved_by, updated_at)
    SELECT channel_id, statement_date, channel_txn_id, class, region_code, payment_no, platform_fen, channel_fen,
           status, resolution, note, resolved_by, updated_at FROM reconciliation_items;
DROP TABLE reconciliation_items;
ALTER TABLE reconciliation_items_new RENAME TO reconciliation_items;
CREATE INDEX reconciliation_items_carried ON reconciliation_items (channel_id, status) WHERE status IN ('open', 'carried', 'escalated');
-- Payments booked from a statement (长款) are read per channel and day on every re-upload.
CREATE INDEX payments_statement_bookings ON payments (channel_id, paid_on) WHERE fingerprint LIKE 'statement:%';
