-- 参保登记 online (issue 11): a resident signed in to the citizen site submits a first enrolment
-- or a newborn's for a region and service station; the station approves it (the person is then
-- registered and enrolled as from the console) or refuses it with a reason, which the resident
-- sees. One open application per person and region.
CREATE TABLE enrolment_applications (
    region_code        TEXT    NOT NULL,
    application_no     TEXT    NOT NULL,
    kind               TEXT    NOT NULL CHECK (kind IN ('first', 'newborn')),
    id_number          TEXT    NOT NULL,
    name               TEXT    NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    household          TEXT    NOT NULL CHECK (household IN ('local_registration', 'residence_permit')),
    permit_since       DATE,
    station_code       TEXT    NOT NULL CHECK (char_length(station_code) BETWEEN 1 AND 32),
    phone              TEXT,
    guardian_id_number TEXT,
    guardian_name      TEXT,
    submitted_by       TEXT    NOT NULL,
    submitted_at       BIGINT  NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('submitted', 'approved', 'refused')),
    decided_by         TEXT,
    decided_at         BIGINT,
    reason             TEXT    CHECK (char_length(reason) <= 200),
    PRIMARY KEY (region_code, application_no),
    CONSTRAINT enrolment_applications_permit CHECK ((household = 'residence_permit') = (permit_since IS NOT NULL)),
    CONSTRAINT enrolment_applications_guardian CHECK (
        (kind = 'newborn') = (guardian_id_number IS NOT NULL AND guardian_name IS NOT NULL)),
    CONSTRAINT enrolment_applications_decided CHECK (
        (status = 'submitted') = (decided_by IS NULL AND decided_at IS NULL)
        AND (status <> 'refused' OR reason IS NOT NULL))
);
CREATE UNIQUE INDEX enrolment_applications_open ON enrolment_applications (region_code, id_number)
    WHERE status = 'submitted';
CREATE INDEX enrolment_applications_queue ON enrolment_applications (region_code, station_code, status);
CREATE INDEX enrolment_applications_by_submitter ON enrolment_applications (submitted_by);
