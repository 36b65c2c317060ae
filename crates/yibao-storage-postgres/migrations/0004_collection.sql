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
    enabled         BOOLEAN NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE channel_regions (
    channel_id  TEXT    NOT NULL REFERENCES channels (channel_id),
    region_code TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    PRIMARY KEY (channel_id, region_code)
);

-- Nonces seen in the last 15 minutes, per channel: a second use is a replay.
CREATE TABLE channel_nonces (
    channel_id TEXT   NOT NULL,
    nonce      TEXT   NOT NULL,
    seen_at    BIGINT NOT NULL,
    PRIMARY KEY (channel_id, nonce)
);
CREATE INDEX channel_nonces_by_age ON channel_nonces (seen_at);


-- One row per (channel, transaction or order number), upserted first by every payment report,
-- reversal and order of that key: it serialises them, so a reversal and its payment cannot both
-- miss each other.
CREATE TABLE channel_keys (
    channel_id TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    touches    BIGINT NOT NULL,
    PRIMARY KEY (channel_id, key)
);

ALTER TABLE payables ADD COLUMN locked_by TEXT;
ALTER TABLE payables ADD COLUMN locked_until BIGINT;

CREATE TABLE orders (
    order_no          TEXT    NOT NULL PRIMARY KEY,
    channel_id        TEXT    NOT NULL REFERENCES channels (channel_id),
    channel_order_no  TEXT    NOT NULL,
    region_code       TEXT    NOT NULL,
    amount_fen        BIGINT  NOT NULL CHECK (amount_fen > 0),
    payer_name        TEXT,
    payer_phone       TEXT,
    status            TEXT    NOT NULL CHECK (status IN ('open', 'paid', 'cancelled', 'expired')),
    expires_at        BIGINT  NOT NULL,
    fingerprint       TEXT    NOT NULL,
    response          TEXT    NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (channel_id, channel_order_no)
);

CREATE TABLE order_items (
    order_no    TEXT    NOT NULL REFERENCES orders (order_no),
    payable_id  TEXT    NOT NULL REFERENCES payables (payable_id),
    region_code TEXT    NOT NULL,
    PRIMARY KEY (order_no, payable_id)
);

CREATE TABLE payments (
    payment_no     TEXT    NOT NULL PRIMARY KEY,
    channel_id     TEXT    NOT NULL REFERENCES channels (channel_id),
    channel_txn_id TEXT    NOT NULL,
    order_no       TEXT    REFERENCES orders (order_no),
    region_code    TEXT   ,
    amount_fen     BIGINT  NOT NULL CHECK (amount_fen > 0),
    paid_at        TEXT    NOT NULL,
    paid_on        DATE    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('paid', 'partially_refunded', 'refund_pending', 'refunded', 'reversed')),
    fingerprint    TEXT    NOT NULL,
    response       TEXT    NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Idempotency per (channel, id): a second report of the same transaction finds this row.
    UNIQUE (channel_id, channel_txn_id)
);

-- What a payment applied to. At most one active application per payable: pay once, whatever
-- channels race for it.
CREATE TABLE payment_applications (
    payment_no  TEXT    NOT NULL REFERENCES payments (payment_no),
    payable_id  TEXT    NOT NULL REFERENCES payables (payable_id),
    region_code TEXT    NOT NULL,
    amount_fen  BIGINT  NOT NULL CHECK (amount_fen > 0),
    active      BOOLEAN NOT NULL,
    PRIMARY KEY (payment_no, payable_id)
);
CREATE UNIQUE INDEX payment_applications_pay_once ON payment_applications (payable_id) WHERE active;

CREATE TABLE refunds (
    refund_no         TEXT    NOT NULL PRIMARY KEY,
    channel_id        TEXT    NOT NULL REFERENCES channels (channel_id),
    payment_no        TEXT    NOT NULL REFERENCES payments (payment_no),
    channel_txn_id    TEXT    NOT NULL,
    region_code       TEXT   ,
    amount_fen        BIGINT  NOT NULL CHECK (amount_fen > 0),
    reason            TEXT    NOT NULL CHECK (reason IN ('ALREADY_PAID', 'AMOUNT_MISMATCH', 'NOT_PAYABLE', 'REVERSED_EARLIER')),
    status            TEXT    NOT NULL CHECK (status IN ('owed', 'sent', 'succeeded', 'failed', 'cancelled')),
    due               DATE    NOT NULL,
    channel_refund_id TEXT,
    failure_reason    TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
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
    funds_returned BOOLEAN NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, channel_txn_id)
);

-- Receipt numbers per receipt code (one code per region and year), without gaps.
CREATE TABLE receipt_counters (
    receipt_code TEXT    NOT NULL PRIMARY KEY,
    region_code  TEXT    NOT NULL,
    last_number  BIGINT  NOT NULL CHECK (last_number >= 0)
);

CREATE TABLE receipts (
    receipt_code   TEXT     NOT NULL REFERENCES receipt_counters (receipt_code),
    receipt_number TEXT    NOT NULL,
    region_code    TEXT     NOT NULL,
    check_code     TEXT     NOT NULL,
    payable_id     TEXT     NOT NULL REFERENCES payables (payable_id),
    payment_no     TEXT     NOT NULL REFERENCES payments (payment_no),
    id_number      TEXT    NOT NULL,
    payer_name     TEXT     NOT NULL,
    fee_year       INTEGER  NOT NULL,
    amount_fen     BIGINT   NOT NULL CHECK (amount_fen > 0),
    components     TEXT     NOT NULL,
    issued_on      DATE     NOT NULL,
    issuer         TEXT     NOT NULL,
    status         TEXT     NOT NULL CHECK (status IN ('valid', 'voided')),
    PRIMARY KEY (receipt_code, receipt_number)
);
CREATE INDEX receipts_by_person ON receipts (id_number);
CREATE INDEX receipts_by_payment ON receipts (payment_no);

-- Posting to the agency (到帐): written in the same transaction as the payment.
CREATE TABLE outbox (
    seq             BIGSERIAL PRIMARY KEY,
    event_id        TEXT    NOT NULL UNIQUE,
    region_code     TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('payment_applied', 'payment_reversed')),
    payable_id      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    delivered_at    BIGINT,
    dead            BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX outbox_by_payable ON outbox (payable_id, seq);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND NOT dead;

-- Daily statements (对账单) as uploaded; a reconciled day closes reversals for that day.
CREATE TABLE statements (
    channel_id     TEXT        NOT NULL REFERENCES channels (channel_id),
    statement_date DATE        NOT NULL,
    lines          BIGINT      NOT NULL,
    summary        TEXT        NOT NULL,
    uploaded_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, statement_date)
);
