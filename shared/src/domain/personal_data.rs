//! Which fields of each entity hold personal data of a data subject (a client or a user).
//! One owner for that knowledge: redaction on read (restricted records, non-admin callers),
//! erasure (what is pseudonymised), and the data-map test that fails when a table gains a
//! personal-data column nobody mapped all read it from here.

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
        "users" => &["email", "display_name"],
        // a document's title and description are free text written about a client
        "documents" => &["title", "description"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::entity::{self, Kind};

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
}
