-- The audit log is append-only: rows are deleted only by retention, and only below a checkpoint
-- that records where the chain continues. verify() starts from the checkpoint (or from seq 1
-- and the genesis hash), so a deleted row or a cut-off start is reported.
-- body: {seq, hash, purged_at}: rows with seq <= body.seq may be deleted.
CREATE TABLE audit_checkpoints (
    account_id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body))
);
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq > coalesce((SELECT body ->> '$.seq' FROM audit_checkpoints WHERE account_id = OLD.account_id), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit_log rows are deleted only below a retention checkpoint');
END;
