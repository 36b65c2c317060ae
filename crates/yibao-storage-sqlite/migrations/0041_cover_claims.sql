-- What the agency's claims file (报销情况, issue 19) says of a person's benefit year: whether the
-- fund reimbursed anything that year, and whether a critical-illness claim used the raise. yibao
-- holds no claims; the zero-claim raise (零报销激励) counts these. One row per person and year; an
-- import replaces it.
CREATE TABLE cover_claims (
    region_code  TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    id_number    TEXT    NOT NULL CHECK (length(id_number) = 18
                    AND id_number GLOB '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9X]'),
    benefit_year INTEGER NOT NULL CHECK (benefit_year BETWEEN 2000 AND 2100),
    reimbursed   INTEGER NOT NULL CHECK (reimbursed IN (0, 1)),
    reward_used  INTEGER NOT NULL CHECK (reward_used IN (0, 1)),
    imported_at  INTEGER NOT NULL,
    PRIMARY KEY (region_code, id_number, benefit_year),
    CONSTRAINT cover_claims_reward_only_when_reimbursed CHECK (reimbursed OR NOT reward_used)
) STRICT;
