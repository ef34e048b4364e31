//! Which fields of each entity hold personal data of a data subject (a client or a user), and
//! the data map: every place (shard table, account-D1 table, KV key family, R2 prefix) where
//! personal data of a subject may sit, and what erasure does with it. One owner for that
//! knowledge: redaction on read (restricted records, non-admin callers), erasure (the
//! retention sweep walks [`DATA_MAP`]), and the data-map tests (a shard table missing from the
//! map fails them) all read it from here.

/// A request id as the records keep it (an API write's event, so the append-only audit trail):
/// verbatim only in the shapes ids are generated in, Cloudflare's ray id
/// (`8f1a2b3c4d5e6f70-LHR`), the platform's own (16 lower-case hex digits) or a canonical
/// UUID; anything else a caller sent in `x-request-id` (free text: it may be a name, a phone
/// number or a date of birth, and the audit trail is never erased) as `sha256:` and the first
/// 16 hex digits of its digest, which still correlates with the caller's logs (they can hash
/// theirs) and holds nothing readable. Logs and the response keep the id as sent.
pub fn recorded_request_id(id: &str) -> String {
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, 'a'..='f'))
    };
    let ray = id.split_once('-').is_some_and(|(h, colo)| {
        hex(h, 16) && colo.len() == 3 && colo.chars().all(|c| c.is_ascii_uppercase())
    });
    let groups: Vec<&str> = id.split('-').collect();
    let uuid = groups.len() == 5 && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| hex(g, n));
    if ray || uuid || hex(id, 16) {
        return id.to_string();
    }
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(id.as_bytes()));
    format!("sha256:{}", &digest[..16])
}

/// Body fields of `table` that hold personal data, top level (nested objects count as a whole).
/// Derived copies in other rows (`adviser_name`, `search_text`) are listed under the row that
/// holds them.
pub fn fields(table: &str) -> &'static [&'static str] {
    match table {
        "clients" => &[
            "title",
            "forenames",
            "surname",
            "date_of_birth",
            "email",
            "phone",
            "address",
            "dependants",
            "notes",
            // derived copies: the search key is built from surname, forenames and postcode;
            // the adviser's name is a user's personal data
            "search_text",
            "adviser_name",
        ],
        "users" => USER_FIELDS,
        "documents" => DOCUMENT_FIELDS,
        _ => &[],
    }
}

/// Generated columns of `table` computed from personal-data fields (`fields`): a list
/// filtered or sorted on one of them would reveal a restricted record's personal data (through
/// which rows match a prefix, or the sort key in the cursor), so it leaves restricted records
/// out for anyone who may not see them.
pub fn is_personal_column(table: &str, column: &str) -> bool {
    matches!(
        (table, column),
        (
            "clients",
            "surname_lc" | "search_text" | "surname_fold" | "search_fold"
        )
    )
}

/// Where data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// A table of every data shard.
    ShardTable,
    /// A table of the account D1 (registry and operations; no tenant entities).
    AccountTable,
    /// A key family of the KV namespace (`CACHE`).
    Kv,
    /// A key prefix of the R2 bucket (`DOCUMENTS`).
    R2,
}

/// What erasure does with a place. The sweep's erasure matches on this exhaustively, so a new
/// kind of place cannot be added without saying how it is erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erasure {
    /// The subject's own rows: deleted, or pseudonymised (`[erased]`, [`fields`] removed) where
    /// kept records refer to them, or kept restricted while a law still requires the record
    /// (`retention::decide`), then disposed of when it ends.
    SubjectRows,
    /// Copies of a subject's data in other rows (denormalised fields): recomputed from the
    /// erased rows by the consumer on the `*.erased` / `*.purged` event (`services::derived`).
    DerivedCopies,
    /// Rows that hold a copy of a subject's data for a while (stored responses): the
    /// subject's rows are deleted with it.
    DeletedWithSubject,
    /// Entries keyed by a row's version: deleted for every version of the subject's rows.
    CacheEntries,
    /// Objects of a document: deleted with the document's row.
    DeletedWithRow,
    /// Pseudonymous ids, event types and field names only (never a value of a personal
    /// field): kept as they are, so the audit hash chain stays intact.
    IdsOnly,
    /// Nothing about a data subject.
    Nothing,
}

