-- Collection (税务征收): channels, replay protection, orders, payments and what they applied,
-- refunds owed, reversals, electronic receipts, and the outbox that posts payments to the agency.

CREATE TABLE channels (
    channel_id      TEXT    NOT NULL PRIMARY KEY,
    kind            TEXT    NOT NULL CHECK (kind IN ('bank_counter', 'atm', 'pos', 'mobile_banking',
                        'online_banking', 'wechat', 'alipay', 'unionpay', 'gov_app', 'kiosk',
                        'village_agent', 'auto_debit')),
    -- The HMAC secret sealed with the server's master key (ChaCha20-Poly1305), or marked plain when
    -- no master key is configured.
    secret_sealed   TEXT    NOT NULL,
    rate_per_second INTEGER NOT NULL CHECK (rate_per_second BETWEEN 1 AND 100000),
    enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE TABLE channel_regions (
    channel_id  TEXT    NOT NULL REFERENCES channels (channel_id),
    region_code TEXT NOT NULL REFERENCES pooling_regions (region_code),
    PRIMARY KEY (channel_id, region_code)
) STRICT;

-- Nonces seen in the last 15 minutes, per channel: a second use is a replay.
CREATE TABLE channel_nonces (
    channel_id TEXT   NOT NULL,
    nonce      TEXT   NOT NULL,
    seen_at    INTEGER NOT NULL,
    PRIMARY KEY (channel_id, nonce)
) STRICT;
CREATE INDEX channel_nonces_by_age ON channel_nonces (seen_at);


-- One row per (channel, transaction or order number), upserted first by every payment report,
-- reversal and order of that key: it serialises them, so a reversal and its payment cannot both
-- miss each other.
CREATE TABLE channel_keys (
    channel_id TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    touches    INTEGER NOT NULL,
    PRIMARY KEY (channel_id, key)
) STRICT;

ALTER TABLE payables ADD COLUMN locked_by TEXT;
ALTER TABLE payables ADD COLUMN locked_until INTEGER;

CREATE TABLE orders (
    order_no          TEXT    NOT NULL PRIMARY KEY,
    channel_id        TEXT    NOT NULL REFERENCES channels (channel_id),
    channel_order_no  TEXT    NOT NULL,
    region_code       TEXT NOT NULL,
    amount_fen        INTEGER NOT NULL CHECK (amount_fen > 0),
    payer_name        TEXT,
    payer_phone       TEXT,
    status            TEXT    NOT NULL CHECK (status IN ('open', 'paid', 'cancelled', 'expired')),
    expires_at        INTEGER NOT NULL,
    fingerprint       TEXT    NOT NULL,
    response          TEXT    NOT NULL,
    created_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (channel_id, channel_order_no)
) STRICT;

CREATE TABLE order_items (
    order_no    TEXT    NOT NULL REFERENCES orders (order_no),
    payable_id  TEXT    NOT NULL REFERENCES payables (payable_id),
    region_code TEXT NOT NULL,
    PRIMARY KEY (order_no, payable_id)
) STRICT;

CREATE TABLE payments (
    payment_no     TEXT    NOT NULL PRIMARY KEY,
    channel_id     TEXT    NOT NULL REFERENCES channels (channel_id),
    channel_txn_id TEXT    NOT NULL,
    order_no       TEXT    REFERENCES orders (order_no),
    region_code    TEXT,
    amount_fen     INTEGER NOT NULL CHECK (amount_fen > 0),
    paid_at        TEXT    NOT NULL,
    paid_on        TEXT    NOT NULL CHECK (date(paid_on) = paid_on),
    status         TEXT    NOT NULL CHECK (status IN ('paid', 'partially_refunded', 'refund_pending', 'refunded', 'reversed')),
    fingerprint    TEXT    NOT NULL,
    response       TEXT    NOT NULL,
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- Idempotency per (channel, id): a second report of the same transaction finds this row.
    UNIQUE (channel_id, channel_txn_id)
) STRICT;

-- What a payment applied to. At most one active application per payable: pay once, whatever
-- channels race for it.
CREATE TABLE payment_applications (
    payment_no  TEXT    NOT NULL REFERENCES payments (payment_no),
    payable_id  TEXT    NOT NULL REFERENCES payables (payable_id),
    region_code TEXT NOT NULL,
    amount_fen  INTEGER NOT NULL CHECK (amount_fen > 0),
    active      INTEGER NOT NULL CHECK (active IN (0, 1)),
    PRIMARY KEY (payment_no, payable_id)
) STRICT;
CREATE UNIQUE INDEX payment_applications_pay_once ON payment_applications (payable_id) WHERE active = 1;

CREATE TABLE refunds (
    refund_no         TEXT    NOT NULL PRIMARY KEY,
    channel_id        TEXT    NOT NULL REFERENCES channels (channel_id),
    payment_no        TEXT    NOT NULL REFERENCES payments (payment_no),
    channel_txn_id    TEXT    NOT NULL,
    region_code       TEXT,
    amount_fen        INTEGER NOT NULL CHECK (amount_fen > 0),
    reason            TEXT    NOT NULL CHECK (reason IN ('ALREADY_PAID', 'AMOUNT_MISMATCH', 'NOT_PAYABLE', 'REVERSED_EARLIER')),
    status            TEXT    NOT NULL CHECK (status IN ('owed', 'sent', 'succeeded', 'failed', 'cancelled')),
    due               TEXT    NOT NULL CHECK (date(due) = due),
    channel_refund_id TEXT,
    failure_reason    TEXT,
    created_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE INDEX refunds_by_channel_status ON refunds (channel_id, status);

CREATE INDEX payables_locked ON payables (locked_by) WHERE status = 'locked';
CREATE INDEX payables_lock_expiry ON payables (locked_until) WHERE status = 'locked';
CREATE INDEX orders_open_expiry ON orders (expires_at) WHERE status = 'open';
CREATE INDEX refunds_by_payment ON refunds (payment_no);
CREATE INDEX payments_by_day ON payments (channel_id, paid_on);

-- Reversals (冲正), recorded even for a transaction yibao has not seen yet.
CREATE TABLE reversals (
    channel_id     TEXT    NOT NULL REFERENCES channels (channel_id),
    channel_txn_id TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    funds_returned INTEGER NOT NULL CHECK (funds_returned IN (0, 1)),
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (channel_id, channel_txn_id)
) STRICT;

-- Receipt numbers per receipt code (one code per region and year), without gaps.
CREATE TABLE receipt_counters (
    receipt_code TEXT NOT NULL PRIMARY KEY,
    region_code  TEXT NOT NULL,
    last_number  INTEGER NOT NULL CHECK (last_number >= 0)
) STRICT;

CREATE TABLE receipts (
    receipt_code   TEXT  NOT NULL REFERENCES receipt_counters (receipt_code),
    receipt_number TEXT NOT NULL,
    region_code    TEXT  NOT NULL,
    check_code     TEXT  NOT NULL,
    payable_id     TEXT     NOT NULL REFERENCES payables (payable_id),
    payment_no     TEXT     NOT NULL REFERENCES payments (payment_no),
    id_number      TEXT NOT NULL,
    payer_name     TEXT     NOT NULL,
    fee_year       INTEGER  NOT NULL,
    amount_fen     INTEGER  NOT NULL CHECK (amount_fen > 0),
    components     TEXT     NOT NULL,
    issued_on      TEXT     NOT NULL CHECK (date(issued_on) = issued_on),
    issuer         TEXT     NOT NULL,
    status         TEXT     NOT NULL CHECK (status IN ('valid', 'voided')),
    PRIMARY KEY (receipt_code, receipt_number)
) STRICT;
CREATE INDEX receipts_by_person ON receipts (id_number);
CREATE INDEX receipts_by_payment ON receipts (payment_no);

-- Posting to the agency (到帐): written in the same transaction as the payment.
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    region_code     TEXT NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('payment_applied', 'payment_reversed')),
    payable_id      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    dead            INTEGER NOT NULL DEFAULT 0 CHECK (dead IN (0, 1))
) STRICT;
CREATE INDEX outbox_by_payable ON outbox (payable_id, seq);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND dead = 0;

-- Daily statements (对账单) as uploaded; a reconciled day closes reversals for that day.
CREATE TABLE statements (
    channel_id     TEXT    NOT NULL REFERENCES channels (channel_id),
    statement_date TEXT    NOT NULL CHECK (date(statement_date) = statement_date),
    lines          INTEGER NOT NULL,
    summary        TEXT    NOT NULL,
    uploaded_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (channel_id, statement_date)
) STRICT;
