-- The audit log is read by actor, newest first, over every entry (the console's filters).
CREATE INDEX audit_log_actor ON audit_log (actor, audit_id);
