-- The family account (个人账户家庭共济, issue 19): a channel of kind medical_account pays close
-- relatives' contributions from an employee's personal medical account, for the relatives the
-- agency has bound to that employee (imported with their validity).
ALTER TABLE channels DROP CONSTRAINT channels_kind_check;
ALTER TABLE channels ADD CONSTRAINT channels_kind_check CHECK (kind IN ('bank_counter', 'atm', 'pos',
    'mobile_banking', 'online_banking', 'wechat', 'alipay', 'unionpay', 'gov_app', 'kiosk',
    'village_agent', 'auto_debit', 'medical_account'));

-- One row per relative (of this region) and employee; an import replaces it. The employee is
-- insured wherever employee insurance holds them (employee_region, which need not be one of
-- yibao's regions).
CREATE TABLE family_bindings (
    region_code        TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    relative_id_number TEXT    NOT NULL CHECK (relative_id_number ~ '^[0-9]{17}[0-9X]$'),
    employee_id_number TEXT    NOT NULL CHECK (employee_id_number ~ '^[0-9]{17}[0-9X]$'),
    employee_region    TEXT    NOT NULL CHECK (employee_region ~ '^[0-9]{6}$'),
    relationship       TEXT    NOT NULL CHECK (relationship IN ('spouse', 'parent', 'child',
                            'sibling', 'grandparent', 'maternal_grandparent', 'grandchild',
                            'maternal_grandchild')),
    valid_from         DATE    NOT NULL,
    valid_until        DATE,
    imported_at        BIGINT  NOT NULL,
    PRIMARY KEY (region_code, relative_id_number, employee_id_number),
    CONSTRAINT family_bindings_not_oneself CHECK (relative_id_number <> employee_id_number),
    CONSTRAINT family_bindings_validity CHECK (valid_until IS NULL OR valid_until >= valid_from)
);
