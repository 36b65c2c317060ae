-- The audit log is read newest first (its key is (region_code, audit_id)), and by actor, newest
-- first, over every entry (the console's filters).
CREATE INDEX audit_log_newest ON audit_log (audit_id);
CREATE INDEX audit_log_actor ON audit_log (actor, audit_id);
