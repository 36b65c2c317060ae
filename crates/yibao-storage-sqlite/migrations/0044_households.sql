-- Households (户, issue 17): each membership of a person in a household of the household register,
-- with the relation to the head (与户主关系; '户主' is the head), when it began and ended and who
-- changed it. The current memberships are those not ended: a person is in at most one household
-- of a region at a time, a household has at most one head at a time (the two partial unique
-- indexes). Times are Unix milliseconds, as the application's clock gives them.
CREATE TABLE household_members (
    region_code      TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    household_number TEXT    NOT NULL CHECK (length(household_number) BETWEEN 1 AND 20
                                 AND household_number NOT GLOB '*[^0-9A-Z-]*'),
    id_number        TEXT    NOT NULL CHECK (length(id_number) = 18
                                 AND id_number GLOB '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9X]'),
    relation         TEXT    CHECK (relation IS NULL OR length(relation) BETWEEN 1 AND 8),
    is_head          INTEGER NOT NULL CHECK (is_head IN (0, 1)),
    joined_at        INTEGER NOT NULL,
    joined_by        TEXT    NOT NULL,
    joined_source    TEXT    NOT NULL,
    left_at          INTEGER,
    left_by          TEXT,
    CHECK (is_head = (relation IS NOT NULL AND relation = '户主')),
    CHECK ((left_at IS NULL) = (left_by IS NULL)),
    CHECK (left_at IS NULL OR left_at >= joined_at)
) STRICT;
CREATE UNIQUE INDEX household_members_one_current ON household_members (region_code, id_number)
    WHERE left_at IS NULL;
CREATE UNIQUE INDEX household_members_one_head ON household_members (region_code, household_number)
    WHERE left_at IS NULL AND is_head;
CREATE INDEX household_members_by_household ON household_members (region_code, household_number, joined_at);
CREATE INDEX household_members_by_person ON household_members (region_code, id_number, joined_at);
