-- The insured number (参保编号, issue 17): every person gets one in their region when first
-- enrolled there, kept across fee years and re-assessments. 16 characters: the region code,
-- a nine-digit serial issued in order within the region, and an ISO 7064 MOD 11-2 check
-- character (yibao_domain::insured_number). Serials are never reused; one may be skipped.
-- SQLite cannot add a NOT NULL column without a default: the triggers below refuse a person
-- without one instead.
ALTER TABLE persons ADD COLUMN insured_number TEXT
    CHECK (insured_number IS NULL OR (length(insured_number) = 16
        AND insured_number GLOB '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9X]'
        AND substr(insured_number, 1, 6) = region_code));

-- The last serial issued per region, taken with the persons it numbers.
CREATE TABLE insured_number_counters (
    region_code TEXT    PRIMARY KEY REFERENCES pooling_regions (region_code),
    last_issued INTEGER NOT NULL CHECK (last_issued BETWEEN 0 AND 999999999)
) STRICT;

-- Persons already on record are numbered in the order of their ID numbers, per region.
WITH numbered AS (
    SELECT region_code, id_number,
           region_code || substr('000000000' || row_number() OVER (PARTITION BY region_code ORDER BY id_number), -9, 9) AS digits
    FROM persons
), checked AS (
    SELECT region_code, id_number, digits || substr('10X98765432', 1 + (
          CAST(substr(digits, 1, 1) AS INTEGER) * 10 + CAST(substr(digits, 2, 1) AS INTEGER) * 5
        + CAST(substr(digits, 3, 1) AS INTEGER) * 8 + CAST(substr(digits, 4, 1) AS INTEGER) * 4
        + CAST(substr(digits, 5, 1) AS INTEGER) * 2 + CAST(substr(digits, 6, 1) AS INTEGER) * 1
        + CAST(substr(digits, 7, 1) AS INTEGER) * 6 + CAST(substr(digits, 8, 1) AS INTEGER) * 3
        + CAST(substr(digits, 9, 1) AS INTEGER) * 7 + CAST(substr(digits, 10, 1) AS INTEGER) * 9
        + CAST(substr(digits, 11, 1) AS INTEGER) * 10 + CAST(substr(digits, 12, 1) AS INTEGER) * 5
        + CAST(substr(digits, 13, 1) AS INTEGER) * 8 + CAST(substr(digits, 14, 1) AS INTEGER) * 4
        + CAST(substr(digits, 15, 1) AS INTEGER) * 2) % 11, 1) AS insured_number
    FROM numbered
)
UPDATE persons SET insured_number = checked.insured_number
FROM checked WHERE checked.region_code = persons.region_code AND checked.id_number = persons.id_number;

INSERT INTO insured_number_counters (region_code, last_issued)
SELECT region_code, COUNT(*) FROM persons GROUP BY region_code;

-- Receipts print the payer's number (备注): kept on the receipt as issued, and filled in for the
-- receipts already issued.
ALTER TABLE receipts ADD COLUMN insured_number TEXT;
UPDATE receipts SET insured_number = persons.insured_number
FROM persons WHERE persons.region_code = receipts.region_code AND persons.id_number = receipts.id_number;

CREATE UNIQUE INDEX persons_by_insured_number ON persons (region_code, insured_number);

CREATE TRIGGER persons_insured_number_required_on_insert BEFORE INSERT ON persons
    WHEN NEW.insured_number IS NULL
BEGIN
    SELECT RAISE(ABORT, 'persons.insured_number is required');
END;
CREATE TRIGGER persons_insured_number_kept BEFORE UPDATE OF insured_number ON persons
    WHEN NEW.insured_number IS NULL OR (OLD.insured_number IS NOT NULL AND NEW.insured_number <> OLD.insured_number)
BEGIN
    SELECT RAISE(ABORT, 'persons.insured_number is kept once issued');
END;
