-- A re-uploaded statement that no longer supports what an earlier upload of the day did with a
-- channel-only line (长款), once that left the house (the refund handed to the channel, receipts
-- issued), records it as a difference of its own class for staff.
ALTER TABLE reconciliation_items DROP CONSTRAINT reconciliation_items_class_check;
ALTER TABLE reconciliation_items ADD CONSTRAINT reconciliation_items_class_check CHECK (class IN ('channel_only',
    'platform_only', 'amount_mismatch', 'duplicate', 'refund_unknown', 'other_day', 'superseded_action'));
-- Payments booked from a statement (长款) are read per channel and day on every re-upload.
CREATE INDEX payments_statement_bookings ON payments (channel_id, paid_on) WHERE fingerprint LIKE 'statement:%';
