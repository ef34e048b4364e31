//! Case folding of the prefix-searched columns (group names, client surnames, the clients'
//! search text), the same on write and on query. SQLite's `lower()` folds ASCII only (D1 has
//! no ICU), so `Øster` would never match `øster`. The fold is one table, [`pairs`]: ASCII
//! letters, every capital of Latin-1 and Latin Extended-A with a one-letter lower case, `İ` to
//! `i`, and `ß`/`ẞ` to `ss`. The generated columns apply it in SQL ([`sql_stages`]: `replace()`
//! over `lower()`, in stages of at most [`STAGE`] replacements, each stage a generated column
//! over the previous one, because D1 refuses expressions deeper than 100; written into
//! migration 0013, which a test checks), the
//! list query applies it in Rust ([`fold`]), and a test checks both give the same string for
//! every letter of the table. Letters outside the table are kept as they are on both sides
//! (folded nowhere, so they still match themselves).
//! Not handled: decomposed input (`e` + U+0301) does not match the composed `é`.

use std::sync::OnceLock;

/// Uppercase letters (outside ASCII) and what they fold to, in code point order.
pub fn pairs() -> &'static [(char, String)] {
    static PAIRS: OnceLock<Vec<(char, String)>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        let ranges = [
            '\u{00C0}'..='\u{00DE}', // Latin-1 Supplement capitals
            '\u{0100}'..='\u{017F}', // Latin Extended-A
        ];
        let mut out: Vec<(char, String)> = ranges
            .into_iter()
            .flatten()
            .filter_map(|c| {
                let mut lower = c.to_lowercase();
                match (lower.next(), lower.next()) {
                    (Some(l), None) if l != c => Some((c, l.to_string())),
                    _ => None,
                }
            })
            .collect();
        out.push(('\u{0130}', "i".into())); // İ: lower case is i + combining dot
        out.push(('\u{1E9E}', "ss".into())); // ẞ
        out.push(('\u{00DF}', "ss".into())); // ß
        out.sort();
        out
    })
}

/// The fold of `s` (what a prefix query compares against the folded column).
pub fn fold(s: &str) -> String {
    let table = pairs();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push(c.to_ascii_lowercase());
        } else if let Ok(i) = table.binary_search_by(|(k, _)| k.cmp(&c)) {
            out.push_str(&table[i].1);
        } else {
            out.push(c);
        }
    }
    out
}

/// Replacements per generated column: with `lower()` and `body ->> '$.f'` well under D1's
/// expression depth of 100.
pub const STAGE: usize = 50;

/// The fold of the SQL expression `expr` as generated columns: `(name, definition)` in order,
/// the last one named `column`, each earlier one `{column}_{n}` and read by the next.
pub fn sql_stages(expr: &str, column: &str) -> Vec<(String, String)> {
    let chunks: Vec<&[(char, String)]> = pairs().chunks(STAGE).collect();
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut sql = match out.last() {
            None => format!("lower({expr})"),
            Some((prev, _)) => prev.clone(),
        };
        for (c, to) in chunk.iter() {
            sql = format!("replace({sql}, '{c}', '{to}')");
        }
        let name = if i + 1 == chunks.len() {
            column.to_string()
        } else {
            format!("{column}_{}", i + 1)
        };
        out.push((name, sql));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_maps_capitals_to_small_letters_and_sharp_s_to_ss() {
        assert_eq!(fold("Øster"), "øster");
        assert_eq!(fold("ÉLODIE"), "élodie");
        assert_eq!(fold("Strauß"), "strauss");
        assert_eq!(fold("ŁUKASZ Ženíšek"), "łukasz ženíšek");
        assert_eq!(fold("ΑΘΗΝΑ"), "ΑΘΗΝΑ", "Greek is not in the table");
        assert_eq!(fold("İzmir"), "izmir");
        assert_eq!(fold("ø already"), "ø already");
        // outside the table: kept as is on both sides
        assert_eq!(fold("Ꭰ"), "Ꭰ");
    }

    #[test]
    fn the_table_is_sorted_unique_and_never_folds_to_a_capital_of_its_own() {
        let t = pairs();
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        for (_, to) in t {
            assert!(
                to.chars().all(|c| fold(&c.to_string()) == c.to_string()),
                "{to}"
            );
        }
        assert!(t.len() > 90, "{}", t.len());
    }
}
