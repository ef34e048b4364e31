-- Denormalised search field of clients, maintained by the change-event consumer:
-- body.search_text = lower("{surname} {forenames} {postcode}"). Prefix search, tenant-led.
ALTER TABLE clients ADD COLUMN search_text TEXT GENERATED ALWAYS AS (body ->> '$.search_text') VIRTUAL;
CREATE INDEX clients_by_search ON clients (account_id, search_text, id) WHERE deleted_at IS NULL;
