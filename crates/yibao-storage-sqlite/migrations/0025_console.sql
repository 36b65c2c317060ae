-- The staff console (issue 16).
-- A password set by someone else (a new account, a reset by the administrator) must be replaced by
-- its holder at the next sign-in. Existing accounts keep working as they are.
ALTER TABLE staff ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1));

-- Finding a person by name within a region (the console's 参保人员 search): BINARY collation is
-- code-point order for UTF-8, the same order PostgreSQL's "C" gives.
CREATE INDEX persons_by_name ON persons (region_code, name);
