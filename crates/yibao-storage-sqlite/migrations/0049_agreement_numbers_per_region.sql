-- An auto-debit agreement's number is the bank's, unique within its region only, as on
-- PostgreSQL since 0012: its key is the region and the number, and its members name both. Before,
-- a number signed in one region was refused in every other. SQLite changes no key in place: both
-- tables are rebuilt, the members' first (their foreign key names the new agreements' key).
CREATE TABLE debit_agreements_new (
    agreement_no     TEXT    NOT NULL,
    region_code      TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    channel_id       TEXT    NOT NULL REFERENCES channels (channel_id),
    payer_id_number  TEXT    NOT NULL,
    payer_name       TEXT    NOT NULL,
    account_masked   TEXT    NOT NULL CHECK (length(account_masked) BETWEEN 4 AND 32),
    status           TEXT    NOT NULL CHECK (status IN ('active', 'cancelled')),
    signed_on        TEXT    NOT NULL CHECK (date(signed_on) = signed_on),
    cancelled_on     TEXT    CHECK (cancelled_on IS NULL OR date(cancelled_on) = cancelled_on),
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (region_code, agreement_no),
    CHECK ((status = 'cancelled') = (cancelled_on IS NOT NULL))
) STRICT;
INSERT INTO debit_agreements_new (agreement_no, region_code, channel_id, payer_id_number, payer_name,
        account_masked, status, signed_on, cancelled_on, created_at)
    SELECT agreement_no, region_code, channel_id, payer_id_number, payer_name,
        account_masked, status, signed_on, cancelled_on, created_at FROM debit_agreements;

CREATE TABLE debit_agreement_members_new (
    agreement_no TEXT    NOT NULL,
    region_code  TEXT    NOT NULL,
    id_number    TEXT    NOT NULL,
    active       INTEGER NOT NULL CHECK (active IN (0, 1)),
    PRIMARY KEY (region_code, agreement_no, id_number),
    FOREIGN KEY (region_code, agreement_no) REFERENCES debit_agreements_new (region_code, agreement_no)
) STRICT;
INSERT INTO debit_agreement_members_new (agreement_no, region_code, id_number, active)
    SELECT agreement_no, region_code, id_number, active FROM debit_agreement_members;

DROP TABLE debit_agreement_members;
DROP TABLE debit_agreements;
-- Renaming rewrites the members' foreign key to the new name.
ALTER TABLE debit_agreements_new RENAME TO debit_agreements;
ALTER TABLE debit_agreement_members_new RENAME TO debit_agreement_members;
CREATE UNIQUE INDEX debit_members_one_active ON debit_agreement_members (region_code, id_number) WHERE active = 1;
-- Staff may name an agreement by its number alone (to cancel it): the regions holding it are
-- found through this index, not by reading every agreement.
CREATE INDEX debit_agreements_by_number ON debit_agreements (agreement_no);
