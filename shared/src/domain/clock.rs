//! Time and identity are inputs: domain code never reads a global clock or RNG.

use std::cell::Cell;
use time::OffsetDateTime;
use uuid::Uuid;

pub trait Clock {
    fn now(&self) -> OffsetDateTime;
}

/// A clock a test moves by hand.
#[derive(Debug)]
pub struct FixedClock(Cell<OffsetDateTime>);

impl FixedClock {
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Cell::new(at))
    }
    pub fn advance(&self, by: time::Duration) {
        self.0.set(self.0.get() + by);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0.get()
    }
}

/// Source of random bytes (crypto.getRandomValues in a Worker, a counter in tests).
pub trait Entropy {
    fn fill(&self, buf: &mut [u8]);
}

/// New ids: UUID v7 for anything ordered by creation (events, entities), v4 otherwise.
pub fn uuid_v7(now: OffsetDateTime, entropy: &impl Entropy) -> Uuid {
    let mut rand = [0u8; 10];
    entropy.fill(&mut rand);
    let millis = (now.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    uuid::Builder::from_unix_timestamp_millis(millis, &rand).into_uuid()
}

pub fn uuid_v4(entropy: &impl Entropy) -> Uuid {
    let mut b = [0u8; 16];
    entropy.fill(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// Deterministic entropy for tests: a splitmix64 stream (uniform bytes, same every run).
#[derive(Debug, Default)]
pub struct CountingEntropy(Cell<u64>);

impl Entropy for CountingEntropy {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut z = self.0.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            self.0.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// RFC 3339 with millisecond precision in UTC, the one timestamp format stored and sent.
pub fn rfc3339(t: OffsetDateTime) -> String {
    // checked: converting an extreme date to UTC can leave time's range
    let t = t
        .checked_to_offset(time::UtcOffset::UTC)
        .unwrap_or(if t.year() > 0 {
            time::PrimitiveDateTime::MAX.assume_utc()
        } else {
            time::PrimitiveDateTime::MIN.assume_utc()
        });
    let ms = t.millisecond();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        ms
    )
}

pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn rfc3339_is_utc_with_millis_and_sorts_as_text() {
        let a = rfc3339(datetime!(2026-11-26 05:00:01.5 +01:00));
        assert_eq!(a, "2026-11-26T04:00:01.500Z");
        let b = rfc3339(datetime!(2026-11-26 04:00:02 UTC));
        assert!(a < b);
        assert_eq!(
            parse_rfc3339(&a),
            Some(datetime!(2026-11-26 04:00:01.5 UTC))
        );
    }

    #[test]
    fn uuid_v7_embeds_the_injected_time() {
        let e = CountingEntropy::default();
        let a = uuid_v7(datetime!(2026-01-01 00:00 UTC), &e);
        let b = uuid_v7(datetime!(2026-01-01 00:00:01 UTC), &e);
        assert_eq!(a.get_version_num(), 7);
        assert!(a < b, "v7 ids sort by time");
        assert_ne!(uuid_v4(&e), uuid_v4(&e));
    }
}
