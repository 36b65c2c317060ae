-- The insured number (参保编号, issue 17): every person gets one in their region when first
-- enrolled there, kept across fee years and re-assessments. 16 characters: the region code,
-- a nine-digit serial issued in order within the region, and an ISO 7064 MOD 11-2 check
-- character (yibao_domain::insured_number). Serials are never reused; one may be skipped.
-- (Citus refuses ADD COLUMN with a constraint on a distributed table: the check comes apart.)
ALTER TABLE persons ADD COLUMN insured_number TEXT;
ALTER TABLE persons ADD CONSTRAINT persons_insured_number_format
    CHECK (insured_number ~ '^[0-9]{15}[0-9X]$' AND left(insured_number, 6) = region_code);
ALTER TABLE receipts ADD COLUMN insured_number TEXT;

-- The last serial issued per region, taken with the persons it numbers. (No foreign key to
-- pooling_regions: on a Citus cluster that would make it a table of the coordinator's, or fail
-- beside the DDL on persons above; its rows are written with persons of the region.)
CREATE TABLE insured_number_counters (
    region_code TEXT   PRIMARY KEY CHECK (region_code ~ '^[0-9]{6}$'),
    last_issued BIGINT NOT NULL CHECK (last_issued BETWEEN 0 AND 999999999)
);

-- Persons already on record are numbered in the order of their ID numbers, per region.
WITH numbered AS (
    SELECT region_code, id_number,
           region_code || lpad(CAST(row_number() OVER (PARTITION BY region_code ORDER BY id_number) AS TEXT), 9, '0') AS digits
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
UPDATE persons p SET insured_number = c.insured_number
FROM checked c WHERE c.region_code = p.region_code AND c.id_number = p.id_number;

INSERT INTO insured_number_counters (region_code, last_issued)
SELECT region_code, COUNT(*) FROM persons GROUP BY region_code;

-- Receipts print the payer's number (备注): kept on the receipt as issued, and filled in for the
-- receipts already issued.
UPDATE receipts r SET insured_number = p.insured_number
FROM persons p WHERE p.region_code = r.region_code AND p.id_number = r.id_number;

ALTER TABLE persons ALTER COLUMN insured_number SET NOT NULL;
CREATE UNIQUE INDEX persons_by_insured_number ON persons (region_code, insured_number);
