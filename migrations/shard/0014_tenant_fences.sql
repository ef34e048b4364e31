-- Tenant moves (issue 15): a per-tenant write fence on a shard.
-- body: {move_id, role: source|target, state: fenced|copy|moved, token, at, head: {seq, hash}|null}
--   target, fenced: the move is filling this shard; nothing but the move writes the tenant here.
--   source, fenced: cutover; the tenant's writes are refused here, reads go on.
--   source, moved:  the tenant lives elsewhere now. Kept forever: a stale route can never write
--                   here again, and the tenant's rows here may be deleted (cleanup).
--   copy:           only inside one of the move's own batches (set by its first statement,
--                   reset by its last; a D1 batch is one transaction), guarded by `token`, the
--                   lease token of the run that drives the move (a stale run's batch is refused).
CREATE TABLE tenant_fences (
    account_id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body)),
    state TEXT GENERATED ALWAYS AS (body ->> '$.state') VIRTUAL,
    CHECK (body ->> '$.state' IN ('fenced', 'copy', 'moved')),
    CHECK (body ->> '$.role' IN ('source', 'target'))
);

-- Every change the write protocol makes writes an outbox row in the same batch (services::changes),
-- and so does every account event forwarded to the shard: refusing that row refuses the whole
-- batch, inside the transaction, whatever route the writer used. The message is the typed
-- refusal (ports::StoreError::Fenced).
CREATE TRIGGER outbox_tenant_fence BEFORE INSERT ON outbox
WHEN EXISTS (SELECT 1 FROM tenant_fences WHERE account_id = NEW.account_id AND state IS NOT 'copy')
BEGIN
    SELECT RAISE(ABORT, 'tenant_fenced: the tenant is moving or has moved off this shard');
END;
-- The API's usage flush writes outside the write protocol: fenced the same way, so a stale
-- isolate cannot leave usage rows behind on a shard the tenant left.
CREATE TRIGGER account_usage_tenant_fence_insert BEFORE INSERT ON account_usage
WHEN EXISTS (SELECT 1 FROM tenant_fences WHERE account_id = NEW.account_id AND state IS NOT 'copy')
BEGIN
    SELECT RAISE(ABORT, 'tenant_fenced: the tenant is moving or has moved off this shard');
END;
CREATE TRIGGER account_usage_tenant_fence_update BEFORE UPDATE ON account_usage
WHEN EXISTS (SELECT 1 FROM tenant_fences WHERE account_id = NEW.account_id AND state IS NOT 'copy')
BEGIN
    SELECT RAISE(ABORT, 'tenant_fenced: the tenant is moving or has moved off this shard');
END;

-- The audit trail of a tenant that moved lives on on the target shard (copied link by link and
-- verified equal, head included, before the route flipped; the anchors in the checkpoint bucket
-- are account-scoped and unchanged). On the source, and only once the tenant's fence there says
-- `moved`, cleanup may delete the copy it left; on a target, a move that is rolled back (or a
-- disposal the source made meanwhile) removes what it copied, while its `target` fence stands.
-- Otherwise only below a signed disposal, as before. Nothing else changes: no UPDATE, no
-- REPLACE, no delete of the trail of a tenant that lives here.
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq > coalesce((SELECT max(through_seq) FROM audit_disposals
                         WHERE account_id = OLD.account_id), 0)
  AND NOT EXISTS (SELECT 1 FROM tenant_fences
                  WHERE account_id = OLD.account_id
                    AND (state = 'moved' OR body ->> '$.role' = 'target'))
BEGIN
    SELECT RAISE(ABORT, 'audit_log rows are deleted only below a signed disposal checkpoint');
END;
DROP TRIGGER audit_disposals_no_delete;
CREATE TRIGGER audit_disposals_no_delete BEFORE DELETE ON audit_disposals
WHEN NOT EXISTS (SELECT 1 FROM tenant_fences
                 WHERE account_id = OLD.account_id
                   AND (state = 'moved' OR body ->> '$.role' = 'target'))
BEGIN
    SELECT RAISE(ABORT, 'audit_disposals is append-only');
END;
