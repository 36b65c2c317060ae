-- Enrolment and assessment: persons (the agency's record), their history, enrolments per fee
-- year, payables, staff, sessions, the audit log and roster imports.

CREATE TABLE persons (
    region_code             TEXT        NOT NULL REFERENCES pooling_regions (region_code),
    id_number               TEXT       NOT NULL CHECK (id_number ~ '^[0-9]{17}[0-9X]$'),
    name                    TEXT        NOT NULL CHECK (char_length(name) BETWEEN 2 AND 40),
    household               TEXT        NOT NULL CHECK (household IN ('local_registration', 'residence_permit')),
    permit_since            DATE,
    school                  TEXT        CHECK (char_length(school) BETWEEN 1 AND 64),
    phone                   TEXT        CHECK (phone ~ '^1[0-9]{10}$'),
    station_code            TEXT        CHECK (char_length(station_code) BETWEEN 1 AND 32),
    employee_insured        BOOLEAN     NOT NULL,
    relief_kind             TEXT    CHECK (relief_kind IN ('minimum_living_allowance', 'extreme_poverty',
                                'severe_disability', 'extreme_poverty_support', 'temporary_assistance',
                                'child_in_distress', 'low_income', 'registered_poor_household',
                                'downsized_retiree', 'priority_entitled', 'subsidised')),
    certificate_name        TEXT,
    certificate_number      TEXT,
    certificate_valid_until DATE,
    subsidy_fen             BIGINT      CHECK (subsidy_fen >= 0),
    version                 BIGINT      NOT NULL DEFAULT 1 CHECK (version >= 1),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by              TEXT        NOT NULL,
    PRIMARY KEY (region_code, id_number),
    CONSTRAINT persons_permit_date CHECK ((household = 'residence_permit') = (permit_since IS NOT NULL)),
    CONSTRAINT persons_relief_complete CHECK (
        (relief_kind IS NULL AND certificate_name IS NULL AND certificate_number IS NULL
             AND certificate_valid_until IS NULL AND subsidy_fen IS NULL)
        OR (relief_kind IS NOT NULL AND certificate_name IS NOT NULL AND certificate_number IS NOT NULL
             AND certificate_valid_until IS NOT NULL
             AND (relief_kind = 'subsidised') = (subsidy_fen IS NOT NULL)))
);
CREATE INDEX persons_by_station ON persons (region_code, station_code);

-- Every change to a person: who, when, from where, and the record as it became.
CREATE TABLE person_history (
    history_id  BIGSERIAL   PRIMARY KEY,
    region_code TEXT        NOT NULL,
    id_number   TEXT       NOT NULL,
    version     BIGINT      NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    changed_by  TEXT        NOT NULL,
    source      TEXT        NOT NULL,
    snapshot    TEXT        NOT NULL,
    UNIQUE (region_code, id_number, version),
    FOREIGN KEY (region_code, id_number) REFERENCES persons (region_code, id_number)
);

CREATE TABLE enrolments (
    region_code     TEXT        NOT NULL,
    fee_year        INTEGER     NOT NULL,
    id_number       TEXT       NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('enrolled', 'refused')),
    refusal_code    TEXT,
    refusal_message TEXT,
    covered_from    DATE,
    source          TEXT        NOT NULL CHECK (source IN ('roster', 'renewal', 'api')),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region_code, fee_year, id_number),
    FOREIGN KEY (region_code, id_number) REFERENCES persons (region_code, id_number),
    FOREIGN KEY (region_code, fee_year) REFERENCES fee_policies (region_code, fee_year),
    CONSTRAINT enrolments_refusal_has_reason CHECK (
        (status = 'refused') = (refusal_code IS NOT NULL AND refusal_message IS NOT NULL)),
    CONSTRAINT enrolments_enrolled_has_cover CHECK ((status = 'enrolled') = (covered_from IS NOT NULL))
);
-- One resident enrolment per person and fee year, across all regions: the first wins.
CREATE UNIQUE INDEX enrolments_once_per_year ON enrolments (fee_year, id_number) WHERE status = 'enrolled';

