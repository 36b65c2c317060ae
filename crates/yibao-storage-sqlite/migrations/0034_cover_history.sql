-- A person's cover by benefit year from outside yibao (issue 19): the agency's history file —
-- resident insurance before yibao, employee insurance, years not insured and years bought back.
-- yibao's own paid payables are history too and are read from payables; this table holds the rest.
-- One row per person and year; an import replaces a person's year.
CREATE TABLE cover_history (
    region_code  TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    id_number    TEXT    NOT NULL CHECK (length(id_number) = 18
                     AND id_number GLOB '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9X]'),
    benefit_year INTEGER NOT NULL CHECK (benefit_year BETWEEN 2000 AND 2100),
    cover        TEXT    NOT NULL CHECK (cover IN ('resident', 'employee', 'none')),
    bought_back  INTEGER NOT NULL CHECK (bought_back IN (0, 1)),
    imported_at  INTEGER NOT NULL,
    PRIMARY KEY (region_code, id_number, benefit_year),
    CONSTRAINT cover_history_bought_back_only_uninsured CHECK (NOT bought_back OR cover = 'none')
);
