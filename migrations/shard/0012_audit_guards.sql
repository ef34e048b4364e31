-- The audit trail against someone who can write to this database (issue 13). The schema
-- refuses what SQL can refuse; the Ed25519-signed checkpoints kept outside D1
-- (domain::checkpoint) catch the rest.
--
-- INSERT OR REPLACE, REPLACE and upserts resolve a collision by deleting the old row, and that
-- delete fires no DELETE trigger while recursive_triggers is off: refuse every insert that
-- collides with an existing row, before conflict resolution runs. The message keeps SQLite's
-- wording, so a lost race for the chain head is still classified as the constraint failure it
-- is (ports::StoreError::from_message) and retried with a fresh head.
CREATE TRIGGER audit_log_no_collision BEFORE INSERT ON audit_log
WHEN EXISTS (SELECT 1 FROM audit_log WHERE account_id = NEW.account_id AND seq = NEW.seq)
  OR EXISTS (SELECT 1 FROM audit_log
             WHERE account_id = NEW.account_id AND event_id = (NEW.body ->> '$.event_id'))
BEGIN
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: audit_log (append-only: a row is never replaced)');
END;

-- Disposal of old audit rows (the audit log's own retention) is itself a signed checkpoint
-- (domain::checkpoint::Kind::Disposal): the record of what was removed and of the hash the
-- remaining trail continues from. Append-only. SQL cannot check a signature, so a row here
-- unlocks DELETE of the rows it covers and verify checks it: an unsigned or forged disposal
-- is reported as a cut head.
CREATE TABLE audit_disposals (
    account_id TEXT NOT NULL,
    through_seq INTEGER NOT NULL,
    body TEXT NOT NULL CHECK (json_valid(body)),
    PRIMARY KEY (account_id, through_seq),
    -- IS, not =: a missing field is NULL, and a CHECK that yields NULL passes.
    CHECK (body ->> '$.account_id' IS account_id),
    CHECK (body ->> '$.disposed_through' IS through_seq),
    CHECK (json_type(body, '$.signature') IS 'text' AND json_type(body, '$.key_id') IS 'text')
);
CREATE TRIGGER audit_disposals_no_collision BEFORE INSERT ON audit_disposals
WHEN EXISTS (SELECT 1 FROM audit_disposals
             WHERE account_id = NEW.account_id AND through_seq = NEW.through_seq)
BEGIN
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: audit_disposals (append-only)');
END;
CREATE TRIGGER audit_disposals_no_update BEFORE UPDATE ON audit_disposals
BEGIN
    SELECT RAISE(ABORT, 'audit_disposals is append-only');
END;
CREATE TRIGGER audit_disposals_no_delete BEFORE DELETE ON audit_disposals
BEGIN
    SELECT RAISE(ABORT, 'audit_disposals is append-only');
END;

-- Rows are deleted only below a disposal checkpoint. The unsigned, rewritable floor of 0004
-- (audit_checkpoints) unlocks nothing any more and takes no writes.
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq > coalesce((SELECT max(through_seq) FROM audit_disposals
                         WHERE account_id = OLD.account_id), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit_log rows are deleted only below a signed disposal checkpoint');
END;
CREATE TRIGGER audit_checkpoints_no_insert BEFORE INSERT ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is retired: disposals are signed (audit_disposals)');
END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is retired: disposals are signed (audit_disposals)');
END;

-- Where the checkpoint job continues for each account: the last period it signed and that
-- checkpoint's digest (domain::checkpoint::digest). Only a resume point: the signed objects in
-- the checkpoint bucket are the record, and a tampered row here can only make the job chain
-- wrongly, which verify reports.
-- body: {period, digest, head_seq}
CREATE TABLE audit_checkpoint_heads (
    account_id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body))
);
