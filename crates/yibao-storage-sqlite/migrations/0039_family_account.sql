-- The family account (个人账户家庭共济, issue 19): a channel of kind medical_account pays close
-- relatives' contributions from an employee's personal medical account, for the relatives the
-- agency has bound to that employee (imported with their validity).
--
-- SQLite cannot alter a CHECK, so channels is rebuilt with every row and column kept. Its children
-- reference it by name: with their foreign keys deferred to the commit, dropping it leaves them
-- without a parent until the same rows are back, and the commit fails if one is missing.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE channels_kept AS SELECT * FROM channels;
DROP TABLE channels;
CREATE TABLE channels (
    channel_id      TEXT    NOT NULL PRIMARY KEY,
    kind            TEXT    NOT NULL CHECK (kind IN ('bank_counter', 'atm', 'pos', 'mobile_banking',
                        'online_banking', 'wechat', 'alipay', 'unionpay', 'gov_app', 'kiosk',
                        'village_agent', 'auto_debit', 'medical_account')),
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

-- One row per relative (of this region) and employee; an import replaces it. The employee is
-- insured wherever employee insurance holds them (employee_region, which need not be one of
-- yibao's regions).
CREATE TABLE family_bindings (
    region_code        TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    relative_id_number TEXT    NOT NULL CHECK (length(relative_id_number) = 18
                    AND relative_id_number GLOB '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9X]'),
    employee_id_number TEXT    NOT NULL CHECK (length(employee_id_number) = 18
                    AND employee_id_number GLOB '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9X]'),
    employee_region    TEXT    NOT NULL CHECK (length(employee_region) = 6
                    AND employee_region GLOB '[0-9][0-9][0-9][0-9][0-9][0-9]'),
    relationship       TEXT    NOT NULL CHECK (relationship IN ('spouse', 'parent', 'child',
                            'sibling', 'grandparent', 'maternal_grandparent', 'grandchild',
                            'maternal_grandchild')),
    valid_from         TEXT    NOT NULL CHECK (date(valid_from) = valid_from),
    valid_until        TEXT    CHECK (valid_until IS NULL OR date(valid_until) = valid_until),
    imported_at        INTEGER NOT NULL,
    PRIMARY KEY (region_code, relative_id_number, employee_id_number),
    CONSTRAINT family_bindings_not_oneself CHECK (relative_id_number <> employee_id_number),
    CONSTRAINT family_bindings_validity CHECK (valid_until IS NULL OR valid_until >= valid_from)
) STRICT;
