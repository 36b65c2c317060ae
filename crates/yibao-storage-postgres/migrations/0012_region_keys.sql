-- Keys carry the region (issue 20): a province on Citus distributes every region table by
-- region_code, and Citus accepts a primary key, unique constraint, partial unique index or foreign key
-- between region tables only when it includes region_code. The rules that span regions (one
-- enrolment per person and fee year; a channel's transaction and order numbers) get tables of their
-- own, keyed by what they guard (enrolment_claims, channel_keys), and a search by ID number, which
-- names no region, reads person_directory first. On plain PostgreSQL all of this holds too: one
-- schema, one code path. An upgrade in place keeps every row: regions that were NULL are filled in
-- from what the row belongs to before they become NOT NULL.

-- Where a person is on record, by ID number (a search names no region): one row per persons row,
-- written in the same transaction.
CREATE TABLE person_directory (
    id_number   TEXT NOT NULL,
    region_code TEXT NOT NULL REFERENCES pooling_regions (region_code),
    PRIMARY KEY (id_number, region_code)
);
INSERT INTO person_directory (id_number, region_code) SELECT id_number, region_code FROM persons;

-- One resident enrolment per person and fee year across all regions (the first wins): a row here for
-- every enrolled enrolment, written in the same transaction; its key is the rule.
CREATE TABLE enrolment_claims (
    id_number   TEXT    NOT NULL,
    fee_year    INTEGER NOT NULL,
    region_code TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    PRIMARY KEY (id_number, fee_year)
);
INSERT INTO enrolment_claims (id_number, fee_year, region_code)
SELECT id_number, fee_year, region_code FROM enrolments WHERE status = 'enrolled';
DROP INDEX enrolments_once_per_year;

-- A payment or refund without a region (nothing could be applied) belongs to its order's region,
-- else the region of what it applied, else the channel's first region, else 000000 (no region).
UPDATE payments p SET region_code = COALESCE(
    (SELECT o.region_code FROM orders o WHERE o.order_no = p.order_no),
    (SELECT min(a.region_code) FROM payment_applications a WHERE a.payment_no = p.payment_no),
    (SELECT min(r.region_code) FROM channel_regions r WHERE r.channel_id = p.channel_id),
    '000000')
WHERE p.region_code IS NULL;
UPDATE refunds f SET region_code = p.region_code FROM payments p
WHERE p.payment_no = f.payment_no AND f.region_code IS DISTINCT FROM p.region_code;
ALTER TABLE payments ALTER COLUMN region_code SET NOT NULL;
ALTER TABLE refunds ALTER COLUMN region_code SET NOT NULL;

-- System entries of the audit log (no region) are kept under the region 000000.
ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update;
UPDATE audit_log SET region_code = '000000' WHERE region_code IS NULL;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;
ALTER TABLE audit_log ALTER COLUMN region_code SET NOT NULL;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_region_code CHECK (region_code ~ '^[0-9]{6}$');

-- The channels' idempotency keys across regions: channel_keys (distributed by channel) records, per
-- (channel, 'txn:' or 'order:' + number), the region and number of the payment or order it made.
ALTER TABLE channel_keys ADD COLUMN region_code TEXT;
ALTER TABLE channel_keys ADD COLUMN target TEXT;
ALTER TABLE channel_keys ADD CONSTRAINT channel_keys_target_pair CHECK ((region_code IS NULL) = (target IS NULL));
INSERT INTO channel_keys (channel_id, key, touches, region_code, target)
SELECT channel_id, 'txn:' || channel_txn_id, 1, region_code, payment_no FROM payments
ON CONFLICT (channel_id, key) DO UPDATE SET region_code = excluded.region_code, target = excluded.target;
INSERT INTO channel_keys (channel_id, key, touches, region_code, target)
SELECT channel_id, 'order:' || channel_order_no, 1, region_code, order_no FROM orders
ON CONFLICT (channel_id, key) DO UPDATE SET region_code = excluded.region_code, target = excluded.target;

-- Foreign keys between region tables go, then every key leads with the region, then they come back
-- with the region in them.
ALTER TABLE payables DROP CONSTRAINT payables_supersedes_fkey;
ALTER TABLE order_items DROP CONSTRAINT order_items_order_no_fkey;
ALTER TABLE order_items DROP CONSTRAINT order_items_payable_id_fkey;
ALTER TABLE payment_applications DROP CONSTRAINT payment_applications_payable_id_fkey;
ALTER TABLE payment_applications DROP CONSTRAINT payment_applications_payment_no_fkey;
ALTER TABLE payments DROP CONSTRAINT payments_order_no_fkey;
ALTER TABLE receipts DROP CONSTRAINT receipts_payable_id_fkey;
ALTER TABLE receipts DROP CONSTRAINT receipts_payment_no_fkey;
ALTER TABLE receipts DROP CONSTRAINT receipts_receipt_code_fkey;
ALTER TABLE refunds DROP CONSTRAINT refunds_payment_no_fkey;
ALTER TABLE debit_agreement_members DROP CONSTRAINT debit_agreement_members_agreement_no_fkey;
ALTER TABLE debit_run_items DROP CONSTRAINT debit_run_items_run_no_fkey;

ALTER TABLE person_history DROP CONSTRAINT person_history_pkey,
    ADD PRIMARY KEY (region_code, history_id);
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey, ADD PRIMARY KEY (region_code, audit_id);
ALTER TABLE payables DROP CONSTRAINT payables_pkey, ADD PRIMARY KEY (region_code, payable_id);
DROP INDEX payables_one_current;
CREATE UNIQUE INDEX payables_one_current ON payables (region_code, fee_year, id_number)
    WHERE status NOT IN ('superseded', 'cancelled');
ALTER TABLE orders DROP CONSTRAINT orders_pkey, ADD PRIMARY KEY (region_code, order_no);
ALTER TABLE orders DROP CONSTRAINT orders_channel_id_channel_order_no_key,
    ADD CONSTRAINT orders_channel_order_no UNIQUE (region_code, channel_id, channel_order_no);
ALTER TABLE order_items DROP CONSTRAINT order_items_pkey, ADD PRIMARY KEY (region_code, order_no, payable_id);
ALTER TABLE payments DROP CONSTRAINT payments_pkey, ADD PRIMARY KEY (region_code, payment_no);
ALTER TABLE payments DROP CONSTRAINT payments_channel_id_channel_txn_id_key,
    ADD CONSTRAINT payments_channel_txn_id UNIQUE (region_code, channel_id, channel_txn_id);
ALTER TABLE payment_applications DROP CONSTRAINT payment_applications_pkey,
    ADD PRIMARY KEY (region_code, payment_no, payable_id);
DROP INDEX payment_applications_pay_once;
CREATE UNIQUE INDEX payment_applications_pay_once ON payment_applications (region_code, payable_id) WHERE active;
ALTER TABLE refunds DROP CONSTRAINT refunds_pkey, ADD PRIMARY KEY (region_code, refund_no);
ALTER TABLE receipt_counters DROP CONSTRAINT receipt_counters_pkey, ADD PRIMARY KEY (region_code, receipt_code);
ALTER TABLE receipts DROP CONSTRAINT receipts_pkey, ADD PRIMARY KEY (region_code, receipt_code, receipt_number);
ALTER TABLE outbox DROP CONSTRAINT outbox_pkey, ADD PRIMARY KEY (region_code, seq);
ALTER TABLE outbox DROP CONSTRAINT outbox_event_id_key, ADD CONSTRAINT outbox_event_id UNIQUE (region_code, event_id);
ALTER TABLE debit_agreements DROP CONSTRAINT debit_agreements_pkey, ADD PRIMARY KEY (region_code, agreement_no);
ALTER TABLE debit_agreement_members DROP CONSTRAINT debit_agreement_members_pkey,
    ADD PRIMARY KEY (region_code, agreement_no, id_number);
ALTER TABLE debit_runs DROP CONSTRAINT debit_runs_pkey, ADD PRIMARY KEY (region_code, run_no);
ALTER TABLE debit_run_items DROP CONSTRAINT debit_run_items_pkey, ADD PRIMARY KEY (region_code, run_no, seq);
ALTER TABLE debit_run_items DROP CONSTRAINT debit_run_items_item_ref_key,
    ADD CONSTRAINT debit_run_items_item_ref UNIQUE (region_code, item_ref);

ALTER TABLE payables ADD CONSTRAINT payables_supersedes_fkey
    FOREIGN KEY (region_code, supersedes) REFERENCES payables (region_code, payable_id);
ALTER TABLE order_items ADD CONSTRAINT order_items_order_no_fkey
    FOREIGN KEY (region_code, order_no) REFERENCES orders (region_code, order_no);
ALTER TABLE order_items ADD CONSTRAINT order_items_payable_id_fkey
    FOREIGN KEY (region_code, payable_id) REFERENCES payables (region_code, payable_id);
ALTER TABLE payments ADD CONSTRAINT payments_order_no_fkey
    FOREIGN KEY (region_code, order_no) REFERENCES orders (region_code, order_no);
ALTER TABLE payment_applications ADD CONSTRAINT payment_applications_payable_id_fkey
    FOREIGN KEY (region_code, payable_id) REFERENCES payables (region_code, payable_id);
ALTER TABLE payment_applications ADD CONSTRAINT payment_applications_payment_no_fkey
    FOREIGN KEY (region_code, payment_no) REFERENCES payments (region_code, payment_no);
ALTER TABLE receipts ADD CONSTRAINT receipts_payable_id_fkey
    FOREIGN KEY (region_code, payable_id) REFERENCES payables (region_code, payable_id);
ALTER TABLE receipts ADD CONSTRAINT receipts_payment_no_fkey
    FOREIGN KEY (region_code, payment_no) REFERENCES payments (region_code, payment_no);
ALTER TABLE receipts ADD CONSTRAINT receipts_receipt_code_fkey
    FOREIGN KEY (region_code, receipt_code) REFERENCES receipt_counters (region_code, receipt_code);
ALTER TABLE refunds ADD CONSTRAINT refunds_payment_no_fkey
    FOREIGN KEY (region_code, payment_no) REFERENCES payments (region_code, payment_no);
ALTER TABLE debit_agreement_members ADD CONSTRAINT debit_agreement_members_agreement_no_fkey
    FOREIGN KEY (region_code, agreement_no) REFERENCES debit_agreements (region_code, agreement_no);
ALTER TABLE debit_run_items ADD CONSTRAINT debit_run_items_run_no_fkey
    FOREIGN KEY (region_code, run_no) REFERENCES debit_runs (region_code, run_no);