CREATE TABLE payables (
    payable_id           TEXT        PRIMARY KEY,
    region_code          TEXT        NOT NULL,
    fee_year             INTEGER     NOT NULL,
    id_number            TEXT       NOT NULL,
    category             TEXT        NOT NULL CHECK (category IN ('adult', 'minor_not_in_school', 'student', 'newborn')),
    amount_fen           BIGINT      NOT NULL CHECK (amount_fen >= 0),
    basic_fen            BIGINT      NOT NULL CHECK (basic_fen >= 0),
    critical_illness_fen BIGINT      NOT NULL CHECK (critical_illness_fen >= 0),
    long_term_care_fen   BIGINT      NOT NULL CHECK (long_term_care_fen >= 0),
    policy_amount_fen    BIGINT      NOT NULL CHECK (policy_amount_fen >= amount_fen),
    relief_kind          TEXT,
    status               TEXT        NOT NULL CHECK (status IN
                             ('unpaid', 'locked', 'paid', 'posted', 'exempt', 'superseded', 'cancelled')),
    payable_from         DATE        NOT NULL,
    supersedes           TEXT        REFERENCES payables (payable_id),
    inputs               TEXT        NOT NULL,
    assessed_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    assessed_by          TEXT        NOT NULL,
    FOREIGN KEY (region_code, fee_year, id_number) REFERENCES enrolments (region_code, fee_year, id_number),
    CONSTRAINT payables_components_sum CHECK (amount_fen = basic_fen + critical_illness_fen + long_term_care_fen),
    CONSTRAINT payables_exempt_owes_nothing CHECK ((status = 'exempt') = (amount_fen = 0)
                                                   OR status IN ('superseded', 'cancelled'))
);
-- At most one current payable per person and fee year.
CREATE UNIQUE INDEX payables_one_current ON payables (fee_year, id_number)
    WHERE status NOT IN ('superseded', 'cancelled');
CREATE INDEX payables_by_person ON payables (id_number);
CREATE INDEX payables_by_region_year ON payables (region_code, fee_year);

CREATE TABLE staff (
    username      TEXT        PRIMARY KEY CHECK (username ~ '^[a-z0-9_.-]{2,32}$'),
    display_name  TEXT        NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 40),
    role          TEXT        NOT NULL CHECK (role IN ('admin', 'station_operator', 'tax_collector', 'auditor')),
    region_code   TEXT        REFERENCES pooling_regions (region_code),
    station_code  TEXT,
    password_hash TEXT        NOT NULL,
    disabled      BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT staff_station_scope CHECK ((role = 'station_operator') = (station_code IS NOT NULL)),
    CONSTRAINT staff_region_scope CHECK (role = 'admin' OR role = 'auditor' OR region_code IS NOT NULL)
);

CREATE TABLE staff_sessions (
    token_hash  TEXT        PRIMARY KEY,
    username    TEXT        NOT NULL REFERENCES staff (username),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  BIGINT      NOT NULL
);

-- Append-only: every change with its actor. Updates and deletes are refused by a trigger.
CREATE TABLE audit_log (
    audit_id    BIGSERIAL   PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor       TEXT        NOT NULL,
    action      TEXT        NOT NULL,
    region_code TEXT   ,
    target      TEXT        NOT NULL,
    detail      TEXT        NOT NULL
);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'check_violation';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE roster_imports (
    import_id   TEXT        PRIMARY KEY,
    file_name   TEXT        NOT NULL,
    file_sha256 TEXT        NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    imported_by TEXT        NOT NULL,
    rows_read   BIGINT      NOT NULL,
    enrolled    BIGINT      NOT NULL,
    updated     BIGINT      NOT NULL,
    unchanged   BIGINT      NOT NULL,
    rejected    BIGINT      NOT NULL
);
