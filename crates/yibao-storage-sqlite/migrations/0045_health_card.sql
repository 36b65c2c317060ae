-- The resident health card (居民健康卡, issue 17): a channel of kind health_card takes contributions
-- paid with the card, at an agent point (代征点, only for the card holder's household) or at a
-- self-service machine (for anyone). Its orders record the card holder.
--
-- SQLite cannot alter a CHECK, so channels is rebuilt with every row and column kept, as 0039 did.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE channels_kept AS SELECT * FROM channels;
DROP TABLE channels;
CREATE TABLE channels (
    channel_id      TEXT    NOT NULL PRIMARY KEY,
    kind            TEXT    NOT NULL CHECK (kind IN ('bank_counter', 'atm', 'pos', 'mobile_banking',
                        'online_banking', 'wechat', 'alipay', 'unionpay', 'gov_app', 'kiosk',
                        'village_agent', 'auto_debit', 'medical_account', 'health_card')),
    secret_sealed   TEXT    NOT NULL,
    rate_per_second INTEGER NOT NULL CHECK (rate_per_second BETWEEN 1 AND 100000),
    enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    channel_only_policy TEXT NOT NULL DEFAULT 'refund'
        CHECK (channel_only_policy IN ('refund', 'apply')),
    previous_secret_sealed TEXT
        CHECK (previous_secret_sealed IS NULL OR length(previous_secret_sealed) > 0),
    previous_secret_until INTEGER
        CHECK (previous_secret_until IS NULL OR previous_secret_until > 0),
    CONSTRAINT channels_previous_secret_pair
        CHECK ((previous_secret_sealed IS NULL) = (previous_secret_until IS NULL))
) STRICT;
INSERT INTO channels (channel_id, kind, secret_sealed, rate_per_second, enabled, created_at,
                      channel_only_policy, previous_secret_sealed, previous_secret_until)
SELECT channel_id, kind, secret_sealed, rate_per_second, enabled, created_at,
       channel_only_policy, previous_secret_sealed, previous_secret_until
FROM channels_kept;
DROP TABLE channels_kept;

ALTER TABLE orders ADD COLUMN card_holder_id_number TEXT
    CHECK (card_holder_id_number IS NULL OR (length(card_holder_id_number) = 18
        AND card_holder_id_number GLOB '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9X]'));
ALTER TABLE orders ADD COLUMN card_terminal TEXT
    CHECK (card_terminal IS NULL OR card_terminal IN ('agent_point', 'self_service'));
CREATE TRIGGER orders_card_holder_pair BEFORE INSERT ON orders
    WHEN (NEW.card_holder_id_number IS NULL) <> (NEW.card_terminal IS NULL)
BEGIN
    SELECT RAISE(ABORT, 'orders.card_holder_id_number and card_terminal go together');
END;
