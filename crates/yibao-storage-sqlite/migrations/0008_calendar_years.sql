-- Holiday calendars by year (issue 10, item 6): which years a region has a calendar for and where it
-- came from, so that a year without one is known as such instead of silently counting weekends.

CREATE TABLE calendar_years (
    region_code  TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    year         INTEGER NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    -- The State Council notice's title and date; NULL when staff configured the year themselves.
    title        TEXT    CHECK (title IS NULL OR length(title) BETWEEN 1 AND 100),
    published_on TEXT    CHECK (published_on IS NULL OR date(published_on) = published_on),
    loaded_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (region_code, year)
) STRICT;

-- A configured day comes from the national notice or from the region's own configuration (an
-- autonomous region's own holidays); loading a notice again replaces only the national days.
ALTER TABLE calendar_days ADD COLUMN origin TEXT NOT NULL DEFAULT 'region'
    CONSTRAINT calendar_days_origin_known CHECK (origin IN ('national', 'region'));

-- Every year configured before this migration counts as having a calendar.
INSERT INTO calendar_years (region_code, year)
SELECT DISTINCT region_code, CAST(strftime('%Y', day) AS INTEGER) FROM calendar_days
WHERE CAST(strftime('%Y', day) AS INTEGER) BETWEEN 2000 AND 2100;

-- A refund whose due date was counted into a year without a calendar (weekends only): staff see it.
ALTER TABLE refunds ADD COLUMN due_without_calendar INTEGER NOT NULL DEFAULT 0
    CHECK (due_without_calendar IN (0, 1));
