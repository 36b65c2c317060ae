-- 未参保名单及原因 (issue 16): at the end of the campaign a service station submits its list of
-- the uninsured with their reasons to the centre, once per fee year (a second submission is
-- refused by the key). The list is kept as submitted (JSON lines, at most 20 000).
CREATE TABLE uninsured_submissions (
    region_code  TEXT    NOT NULL,
    fee_year     INTEGER NOT NULL,
    station_code TEXT    NOT NULL,
    submitted_by TEXT    NOT NULL,
    submitted_at INTEGER  NOT NULL,
    persons      INTEGER  NOT NULL CHECK (persons >= 0),
    with_reason  INTEGER  NOT NULL CHECK (with_reason >= 0 AND with_reason <= persons),
    lines        TEXT    NOT NULL,
    PRIMARY KEY (region_code, fee_year, station_code)
);
