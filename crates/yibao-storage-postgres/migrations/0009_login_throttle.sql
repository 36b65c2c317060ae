-- Staff sign-in throttling (issue 10, defect 12): sign-in attempts counted per account (the user
-- name as typed) and per client address, in a 15-minute window that starts with the first attempt.
-- Each attempt is counted before its password is checked, by one conditional upsert that refuses
-- past the limit (5 for an account, 20 for an address), so that concurrent attempts and several
-- servers on one database share the count. A successful sign-in forgets the account's count and
-- returns its attempt to the address. Windows that have ended are deleted by the next attempt.
-- Sign-ins are not regional (like staff_sessions), so this table carries no region code.
CREATE TABLE login_throttle (
    key_kind          TEXT   NOT NULL CHECK (key_kind IN ('account', 'address')),
    key_value         TEXT   NOT NULL CHECK (char_length(key_value) BETWEEN 1 AND 64),
    window_started_at BIGINT NOT NULL,
    attempts          BIGINT NOT NULL,
    PRIMARY KEY (key_kind, key_value),
    CONSTRAINT login_throttle_limit CHECK (
        attempts >= 0 AND attempts <= CASE key_kind WHEN 'account' THEN 5 ELSE 20 END
    )
);
CREATE INDEX login_throttle_by_age ON login_throttle (window_started_at);
