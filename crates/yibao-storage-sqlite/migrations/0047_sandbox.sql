-- The sandbox for integrators (接入测试, issue 17): a pooling region marked `sandbox` holds only
-- generated test residents; a channel in test mode serves only sandbox regions and a sandbox
-- region only channels in test mode (the two composite foreign keys of channel_regions say so);
-- what a test channel has tried is kept per scenario. Payments in a sandbox region are never
-- posted to the agency and are left out of reports and statistics.
ALTER TABLE pooling_regions ADD COLUMN sandbox INTEGER NOT NULL DEFAULT 0 CHECK (sandbox IN (0, 1));
CREATE UNIQUE INDEX pooling_regions_sandbox_key ON pooling_regions (region_code, sandbox);
ALTER TABLE channels ADD COLUMN test_mode INTEGER NOT NULL DEFAULT 0 CHECK (test_mode IN (0, 1));
CREATE UNIQUE INDEX channels_test_mode_key ON channels (channel_id, test_mode);

-- SQLite adds no foreign key to a table in place: channel_regions is rebuilt.
CREATE TABLE channel_regions_new (
    channel_id  TEXT    NOT NULL,
    region_code TEXT    NOT NULL,
    test_mode   INTEGER NOT NULL DEFAULT 0 CHECK (test_mode IN (0, 1)),
    PRIMARY KEY (channel_id, region_code),
    FOREIGN KEY (channel_id, test_mode) REFERENCES channels (channel_id, test_mode),
    FOREIGN KEY (region_code, test_mode) REFERENCES pooling_regions (region_code, sandbox)
) STRICT;
INSERT INTO channel_regions_new (channel_id, region_code)
    SELECT channel_id, region_code FROM channel_regions;
DROP TABLE channel_regions;
ALTER TABLE channel_regions_new RENAME TO channel_regions;

CREATE TABLE sandbox_scenarios (
    region_code TEXT    NOT NULL CHECK (length(region_code) = 6 AND region_code NOT GLOB '*[^0-9]*'),
    channel_id  TEXT    NOT NULL,
    scenario    TEXT    NOT NULL CHECK (length(scenario) BETWEEN 1 AND 40
                            AND scenario NOT GLOB '*[^a-z_]*'),
    first_at    INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    times       INTEGER NOT NULL CHECK (times >= 1),
    PRIMARY KEY (region_code, channel_id, scenario)
) STRICT;
