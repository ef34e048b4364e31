//! Pure helpers: percentiles, CSV, RFC 3339 to epoch milliseconds.

/// The p-th percentile (0-100) of unsorted samples, nearest rank; None when empty.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len()) - 1).copied()
}

/// CSV text: a header line and one line per row; fields with `,`, `"` or newlines are quoted.
pub fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = header
        .iter()
        .map(|h| field(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for r in rows {
        out += &r.iter().map(|s| field(s)).collect::<Vec<_>>().join(",");
        out.push('\n');
    }
    out
}

/// `2026-11-26T08:00:01.250Z` (the product's format) as milliseconds since the epoch.
pub fn rfc3339_ms(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm) = (num(11..13)?, num(14..16)?);
    let secs: f64 = s.get(17..s.len() - 1)?.parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60) as f64 + secs) * 1000.0)
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        let s = csv(
            &["a", "b"],
            &[
                vec!["1".into(), "x,y".into()],
                vec!["say \"hi\"".into(), "2".into()],
            ],
        );
        assert_eq!(s, "a,b\n1,\"x,y\"\n\"say \"\"hi\"\"\",2\n");
    }

    #[test]
    fn rfc3339_to_epoch_ms() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00.000Z"), Some(0.0));
        assert_eq!(
            rfc3339_ms("2000-03-01T00:00:01.250Z"),
            Some(951_868_801_250.0)
        );
        assert_eq!(
            rfc3339_ms("2026-11-26T08:00:00Z"),
            Some(1_795_680_000_000.0)
        );
        assert_eq!(rfc3339_ms("yesterday"), None);
    }
}
