-- GDPR erasure requests (UK GDPR Art. 17), processed by the retention sweep within the month.
-- body: {id, subject_type: client|user, subject_id, requested_by, received_at, due_by,
--        status: pending|completed|restricted, completed_at, outcome: {...}}
CREATE TABLE erasure_requests (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL CHECK (json_valid(body)),
    status TEXT GENERATED ALWAYS AS (body ->> '$.status') VIRTUAL,
    PRIMARY KEY (account_id, id),
    CHECK (body ->> '$.subject_type' IN ('client', 'user'))
);
CREATE INDEX erasure_requests_by_status ON erasure_requests (account_id, status, id);
