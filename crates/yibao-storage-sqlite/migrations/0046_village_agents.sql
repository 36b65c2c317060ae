-- Village agents (村代办员, issue 17): the agents of a village_agent channel, each of one region
-- and serving villages given as their service stations' codes (comma-separated); every order of
-- such a channel records its agent; the cash an agent hands in (交款) per day, recorded by staff.
CREATE TABLE village_agents (
    channel_id  TEXT    NOT NULL REFERENCES channels (channel_id),
    agent_code  TEXT    NOT NULL CHECK (length(agent_code) BETWEEN 1 AND 20
                            AND agent_code NOT GLOB '*[^A-Za-z0-9-]*'),
    region_code TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 20),
    villages    TEXT    NOT NULL CHECK (villages <> '' AND length(villages) <= 2000),
    enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    updated_by  TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (channel_id, agent_code)
) STRICT;
CREATE INDEX village_agents_by_region ON village_agents (region_code, channel_id, agent_code);

ALTER TABLE orders ADD COLUMN agent_code TEXT
    CHECK (agent_code IS NULL OR (length(agent_code) BETWEEN 1 AND 20
        AND agent_code NOT GLOB '*[^A-Za-z0-9-]*'));
CREATE INDEX orders_by_agent ON orders (region_code, channel_id, agent_code) WHERE agent_code IS NOT NULL;

CREATE TABLE agent_handins (
    region_code TEXT    NOT NULL REFERENCES pooling_regions (region_code),
    channel_id  TEXT    NOT NULL,
    agent_code  TEXT    NOT NULL,
    handed_on   TEXT    NOT NULL CHECK (handed_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    amount_fen  INTEGER NOT NULL CHECK (amount_fen BETWEEN 0 AND 100000000000),
    recorded_by TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (region_code, channel_id, agent_code, handed_on),
    FOREIGN KEY (channel_id, agent_code) REFERENCES village_agents (channel_id, agent_code)
) STRICT;
