-- Settlement: bank auto-debit agreements and runs (委托扣款), reconciliation of channel statements
-- (对账), and the full refund lifecycle. SQLite cannot alter a CHECK, so refunds is rebuilt.

CREATE TABLE refunds_new (
    refund_no         TEXT    NOT NULL PRIMARY KEY,
    channel_id        TEXT    NOT NULL REFERENCES channels (channel_id),
    payment_no        TEXT    NOT NULL REFERENCES payments (payment_no),
    channel_txn_id    TEXT    NOT NULL,
    region_code       TEXT,
    amount_fen        INTEGER NOT NULL CHECK (amount_fen > 0),
    reason            TEXT    NOT NULL CHECK (reason IN ('ALREADY_PAID', 'AMOUNT_MISMATCH', 'NOT_PAYABLE',
                          'REVERSED_EARLIER', 'CHANNEL_ONLY', 'REASSESSED', 'EMPLOYEE_INSURANCE', 'REVERSED_AFTER_SETTLEMENT')),
    status            TEXT    NOT NULL CHECK (status IN ('owed', 'sent', 'succeeded', 'failed', 'cancelled')),
    due               TEXT    NOT NULL CHECK (date(due) = due),
    channel_refund_id TEXT,
    failure_reason    TEXT,
    created_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    attempts          INTEGER NOT NULL DEFAULT 0 CHECK (attempts BETWEEN 0 AND 10),
    settled_on        TEXT    CHECK (settled_on IS NULL OR date(settled_on) = settled_on),
    payable_id        TEXT
) STRICT;
INSERT INTO refunds_new (refund_no, channel_id, payment_no, channel_txn_id, region_code, amount_fen, reason,
    status, due, channel_refund_id, failure_reason, created_at, updated_at)
    SELECT refund_no, channel_id, payment_no, channel_txn_id, region_code, amount_fen, reason, status, due,
           channel_refund_id, failure_reason, created_at, updated_at FROM refunds;
DROP TABLE refunds;
ALTER TABLE refunds_new RENAME TO refunds;
CREATE INDEX refunds_by_channel_status ON refunds (channel_id, status);
CREATE INDEX refunds_by_payment ON refunds (payment_no);
CREATE INDEX refunds_by_status_due ON refunds (status, due);
CREATE INDEX refunds_by_settled_on ON refunds (settled_on) WHERE settled_on IS NOT NULL;

ALTER TABLE channels ADD COLUMN channel_only_policy TEXT NOT NULL DEFAULT 'refund'
    CHECK (channel_only_policy IN ('refund', 'apply'));

CREATE TABLE debit_agreements (
    agreement_no     TEXT    NOT NULL PRIMARY KEY,
    region_code      TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    channel_id       TEXT    NOT NULL REFERENCES channels (channel_id),
    payer_id_number  TEXT    NOT NULL,
    payer_name       TEXT    NOT NULL,
    account_masked   TEXT    NOT NULL CHECK (length(account_masked) BETWEEN 4 AND 32),
    status           TEXT    NOT NULL CHECK (status IN ('active', 'cancelled')),
    signed_on        TEXT    NOT NULL CHECK (date(signed_on) = signed_on),
    cancelled_on     TEXT    CHECK (cancelled_on IS NULL OR date(cancelled_on) = cancelled_on),
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK ((status = 'cancelled') = (cancelled_on IS NOT NULL))
) STRICT;

CREATE TABLE debit_agreement_members (
    agreement_no TEXT    NOT NULL REFERENCES debit_agreements (agreement_no),
    region_code  TEXT    NOT NULL,
    id_number    TEXT    NOT NULL,
    active       INTEGER NOT NULL CHECK (active IN (0, 1)),
    PRIMARY KEY (agreement_no, id_number)
) STRICT;
CREATE UNIQUE INDEX debit_members_one_active ON debit_agreement_members (region_code, id_number) WHERE active = 1;

CREATE TABLE debit_runs (
    run_no        TEXT    NOT NULL PRIMARY KEY,
    region_code   TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    channel_id    TEXT    NOT NULL REFERENCES channels (channel_id),
    fee_year      INTEGER NOT NULL,
    debit_date    TEXT    NOT NULL CHECK (date(debit_date) = debit_date),
    status        TEXT    NOT NULL CHECK (status IN ('sent', 'completed', 'abandoned')),
    item_count    INTEGER NOT NULL CHECK (item_count >= 0),
    total_fen     INTEGER NOT NULL CHECK (total_fen >= 0),
    lock_until    INTEGER NOT NULL,
    result_sha256 TEXT,
    result_summary TEXT,
    created_at    INTEGER NOT NULL,
    completed_at  INTEGER,
    UNIQUE (channel_id, region_code, fee_year, debit_date)
) STRICT;
CREATE INDEX debit_runs_open ON debit_runs (lock_until) WHERE status = 'sent';

CREATE TABLE debit_run_items (
    run_no        TEXT    NOT NULL REFERENCES debit_runs (run_no),
    seq           INTEGER NOT NULL CHECK (seq >= 1),
    item_ref      TEXT    NOT NULL UNIQUE,
    region_code   TEXT    NOT NULL,
    payable_id    TEXT    NOT NULL,
    agreement_no  TEXT    NOT NULL,
    id_number     TEXT    NOT NULL,
    amount_fen    INTEGER NOT NULL CHECK (amount_fen > 0),
    outcome       TEXT    NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'failed', 'released')),
    bank_txn_id   TEXT,
    failure_code  TEXT,
    failure_reason TEXT,
    payment_no    TEXT,
    PRIMARY KEY (run_no, seq)
) STRICT;
CREATE INDEX debit_run_items_by_payable ON debit_run_items (payable_id);

ALTER TABLE statements ADD COLUMN format TEXT NOT NULL DEFAULT 'protocol'
    CHECK (format IN ('protocol', 'wechat', 'alipay'));
ALTER TABLE statements ADD COLUMN file_sha256 TEXT NOT NULL DEFAULT '';

CREATE TABLE reconciliation_items (
    channel_id      TEXT    NOT NULL REFERENCES channels (channel_id),
    statement_date  TEXT    NOT NULL CHECK (date(statement_date) = statement_date),
    channel_txn_id  TEXT    NOT NULL,
    class           TEXT    NOT NULL CHECK (class IN ('channel_only', 'platform_only', 'amount_mismatch',
                        'duplicate', 'refund_unknown', 'other_day')),
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
CREATE INDEX reconciliation_items_carried ON reconciliation_items (channel_id, status) WHERE status IN ('open', 'carried', 'escalated');
CREATE INDEX payments_by_region_day ON payments (paid_on, region_code);
-- A channel's payments of a day in byte order (SQLite's default collation), for reconciliation.
CREATE INDEX payments_statement_order ON payments (channel_id, paid_on, channel_txn_id);
DROP INDEX payments_by_day;
