-- The nightly purge deletes one account's expired idempotency keys: with this index it reads
-- only those (the primary key made it read every key of the account, every night).
CREATE INDEX idempotency_by_account_age ON idempotency_keys (account_id, created_at);
