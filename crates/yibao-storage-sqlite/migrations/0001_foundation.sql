-- Foundation: pooling regions, fee policies, working-day calendars.
-- Every table carries region_code so a province's data can be split across machines.
-- Dates are TEXT 'YYYY-MM-DD'; timestamps TEXT in RFC 3339 (UTC).

CREATE TABLE pooling_regions (
    region_code  TEXT NOT NULL PRIMARY KEY
                 CHECK (length(region_code) = 6 AND region_code GLOB '[0-9][0-9][0-9][0-9][0-9][0-9]'),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE TABLE fee_policies (
    region_code          TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    fee_year             INTEGER NOT NULL CHECK (fee_year BETWEEN 2000 AND 2100),
    age_reference_date   TEXT    NOT NULL CHECK (date(age_reference_date) = age_reference_date),
    adult_age            INTEGER NOT NULL CHECK (adult_age BETWEEN 16 AND 22),
    window_opens         TEXT    NOT NULL CHECK (date(window_opens) = window_opens),
    window_closes        TEXT    NOT NULL CHECK (date(window_closes) = window_closes),
    late_payment_allowed INTEGER NOT NULL CHECK (late_payment_allowed IN (0, 1)),
    updated_at           TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (region_code, fee_year),
    CONSTRAINT fee_policies_window_ordered CHECK (window_closes >= window_opens)
) STRICT;

-- One row per category and component; a category's total is the sum of its rows (never stored).
CREATE TABLE fee_policy_amounts (
    region_code TEXT    NOT NULL,
    fee_year    INTEGER NOT NULL,
    category    TEXT    NOT NULL CHECK (category IN ('adult', 'minor_not_in_school', 'student', 'newborn')),
    component   TEXT    NOT NULL CHECK (component IN ('basic', 'critical_illness', 'long_term_care')),
    amount_fen  INTEGER NOT NULL CONSTRAINT fee_policy_amounts_not_negative CHECK (amount_fen >= 0),
    PRIMARY KEY (region_code, fee_year, category, component),
    FOREIGN KEY (region_code, fee_year) REFERENCES fee_policies (region_code, fee_year) ON DELETE CASCADE
) STRICT;

-- Exceptions to "weekdays work": statutory holidays and worked weekends (调休), per region because
-- autonomous regions add holidays of their own.
CREATE TABLE calendar_days (
    region_code TEXT NOT NULL REFERENCES pooling_regions (region_code),
    day         TEXT NOT NULL CHECK (date(day) = day),
    kind        TEXT NOT NULL CHECK (kind IN ('holiday', 'working')),
    PRIMARY KEY (region_code, day)
) STRICT;
