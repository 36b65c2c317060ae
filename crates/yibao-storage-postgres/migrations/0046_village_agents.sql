-- Village agents (村代办员, issue 17): the agents of a village_agent channel, each of one region
-- and serving villages given as their service stations' codes (comma-separated); every order of
-- such a channel records its agent; the cash an agent hands in (交款) per day, recorded by staff.
-- (No foreign keys to or from village_agents: on a Citus cluster upgraded in place, a new table
-- with a foreign key to a reference table becomes a coordinator-local table at once instead of a
-- reference table; the service checks the channel, the region and the agent.)
CREATE TABLE village_agents (
    channel_id  TEXT    NOT NULL,
    agent_code  TEXT    NOT NULL CHECK (agent_code ~ '^[A-Za-z0-9-]{1,20}$'),
    region_code TEXT    NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    name        TEXT    NOT NULL CHECK (char_length(name) BETWEEN 1 AND 20),
    villages    TEXT    NOT NULL CHECK (villages <> '' AND char_length(villages) <= 2000),
    enabled     BOOLEAN NOT NULL,
    updated_by  TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (channel_id, agent_code)
);
CREATE INDEX village_agents_by_region ON village_agents (region_code, channel_id, agent_code);

ALTER TABLE orders ADD COLUMN agent_code TEXT;
ALTER TABLE orders ADD CONSTRAINT orders_agent_code_format CHECK (agent_code IS NULL OR agent_code ~ '^[A-Za-z0-9-]{1,20}$');
CREATE INDEX orders_by_agent ON orders (region_code, channel_id, agent_code) WHERE agent_code IS NOT NULL;

CREATE TABLE agent_handins (
    region_code TEXT    NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    channel_id  TEXT    NOT NULL,
    agent_code  TEXT    NOT NULL CHECK (agent_code ~ '^[A-Za-z0-9-]{1,20}$'),
    handed_on   DATE    NOT NULL,
    amount_fen  BIGINT  NOT NULL CHECK (amount_fen BETWEEN 0 AND 100000000000),
    recorded_by TEXT    NOT NULL,
    recorded_at BIGINT  NOT NULL,
    PRIMARY KEY (region_code, channel_id, agent_code, handed_on)
);
