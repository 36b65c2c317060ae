-- Foundation: pooling regions, fee policies, working-day calendars.
-- Every table carries region_code so a province's data can be split across machines.

CREATE TABLE pooling_regions (
    region_code  TEXT        PRIMARY KEY CHECK (region_code ~ '^[0-9]{6}$'),
    name         TEXT        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 32),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE fee_policies (
    region_code          TEXT        NOT NULL REFERENCES pooling_regions (region_code),
    fee_year             SMALLINT    NOT NULL CHECK (fee_year BETWEEN 2000 AND 2100),
    age_reference_date   DATE        NOT NULL,
    adult_age            SMALLINT    NOT NULL CHECK (adult_age BETWEEN 16 AND 22),
    window_opens         DATE        NOT NULL,
    window_closes        DATE        NOT NULL,
    late_payment_allowed BOOLEAN     NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region_code, fee_year),
    CONSTRAINT fee_policies_window_ordered CHECK (window_closes >= window_opens)
);

-- One row per category and component; a category's total is the sum of its rows (never stored).
CREATE TABLE fee_policy_amounts (
    region_code TEXT     NOT NULL,
    fee_year    SMALLINT NOT NULL,
    category    TEXT     NOT NULL CHECK (category IN ('adult', 'minor_not_in_school', 'student', 'newborn')),
    component   TEXT     NOT NULL CHECK (component IN ('basic', 'critical_illness', 'long_term_care')),
    amount_fen  BIGINT   NOT NULL CONSTRAINT fee_policy_amounts_not_negative CHECK (amount_fen >= 0),
    PRIMARY KEY (region_code, fee_year, category, component),
    FOREIGN KEY (region_code, fee_year) REFERENCES fee_policies (region_code, fee_year) ON DELETE CASCADE
);

-- Exceptions to "weekdays work": statutory holidays and worked weekends (调休), per region because
-- autonomous regions add holidays of their own.
CREATE TABLE calendar_days (
    region_code TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    day         DATE    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('holiday', 'working')),
    PRIMARY KEY (region_code, day)
);
