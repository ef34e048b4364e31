//! Cloudflare's published list prices (USD), read on 2026-12-02 through the project's search
//! tool (stored copies of the pages):
//! - Workers Paid: <https://developers.cloudflare.com/workers/platform/pricing/>: $5/month,
//!   10M requests included then $0.30/M, 30M CPU ms included then $0.02/M CPU ms.
//! - D1: <https://developers.cloudflare.com/d1/platform/pricing/>: 25 billion rows read
//!   included then $0.001/M, 50M rows written included then $1.00/M, 5 GB included then
//!   $0.75/GB-month.
//! - R2 (Standard): <https://developers.cloudflare.com/r2/pricing/>: 10 GB-month included then
//!   $0.015/GB-month, Class A 1M included then $4.50/M, Class B 10M included then $0.36/M.
//! - KV: <https://developers.cloudflare.com/kv/platform/pricing/>: 10M reads included then
//!   $0.50/M, 1M writes included then $5.00/M, 1 GB included then $0.50/GB-month.
//! - Queues: <https://developers.cloudflare.com/queues/platform/pricing/>: 1M operations
//!   included then $0.40/M; a message is three operations (write, read, delete) per 64 KB.

/// One month of usage of the whole platform (or of one tenant).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub requests: f64,
    pub cpu_ms: f64,
    pub d1_rows_read: f64,
    pub d1_rows_written: f64,
    pub d1_gb: f64,
    pub r2_gb: f64,
    pub r2_class_a: f64,
    pub r2_class_b: f64,
    pub kv_reads: f64,
    pub kv_writes: f64,
    pub queue_ops: f64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Self) {
        self.requests += o.requests;
        self.cpu_ms += o.cpu_ms;
        self.d1_rows_read += o.d1_rows_read;
        self.d1_rows_written += o.d1_rows_written;
        self.d1_gb += o.d1_gb;
        self.r2_gb += o.r2_gb;
        self.r2_class_a += o.r2_class_a;
        self.r2_class_b += o.r2_class_b;
        self.kv_reads += o.kv_reads;
        self.kv_writes += o.kv_writes;
        self.queue_ops += o.queue_ops;
    }
}

const M: f64 = 1e6;

fn over(used: f64, included: f64, price: f64, per: f64) -> f64 {
    (used - included).max(0.0) / per * price
}

/// The monthly bill with the account's included usage (`included: true`, the platform's bill)
/// or at list price without it (a tenant's marginal cost).
pub fn bill(u: &Usage, included: bool) -> f64 {
    let i = |x: f64| if included { x } else { 0.0 };
    let base = if included { 5.0 } else { 0.0 };
    base + over(u.requests, i(10.0 * M), 0.30, M)
        + over(u.cpu_ms, i(30.0 * M), 0.02, M)
        + over(u.d1_rows_read, i(25e9), 0.001, M)
        + over(u.d1_rows_written, i(50.0 * M), 1.00, M)
        + over(u.d1_gb, i(5.0), 0.75, 1.0)
        + over(u.r2_gb, i(10.0), 0.015, 1.0)
        + over(u.r2_class_a, i(M), 4.50, M)
        + over(u.r2_class_b, i(10.0 * M), 0.36, M)
        + over(u.kv_reads, i(10.0 * M), 0.50, M)
        + over(u.kv_writes, i(M), 5.00, M)
        + over(u.queue_ops, i(M), 0.40, M)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_example_from_the_pricing_page() {
        // The page's example 1: 15M requests at 7 ms CPU each is $8.00 in total.
        let u = Usage {
            requests: 15.0 * M,
            cpu_ms: 7.0 * 15.0 * M,
            ..Usage::default()
        };
        assert!((bill(&u, true) - 8.0).abs() < 1e-9);
        assert_eq!(bill(&Usage::default(), true), 5.0);
    }
}