/// One place of the data map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub store: Store,
    /// Table name, or the key pattern of a KV family / R2 prefix.
    pub name: &'static str,
    /// Fields that may hold personal data (body fields; `*` the whole value).
    pub personal: &'static [&'static str],
    pub erasure: Erasure,
}

const fn place(
    store: Store,
    name: &'static str,
    personal: &'static [&'static str],
    erasure: Erasure,
) -> Place {
    Place {
        store,
        name,
        personal,
        erasure,
    }
}

/// The KV key family of the API's read cache: one key per row, whose value names the version
/// and derived-field revision it renders (a read serves it only when both are current), so
/// erasure deletes exactly one key per row, however often the row changed.
pub fn read_cache_key(account: uuid::Uuid, table: &str, id: uuid::Uuid) -> String {
    format!("r2/{account}/{table}/{id}")
}

/// Every place personal data of a client or a user may sit, and what erasure does with it.
pub const DATA_MAP: &[Place] = {
    use Erasure::*;
    use Store::*;
    &[
        place(ShardTable, "clients", CLIENT_FIELDS, SubjectRows),
        // A client's `adviser_name` (its adviser's name) and `search_text` (its own name and
        // postcode) are copies, recomputed when either subject is erased.
        place(
            ShardTable,
            "clients",
            &["adviser_name", "search_text"],
            DerivedCopies,
        ),
        place(ShardTable, "documents", DOCUMENT_FIELDS, SubjectRows),
        place(ShardTable, "users", USER_FIELDS, SubjectRows),
        // Group names and descriptions are the firm's own (reviewed: no personal data).
        place(ShardTable, "groups", &[], Nothing),
        // The response of an idempotent create: the whole rendered row, for a day.
        // Rows of the form written before keys were digested (the key as sent, a stored
        // `response`) go with the subject; rows of the digest form stay as tombstones (ids and
        // digests only), so a replay of an erased subject's create answers 410.
        place(
            ShardTable,
            "idempotency_keys",
            &["response"],
            DeletedWithSubject,
        ),
        // Change events: ids, types and changed field NAMES; holds and settings carry the
        // before/after of those (booleans and periods), never personal fields.
        place(ShardTable, "outbox", &[], IdsOnly),
        place(ShardTable, "audit_log", &[], IdsOnly),
        place(ShardTable, "audit_checkpoints", &[], IdsOnly),
        // Signed disposal checkpoints and the checkpoint job's resume point: seqs and hashes.
        place(ShardTable, "audit_disposals", &[], IdsOnly),
        place(ShardTable, "audit_checkpoint_heads", &[], IdsOnly),
        // Subject, requester and outcome are ids (and the reasons a law keeps a record).
        place(ShardTable, "erasure_requests", &[], IdsOnly),
        place(ShardTable, "account_usage", &[], Nothing),
        // A tenant's write fence while it moves (and for good on a shard it left): ids only.
        place(ShardTable, "tenant_fences", &[], IdsOnly),
        // A move's change log on its source (table names and row keys), deleted by the move.
        place(ShardTable, "move_tracking", &[], IdsOnly),
        place(ShardTable, "move_changes", &[], IdsOnly),
        // Messages the consumer could not process: change events (ids only); purged after
        // the preset's 30 days.
        place(AccountTable, "dead_letters", &[], IdsOnly),
        // One key per row: `{v, r, body}`, the stored body at that version and revision. (The
        // earlier family, `r1/.../{version}.{index_rev}`, is no longer read or written; its
        // entries expire within the day's TTL.)
        place(Kv, "r2/{account}/{table}/{id}", &["*"], CacheEntries),
        place(
            R2,
            "accounts/{account}/documents/{document}/{sha256}",
            &["*"],
            DeletedWithRow,
        ),
        // The signed audit checkpoints' own bucket (`AUDIT_CHECKPOINTS`): heads and hashes.
        place(
            R2,
            "audit-checkpoints/{account}/{period}.json",
            &[],
            IdsOnly,
        ),
    ]
};

