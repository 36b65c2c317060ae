-- The citizen site's accounts (issue 11): signing in with a one-time code sent to the phone on
-- record, the sessions it opens, the family a resident pays for, the reminder preference, and the
-- text messages (短信) waiting for the SMS sender. Every table is keyed by the region of the
-- resident's record (the one whose phone the code went to), so a region's rows stay on one shard.

-- One sign-in code per person: only its SHA-256 is kept, with the SHA-256 of the token of the
-- page that asked for it (the second step must come from that page). A new code replaces the old
-- one (not sooner than the resend interval, at most a number a day); five wrong tries, or its
-- use, spend it (tries_left 0), and the row stays for the day's count until pruned.
CREATE TABLE citizen_sign_in_codes (
    region_code TEXT    NOT NULL,
    id_number   TEXT    NOT NULL,
    code_hash   TEXT    NOT NULL,
    step_hash   TEXT    NOT NULL,
    issued_at   INTEGER  NOT NULL,
    expires_at  INTEGER  NOT NULL CHECK (expires_at > issued_at),
    tries_left  INTEGER NOT NULL CHECK (tries_left BETWEEN 0 AND 5),
    -- Codes sent on `sent_day` (days since 1970-01-01, Beijing time), for the daily bound.
    sent_day    INTEGER  NOT NULL,
    sent_today  INTEGER NOT NULL CHECK (sent_today >= 1),
    PRIMARY KEY (region_code, id_number)
);

-- A signed-in resident: the cookie holds the region and a random token, stored as its SHA-256.
CREATE TABLE citizen_sessions (
    region_code TEXT   NOT NULL,
    token_hash  TEXT   NOT NULL,
    id_number   TEXT   NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL CHECK (expires_at > created_at),
    PRIMARY KEY (region_code, token_hash)
);
CREATE INDEX citizen_sessions_expiry ON citizen_sessions (expires_at);

-- 我的家庭: the persons a resident added (ID number and name as the agency's record had them).
CREATE TABLE citizen_family_members (
    region_code      TEXT   NOT NULL,
    owner_id_number  TEXT   NOT NULL,
    member_id_number TEXT   NOT NULL CHECK (member_id_number <> owner_id_number),
    member_name      TEXT   NOT NULL CHECK (length(member_name) BETWEEN 1 AND 64),
    added_at         INTEGER NOT NULL,
    PRIMARY KEY (region_code, owner_id_number, member_id_number)
);

-- Whether a resident wants payment reminders (no row: yes, the default).
CREATE TABLE citizen_preferences (
    region_code TEXT    NOT NULL,
    id_number   TEXT    NOT NULL,
    reminders   INTEGER NOT NULL CHECK (reminders IN (0, 1)),
    updated_at  INTEGER  NOT NULL,
    PRIMARY KEY (region_code, id_number)
);

-- Text messages to send, written in the same transaction as what they announce and sent by the
-- background sender with retries. The body is emptied once sent or given up, so a code does not
-- stay readable in the database.
CREATE TABLE message_outbox (
    region_code     TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    phone           TEXT    NOT NULL CHECK (length(phone) = 11 AND phone GLOB '1[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]'),
    body            TEXT    NOT NULL,
    created_at      INTEGER  NOT NULL,
    send_before     INTEGER  NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER  NOT NULL,
    sent_at         INTEGER,
    dead            INTEGER NOT NULL DEFAULT 0 CHECK (dead IN (0, 1)),
    PRIMARY KEY (region_code, message_id)
);
CREATE INDEX message_outbox_done ON message_outbox (created_at) WHERE sent_at IS NOT NULL OR dead = 1;
CREATE INDEX message_outbox_pending ON message_outbox (next_attempt_at) WHERE sent_at IS NULL AND dead = 0;

-- The site asks its payment provider about its own unpaid orders once a minute (a notification
-- that never came): by channel and expiry, not by reading every order.
CREATE INDEX orders_by_channel_expiry ON orders (channel_id, expires_at);
