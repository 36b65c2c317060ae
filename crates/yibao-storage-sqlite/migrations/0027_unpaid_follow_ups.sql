-- 未缴名单跟进 (issue 16): a station records that an unpaid resident was told (date, how, signed
-- confirmation scanned or not) and the reason they give, from the configured list. History is
-- kept: one row per record, numbered per person and fee year; the latest is shown.
CREATE TABLE unpaid_follow_ups (
    region_code    TEXT    NOT NULL,
    fee_year       INTEGER NOT NULL,
    id_number      TEXT    NOT NULL,
    seq            INTEGER NOT NULL CHECK (seq >= 1),
    station_code   TEXT,
    told_on        TEXT    NOT NULL CHECK (length(told_on) = 10),
    told_how       TEXT    NOT NULL CHECK (told_how IN ('phone', 'visit', 'sms', 'wechat', 'letter', 'other')),
    signed_scanned INTEGER NOT NULL CHECK (signed_scanned IN (0, 1)),
    reason         TEXT    NOT NULL CHECK (length(reason) BETWEEN 1 AND 20),
    note           TEXT    CHECK (length(note) <= 200),
    recorded_by    TEXT    NOT NULL,
    recorded_at    INTEGER NOT NULL,
    PRIMARY KEY (region_code, fee_year, id_number, seq),
    FOREIGN KEY (region_code, id_number) REFERENCES persons (region_code, id_number)
);
