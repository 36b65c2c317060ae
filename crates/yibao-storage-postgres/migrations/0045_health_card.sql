-- The resident health card (居民健康卡, issue 17): a channel of kind health_card takes contributions
-- paid with the card, at an agent point (代征点, only for the card holder's household) or at a
-- self-service machine (for anyone). Its orders record the card holder.
ALTER TABLE channels DROP CONSTRAINT channels_kind_check;
ALTER TABLE channels ADD CONSTRAINT channels_kind_check CHECK (kind IN ('bank_counter', 'atm', 'pos',
    'mobile_banking', 'online_banking', 'wechat', 'alipay', 'unionpay', 'gov_app', 'kiosk',
    'village_agent', 'auto_debit', 'medical_account', 'health_card'));

ALTER TABLE orders ADD COLUMN card_holder_id_number TEXT;
ALTER TABLE orders ADD COLUMN card_terminal TEXT;
ALTER TABLE orders ADD CONSTRAINT orders_card_holder CHECK (
    (card_holder_id_number IS NULL AND card_terminal IS NULL)
    OR (card_holder_id_number ~ '^[0-9]{17}[0-9X]$' AND card_terminal IN ('agent_point', 'self_service')));