const CLIENT_FIELDS: &[&str] = &[
    "title",
    "forenames",
    "surname",
    "date_of_birth",
    "email",
    "phone",
    "address",
    "dependants",
    "notes",
];
const USER_FIELDS: &[&str] = &["email", "display_name"];
// a document's title and description are free text written about a client
const DOCUMENT_FIELDS: &[&str] = &["title", "description"];

/// The places of one store named `name` (a table may appear twice: own fields and copies).
pub fn places(store: Store, name: &str) -> impl Iterator<Item = &'static Place> + '_ {
    DATA_MAP
        .iter()
        .filter(move |p| p.store == store && p.name == name)
}

/// Shard tables (from `sqlite_master`) the data map does not mention.
pub fn unmapped_shard_tables(tables: &[String]) -> Vec<&str> {
    tables
        .iter()
        .map(String::as_str)
        .filter(|t| places(Store::ShardTable, t).next().is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::entity::{self, Kind};

    #[test]
    fn a_callers_free_text_request_id_is_recorded_as_a_digest_and_platform_ids_verbatim() {
        for kept in [
            "8f1a2b3c4d5e6f70-LHR",
            "0badc0ffee123456",
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        ] {
            assert_eq!(recorded_request_id(kept), kept);
        }
        for free in [
            "07700900123",
            "1985-03-14",
            "AB123456C",
            "0BADC0FFEE123456",
            "zelda.quennell@example.org",
            "create zelda quennell",
            "8f1a2b3c4d5e6f70-Zelda",
            "",
            &"a".repeat(65),
        ] {
            let r = recorded_request_id(free);
            assert!(r.starts_with("sha256:") && r.len() == 23, "{free}: {r}");
            assert_eq!(r, recorded_request_id(free), "deterministic");
        }
        assert_ne!(recorded_request_id("a-1"), recorded_request_id("a-2"));
    }

    #[test]
    fn every_free_text_email_or_date_field_of_a_person_is_mapped_or_named_harmless() {
        // Fields that are declared but carry no personal data, reviewed one by one.
        const NOT_PERSONAL: &[(&str, &str)] = &[
            ("groups", "name"),
            ("groups", "description"),
            ("users", "role"),
            ("users", "group_id"),
            ("clients", "status"),
            ("clients", "group_id"),
            ("clients", "adviser_id"),
            ("clients", "relationship_ended_on"),
            ("documents", "client_id"),
            ("documents", "kind"),
        ];
        for spec in entity::ALL {
            for f in spec.fields {
                let mapped = fields(spec.table).contains(&f.name);
                let harmless = NOT_PERSONAL.contains(&(spec.table, f.name));
                assert!(
                    mapped ^ harmless,
                    "{}.{} must be either personal data (personal_data::fields) or reviewed as \
                     not personal (kind {:?})",
                    spec.table,
                    f.name,
                    matches!(f.kind, Kind::Str { .. })
                );
            }
        }
    }

    #[test]
    fn every_personal_field_of_an_entity_is_in_the_data_map_with_an_erasure() {
        for table in ["clients", "users", "documents"] {
            for f in fields(table) {
                assert!(
                    places(Store::ShardTable, table).any(|p| p.personal.contains(f)),
                    "{table}.{f} is personal data but no data-map place holds it"
                );
            }
        }
    }

    #[test]
    fn a_table_missing_from_the_data_map_is_reported() {
        let tables = vec!["clients".to_string(), "client_notes".to_string()];
        assert_eq!(unmapped_shard_tables(&tables), vec!["client_notes"]);
    }
}
