-- Tenant moves (issue 15): a per-tenant change log on a move's source, so the fenced part of
-- a move re-checks only the rows changed since the full verify that ran before the fence
-- (the fenced window no longer grows with the tenant).
-- move_tracking: the tenant's changes on this shard are logged (a move is catching up from
--   here). body: {move_id, at}. Set by the move, removed at its cleanup or rollback.
-- move_changes: one row per change of a tenant row while tracked, in commit order.
--   body: {t: table, k: the row's key}. Written by the triggers below, in the same
--   transaction as the change; deleted by the move's cleanup or rollback.
CREATE TABLE move_tracking (
    account_id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body))
);
CREATE TABLE move_changes (
    account_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL CHECK (json_valid(body)),
    PRIMARY KEY (account_id, seq)
);

CREATE TRIGGER groups_move_log_insert AFTER INSERT ON groups
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'groups', 'k', NEW.id));
END;

CREATE TRIGGER groups_move_log_update AFTER UPDATE ON groups
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'groups', 'k', NEW.id));
END;

CREATE TRIGGER groups_move_log_delete AFTER DELETE ON groups
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = OLD.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (OLD.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = OLD.account_id), 0) + 1,
        json_object('t', 'groups', 'k', OLD.id));
END;

CREATE TRIGGER users_move_log_insert AFTER INSERT ON users
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'users', 'k', NEW.id));
END;

CREATE TRIGGER users_move_log_update AFTER UPDATE ON users
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'users', 'k', NEW.id));
END;

CREATE TRIGGER users_move_log_delete AFTER DELETE ON users
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = OLD.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (OLD.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = OLD.account_id), 0) + 1,
        json_object('t', 'users', 'k', OLD.id));
END;

CREATE TRIGGER clients_move_log_insert AFTER INSERT ON clients
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'clients', 'k', NEW.id));
END;

CREATE TRIGGER clients_move_log_update AFTER UPDATE ON clients
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'clients', 'k', NEW.id));
END;

CREATE TRIGGER clients_move_log_delete AFTER DELETE ON clients
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = OLD.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (OLD.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = OLD.account_id), 0) + 1,
        json_object('t', 'clients', 'k', OLD.id));
END;

CREATE TRIGGER documents_move_log_insert AFTER INSERT ON documents
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'documents', 'k', NEW.id));
END;

CREATE TRIGGER documents_move_log_update AFTER UPDATE ON documents
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'documents', 'k', NEW.id));
END;

CREATE TRIGGER documents_move_log_delete AFTER DELETE ON documents
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = OLD.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (OLD.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = OLD.account_id), 0) + 1,
        json_object('t', 'documents', 'k', OLD.id));
END;

CREATE TRIGGER erasure_requests_move_log_insert AFTER INSERT ON erasure_requests
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'erasure_requests', 'k', NEW.id));
END;

CREATE TRIGGER erasure_requests_move_log_update AFTER UPDATE ON erasure_requests
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'erasure_requests', 'k', NEW.id));
END;

CREATE TRIGGER erasure_requests_move_log_delete AFTER DELETE ON erasure_requests
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = OLD.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (OLD.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = OLD.account_id), 0) + 1,
        json_object('t', 'erasure_requests', 'k', OLD.id));
END;

CREATE TRIGGER idempotency_keys_move_log_insert AFTER INSERT ON idempotency_keys
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'idempotency_keys', 'k', NEW.id));
END;

CREATE TRIGGER idempotency_keys_move_log_update AFTER UPDATE ON idempotency_keys
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'idempotency_keys', 'k', NEW.id));
END;

CREATE TRIGGER idempotency_keys_move_log_delete AFTER DELETE ON idempotency_keys
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = OLD.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (OLD.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = OLD.account_id), 0) + 1,
        json_object('t', 'idempotency_keys', 'k', OLD.id));
END;

CREATE TRIGGER account_usage_move_log_insert AFTER INSERT ON account_usage
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'account_usage', 'k', NEW.id));
END;

CREATE TRIGGER account_usage_move_log_update AFTER UPDATE ON account_usage
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'account_usage', 'k', NEW.id));
END;

CREATE TRIGGER account_usage_move_log_delete AFTER DELETE ON account_usage
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = OLD.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (OLD.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = OLD.account_id), 0) + 1,
        json_object('t', 'account_usage', 'k', OLD.id));
END;

CREATE TRIGGER outbox_move_log_insert AFTER INSERT ON outbox
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'outbox', 'k', NEW.id));
END;

CREATE TRIGGER outbox_move_log_update AFTER UPDATE ON outbox
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'outbox', 'k', NEW.id));
END;

CREATE TRIGGER outbox_move_log_delete AFTER DELETE ON outbox
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = OLD.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (OLD.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = OLD.account_id), 0) + 1,
        json_object('t', 'outbox', 'k', OLD.id));
END;

CREATE TRIGGER audit_disposals_move_log_insert AFTER INSERT ON audit_disposals
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'audit_disposals', 'k', NEW.through_seq));
END;

CREATE TRIGGER audit_disposals_move_log_update AFTER UPDATE ON audit_disposals
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'audit_disposals', 'k', NEW.through_seq));
END;

CREATE TRIGGER audit_disposals_move_log_delete AFTER DELETE ON audit_disposals
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = OLD.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (OLD.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = OLD.account_id), 0) + 1,
        json_object('t', 'audit_disposals', 'k', OLD.through_seq));
END;

CREATE TRIGGER audit_log_move_log_insert AFTER INSERT ON audit_log
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'audit_log', 'k', NEW.seq));
END;

CREATE TRIGGER audit_log_move_log_update AFTER UPDATE ON audit_log
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'audit_log', 'k', NEW.seq));
END;

CREATE TRIGGER audit_log_move_log_delete AFTER DELETE ON audit_log
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = OLD.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (OLD.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = OLD.account_id), 0) + 1,
        json_object('t', 'audit_log', 'k', OLD.seq));
END;

CREATE TRIGGER audit_checkpoint_heads_move_log_insert AFTER INSERT ON audit_checkpoint_heads
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'audit_checkpoint_heads', 'k', NEW.account_id));
END;

CREATE TRIGGER audit_checkpoint_heads_move_log_update AFTER UPDATE ON audit_checkpoint_heads
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = NEW.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (NEW.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = NEW.account_id), 0) + 1,
        json_object('t', 'audit_checkpoint_heads', 'k', NEW.account_id));
END;

CREATE TRIGGER audit_checkpoint_heads_move_log_delete AFTER DELETE ON audit_checkpoint_heads
WHEN EXISTS (SELECT 1 FROM move_tracking WHERE account_id = OLD.account_id)
BEGIN
    INSERT INTO move_changes (account_id, seq, body) VALUES (OLD.account_id,
        coalesce((SELECT max(seq) FROM move_changes WHERE account_id = OLD.account_id), 0) + 1,
        json_object('t', 'audit_checkpoint_heads', 'k', OLD.account_id));
END;
