-- The tables PostgreSQL's 0012 adds for a province on Citus (issue 20), so that the SQL both
-- backends share writes them alike. SQLite keeps its keys as they were (without the region where
-- PostgreSQL now has it): one file is one machine, so the stricter keys and the unique index
-- enrolments_once_per_year stay and hold the same rules.

-- Where a person is on record, by ID number: one row per persons row.
CREATE TABLE person_directory (
    id_number   TEXT NOT NULL,
    region_code TEXT NOT NULL REFERENCES pooling_regions (region_code),
    PRIMARY KEY (id_number, region_code)
) STRICT;
INSERT INTO person_directory (id_number, region_code) SELECT id_number, region_code FROM persons;

-- One resident enrolment per person and fee year across all regions: a row for every enrolled
-- enrolment (here the unique index enrolments_once_per_year says the same).
CREATE TABLE enrolment_claims (
    id_number   TEXT    NOT NULL,
    fee_year    INTEGER NOT NULL,
    region_code TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    PRIMARY KEY (id_number, fee_year)
) STRICT;
INSERT INTO enrolment_claims (id_number, fee_year, region_code)
SELECT id_number, fee_year, region_code FROM enrolments WHERE status = 'enrolled';

-- A payment or refund without a region belongs to its order's region, else the region of what it
-- applied, else the channel's first region, else 000000 (no region), as on PostgreSQL.
UPDATE payments SET region_code = COALESCE(
    (SELECT o.region_code FROM orders o WHERE o.order_no = payments.order_no),
    (SELECT min(a.region_code) FROM payment_applications a WHERE a.payment_no = payments.payment_no),
    (SELECT min(r.region_code) FROM channel_regions r WHERE r.channel_id = payments.channel_id),
    '000000')
WHERE region_code IS NULL;
UPDATE refunds SET region_code = (SELECT p.region_code FROM payments p WHERE p.payment_no = refunds.payment_no)
WHERE region_code IS NULL;

-- The channels' idempotency keys record the region and number of the payment or order they made.
ALTER TABLE channel_keys ADD COLUMN region_code TEXT;
ALTER TABLE channel_keys ADD COLUMN target TEXT;
CREATE TRIGGER channel_keys_target_pair_update BEFORE UPDATE ON channel_keys
WHEN (NEW.region_code IS NULL) <> (NEW.target IS NULL)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: channel_keys_target_pair');
END;
CREATE TRIGGER channel_keys_target_pair_insert BEFORE INSERT ON channel_keys
WHEN (NEW.region_code IS NULL) <> (NEW.target IS NULL)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: channel_keys_target_pair');
END;
INSERT INTO channel_keys (channel_id, key, touches, region_code, target)
SELECT channel_id, 'txn:' || channel_txn_id, 1, region_code, payment_no FROM payments WHERE true
ON CONFLICT (channel_id, key) DO UPDATE SET region_code = excluded.region_code, target = excluded.target;
INSERT INTO channel_keys (channel_id, key, touches, region_code, target)
SELECT channel_id, 'order:' || channel_order_no, 1, region_code, order_no FROM orders WHERE true
ON CONFLICT (channel_id, key) DO UPDATE SET region_code = excluded.region_code, target = excluded.target;
