-- What the agency's special situation file (参保特殊情形, issue 19) says of a person: a membership of
-- an exempt group (docs/rules-2025.md) with the date of its event and the evidence seen, or a move
-- from employee insurance with the day it ended and the months continuously insured before. One
-- row per person and situation; an import replaces it.
CREATE TABLE cover_situations (
    region_code TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    id_number   TEXT    NOT NULL CHECK (length(id_number) = 18
                    AND id_number GLOB '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9X]'),
    situation   TEXT    NOT NULL CHECK (situation IN ('medical_assistance', 'veteran',
                            'moved_into_province', 'returned_from_abroad', 'released_from_prison',
                            'graduate_returned', 'freshman', 'left_employee')),
    event_date  TEXT    NOT NULL CHECK (date(event_date) = event_date),
    months      INTEGER CHECK (months BETWEEN 0 AND 600),
    evidence    TEXT    CHECK (length(evidence) BETWEEN 1 AND 64),
    imported_at INTEGER NOT NULL,
    PRIMARY KEY (region_code, id_number, situation),
    CONSTRAINT cover_situations_months_for_moves CHECK ((situation = 'left_employee') = (months IS NOT NULL))
);
