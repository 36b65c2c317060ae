-- Settlement: bank auto-debit agreements and runs (委托扣款), reconciliation of channel statements
-- (对账), and the full refund lifecycle.

-- Refunds owed for every source, not only payment reports: a channel-only statement line refunded by
-- policy, a re-assessment, a resident who joined employee insurance, a reversal after settlement.
ALTER TABLE refunds DROP CONSTRAINT refunds_reason_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_reason_check CHECK (reason IN ('ALREADY_PAID', 'AMOUNT_MISMATCH',
    'NOT_PAYABLE', 'REVERSED_EARLIER', 'CHANNEL_ONLY', 'REASSESSED', 'EMPLOYEE_INSURANCE', 'REVERSED_AFTER_SETTLEMENT'));
-- How many times the refund was handed to the channel; bounded (MAX_REFUND_ATTEMPTS in code).
ALTER TABLE refunds ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts BETWEEN 0 AND 10);
-- The day the refund succeeded, for daily totals.
ALTER TABLE refunds ADD COLUMN settled_on DATE;
ALTER TABLE refunds ADD COLUMN payable_id TEXT;
CREATE INDEX refunds_by_status_due ON refunds (status, due);
CREATE INDEX refunds_by_settled_on ON refunds (settled_on) WHERE settled_on IS NOT NULL;

-- What to do with money a channel took and never reported (长款/单边账): refund it, or apply it to
-- the order it was taken for.
ALTER TABLE channels ADD COLUMN channel_only_policy TEXT NOT NULL DEFAULT 'refund'
    CHECK (channel_only_policy IN ('refund', 'apply'));

-- Auto-debit agreements (委托扣款协议), signed with a bank (a channel of kind auto_debit) by a payer
-- for themself or a family.
CREATE TABLE debit_agreements (
    agreement_no     TEXT    NOT NULL PRIMARY KEY,
    region_code      TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    channel_id       TEXT    NOT NULL REFERENCES channels (channel_id),
    payer_id_number  TEXT    NOT NULL,
    payer_name       TEXT    NOT NULL,
    account_masked   TEXT    NOT NULL CHECK (length(account_masked) BETWEEN 4 AND 32),
    status           TEXT    NOT NULL CHECK (status IN ('active', 'cancelled')),
    signed_on        DATE    NOT NULL,
    cancelled_on     DATE,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status = 'cancelled') = (cancelled_on IS NOT NULL))
);

CREATE TABLE debit_agreement_members (
    agreement_no TEXT    NOT NULL REFERENCES debit_agreements (agreement_no),
    region_code  TEXT    NOT NULL,
    id_number    TEXT    NOT NULL,
    active       BOOLEAN NOT NULL,
    PRIMARY KEY (agreement_no, id_number)
);
-- A person is debited under one active agreement at most.
CREATE UNIQUE INDEX debit_members_one_active ON debit_agreement_members (region_code, id_number) WHERE active;

-- Debit runs (扣款批次): one per bank, region, fee year and debit date; each item attempted once.
CREATE TABLE debit_runs (
    run_no        TEXT    NOT NULL PRIMARY KEY,
    region_code   TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    channel_id    TEXT    NOT NULL REFERENCES channels (channel_id),
    fee_year      INTEGER NOT NULL,
    debit_date    DATE    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('sent', 'completed', 'abandoned')),
    item_count    BIGINT  NOT NULL CHECK (item_count >= 0),
    total_fen     BIGINT  NOT NULL CHECK (total_fen >= 0),
    lock_until    BIGINT  NOT NULL,
    result_sha256 TEXT,
    result_summary TEXT,
    created_at    BIGINT  NOT NULL,
    completed_at  BIGINT,
    UNIQUE (channel_id, region_code, fee_year, debit_date)
);
CREATE INDEX debit_runs_open ON debit_runs (lock_until) WHERE status = 'sent';

CREATE TABLE debit_run_items (
    run_no        TEXT    NOT NULL REFERENCES debit_runs (run_no),
    seq           BIGINT  NOT NULL CHECK (seq >= 1),
    item_ref      TEXT    NOT NULL UNIQUE,
    region_code   TEXT    NOT NULL,
    payable_id    TEXT    NOT NULL,
    agreement_no  TEXT    NOT NULL,
    id_number     TEXT    NOT NULL,
    amount_fen    BIGINT  NOT NULL CHECK (amount_fen > 0),
    outcome       TEXT    NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'failed', 'released')),
    bank_txn_id   TEXT,
    failure_code  TEXT,
    failure_reason TEXT,
    payment_no    TEXT,
    PRIMARY KEY (run_no, seq)
);
CREATE INDEX debit_run_items_by_payable ON debit_run_items (payable_id);

-- Statements: the format uploaded, the file's hash, funds-level totals.
ALTER TABLE statements ADD COLUMN format TEXT NOT NULL DEFAULT 'protocol'
    CHECK (format IN ('protocol', 'wechat', 'alipay'));
ALTER TABLE statements ADD COLUMN file_sha256 TEXT NOT NULL DEFAULT '';

-- Differences found by reconciliation and what became of them. Matched lines are only counted.
CREATE TABLE reconciliation_items (
    channel_id      TEXT    NOT NULL REFERENCES channels (channel_id),
    statement_date  DATE    NOT NULL,
    channel_txn_id  TEXT    NOT NULL,
    class           TEXT    NOT NULL CHECK (class IN ('channel_only', 'platform_only', 'amount_mismatch',
                        'duplicate', 'refund_unknown', 'other_day')),
    region_code     TEXT,
    payment_no      TEXT,
    platform_fen    BIGINT  NOT NULL,
    channel_fen     BIGINT  NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('open', 'carried', 'escalated', 'resolved')),
    resolution      TEXT,
    note            TEXT,
    resolved_by     TEXT,
    updated_at      BIGINT  NOT NULL,
    PRIMARY KEY (channel_id, statement_date, channel_txn_id, class)
);
CREATE INDEX reconciliation_items_carried ON reconciliation_items (channel_id, status) WHERE status IN ('open', 'carried', 'escalated');
CREATE INDEX payments_by_region_day ON payments (paid_on, region_code);
-- A channel's payments of a day in byte order: reconciliation reads them page by page in this order,
-- the order Rust sorts the statement in.
CREATE INDEX payments_statement_order ON payments (channel_id, paid_on, channel_txn_id COLLATE "C");
DROP INDEX payments_by_day;
