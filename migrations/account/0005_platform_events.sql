-- Platform events (not tenant data): what system jobs tell operators, for example a new
-- rebalancing proposal. Sent on the `platform-events` queue; its consumer records each one
-- here once (the event id is the key, so redelivery changes nothing).
-- body: CloudEvents 1.0 structured JSON {specversion, id, source, type, time, subject, data}
CREATE TABLE platform_events (
    id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body)),
    type TEXT GENERATED ALWAYS AS (body ->> '$.type') VIRTUAL,
    time TEXT GENERATED ALWAYS AS (body ->> '$.time') VIRTUAL,
    CHECK (body ->> '$.id' = id)
);
CREATE INDEX platform_events_by_type ON platform_events (type, time);
CREATE INDEX platform_events_by_time ON platform_events (time);
