-- Which account trusts an OIDC (issuer, audience) pair: the API reads a token's `iss` and `aud`
-- (unverified) to find the account whose identity settings verify it. One account per pair (the
-- primary key refuses a second claimant). The account's own settings (`accounts.body.identity`)
-- are the truth; this table is their index, claimed before and released after a settings change.
-- id: sha256 hex of the JSON array [issuer, audience] (`domain::identity::issuer_key`).
-- body: {account_id, issuer, audience, claimed_at}
CREATE TABLE account_issuers (
    id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body)),
    account_id TEXT GENERATED ALWAYS AS (body ->> '$.account_id') VIRTUAL -- released per account
);
CREATE INDEX account_issuers_by_account ON account_issuers (account_id, id);
