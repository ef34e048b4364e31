//! The forward-only migrations, embedded at build time from `migrations/` (see build.rs).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// File name, as wrangler records it in `d1_migrations.name`.
    pub name: &'static str,
    pub sql: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    fn check_names(set: &[Migration]) {
        assert!(!set.is_empty());
        for (i, m) in set.iter().enumerate() {
            let want = format!("{:04}_", i + 1);
            assert!(
                m.name.starts_with(&want),
                "{} should start with {want}",
                m.name
            );
            assert!(m.name.ends_with(".sql"));
        }
    }

    #[test]
    fn migrations_are_numbered_without_gaps() {
        check_names(ACCOUNT);
        check_names(SHARD);
    }
}
