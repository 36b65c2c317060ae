-- The staff console (issue 16).
-- A password set by someone else (a new account, a reset by the administrator) must be replaced by
-- its holder at the next sign-in. Existing accounts keep working as they are.
ALTER TABLE staff ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;

-- Finding a person by name within a region (the console's 参保人员 search): a range on the name in
-- code-point order, which "C" gives on any database collation and which SQLite's BINARY matches.
CREATE INDEX persons_by_name ON persons (region_code, name COLLATE "C");
