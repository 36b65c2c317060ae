-- The sandbox for integrators (接入测试, issue 17): a pooling region marked `sandbox` holds only
-- generated test residents; a channel in test mode serves only sandbox regions and a sandbox
-- region only channels in test mode (the two composite foreign keys of channel_regions say so);
-- what a test channel has tried is kept per scenario. Payments in a sandbox region are never
-- posted to the agency and are left out of reports and statistics.
ALTER TABLE pooling_regions ADD COLUMN sandbox BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE pooling_regions ADD CONSTRAINT pooling_regions_sandbox_key UNIQUE (region_code, sandbox);
ALTER TABLE channels ADD COLUMN test_mode BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE channels ADD CONSTRAINT channels_test_mode_key UNIQUE (channel_id, test_mode);
ALTER TABLE channel_regions ADD COLUMN test_mode BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE channel_regions ADD CONSTRAINT channel_regions_channel_mode
    FOREIGN KEY (channel_id, test_mode) REFERENCES channels (channel_id, test_mode);
ALTER TABLE channel_regions ADD CONSTRAINT channel_regions_region_mode
    FOREIGN KEY (region_code, test_mode) REFERENCES pooling_regions (region_code, sandbox);

CREATE TABLE sandbox_scenarios (
    region_code TEXT    NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    channel_id  TEXT    NOT NULL,
    scenario    TEXT    NOT NULL CHECK (scenario ~ '^[a-z_]{1,40}$'),
    first_at    BIGINT  NOT NULL,
    last_at     BIGINT  NOT NULL,
    times       BIGINT  NOT NULL CHECK (times >= 1),
    PRIMARY KEY (region_code, channel_id, scenario)
);
