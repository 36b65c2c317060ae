-- The console's roster upload (issue 16): an import's rejection file (未通过明细), kept 30 days
-- for its uploader's scope to download, correct and upload again. Under the uploader's region
-- ('000000' for the centre) and station; at most 16 MiB each (MAX_REJECTION_FILE_BYTES).
CREATE TABLE roster_rejection_files (
    region_code  TEXT    NOT NULL,
    import_id    TEXT    NOT NULL,
    station_code TEXT,
    uploaded_by  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    file_name    TEXT    NOT NULL,
    rows_kept    INTEGER NOT NULL CHECK (rows_kept >= 0),
    content      TEXT    NOT NULL CHECK (length(CAST(content AS BLOB)) <= 16777216),
    PRIMARY KEY (region_code, import_id)
);
-- Pruning after 30 days, oldest first.
CREATE INDEX roster_rejection_files_by_age ON roster_rejection_files (created_at);
