//! The capacity model: what one tenant of a given size stores, does and costs per month,
//! derived from the measured [`Inputs`] and the [`Assumptions`] (nothing else).

use super::assumptions::Assumptions;
use super::measure::Inputs;
use super::prices::Usage;
use crate::Result;

/// Per-tenant rates derived once from the inputs and assumptions.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub a: Assumptions,
    /// D1 bytes each document brings: its row, its share of a client row, their audit rows.
    pub d1_bytes_per_document: f64,
    /// Audited writes each document brings (its own and its share of its client's).
    pub writes_per_document: f64,
    /// Documents a concurrent user adds per month, calibrated so that the largest tenant holds
    /// `reference_tenant_bytes_10y` (D1 + R2) after 120 months.
    pub documents_per_user_month: f64,
    pub rows_read_per_read: f64,
    pub rows_written_per_write: f64,
    pub calls_per_read: f64,
    pub calls_per_write: f64,
    /// Tenant-move throughput, bytes/s (measured: `capacity moves`).
    pub move_bytes_per_s: f64,
}

const READS: &[&str] = &[
    "get client (cache miss)",
    "get document",
    "list clients (page of 50)",
    "list documents (page of 50)",
];
const WRITES: &[&str] = &[
    "create client",
    "create document",
    "update client (If-Match)",
];

impl Model {
    pub fn new(a: &Assumptions, inputs: &Inputs) -> Result<Self> {
        let mean = |ops: &[&str], f: fn(&super::measure::OpCost) -> f64| -> Result<f64> {
            let mut s = 0.0;
            for o in ops {
                s += f(inputs.op(o)?);
            }
            Ok(s / ops.len() as f64)
        };
        let writes_per_document =
            a.writes_per_document + a.writes_per_client / a.documents_per_client;
        let d1_bytes_per_document = inputs.document_row_bytes.value
            + inputs.client_row_bytes.value / a.documents_per_client
            + inputs.audit_bytes_per_write.value * writes_per_document;
        let mut m = Self {
            a: a.clone(),
            d1_bytes_per_document,
            writes_per_document,
            documents_per_user_month: 0.0,
            rows_read_per_read: mean(READS, |o| o.rows_read)?,
            // The consumer's audit row (and its index entries) on top of the API's batch.
            rows_written_per_write: mean(WRITES, |o| o.rows_written)?
                + inputs.audit_rows_written_per_event.value,
            calls_per_read: mean(READS, |o| o.calls)?,
            calls_per_write: mean(WRITES, |o| o.calls)? + a.consumer_queries_per_write,
            move_bytes_per_s: inputs.move_bytes_per_s.value,
        };
        let user_months: f64 = (0..120).map(|age| m.users(a.max_users, age)).sum();
        let documents =
            a.reference_tenant_bytes_10y / (d1_bytes_per_document + a.r2_mean_document_bytes);
        m.documents_per_user_month = documents / user_months;
        Ok(m)
    }

    /// Concurrent users at peak of a tenant grown to `grown` users, `age` months after it joined.
    pub fn users(&self, grown: f64, age: u32) -> f64 {
        let share = self.a.initial_user_share
            * (1.0 + self.a.user_growth_per_year).powf(f64::from(age) / 12.0);
        grown * share.min(1.0)
    }

    /// Bytes a tenant of `users` adds in a month: (D1, R2).
    pub fn growth(&self, users: f64, jitter: f64) -> (f64, f64) {
        let docs = users * self.documents_per_user_month * jitter;
        (
            docs * self.d1_bytes_per_document * (1.0 - self.a.d1_retention_reclaim_share),
            docs * self.a.r2_mean_document_bytes,
        )
    }

    /// Requests a month of a tenant with `users` concurrent users at peak.
    pub fn requests(&self, users: f64) -> f64 {
        users / self.a.think_time_s * 3600.0 * self.a.active_hours_per_month * self.a.mean_to_peak
    }

    /// Peak D1 queries/s a tenant sends its shard (the bench's mix at the think time).
    pub fn peak_queries_per_s(&self, users: f64) -> f64 {
        let r = self.a.read_share;
        users / self.a.think_time_s * (r * self.calls_per_read + (1.0 - r) * self.calls_per_write)
    }

    /// One month of a tenant's usage, holding `d1_bytes` and `r2_bytes`.
    pub fn usage(&self, users: f64, jitter: f64, d1_bytes: f64, r2_bytes: f64) -> Usage {
        let reads = self.requests(users) * self.a.read_share;
        let docs = users * self.documents_per_user_month * jitter;
        let writes = docs * self.writes_per_document;
        let requests = reads + writes;
        Usage {
            requests,
            cpu_ms: requests * self.a.cpu_ms_per_request,
            d1_rows_read: reads * self.rows_read_per_read,
            d1_rows_written: writes * self.rows_written_per_write,
            d1_gb: d1_bytes / 1e9,
            r2_gb: r2_bytes / 1e9,
            r2_class_a: docs,
            r2_class_b: reads * self.a.content_read_share,
            kv_reads: 0.0,
            kv_writes: 0.0,
            // Each write's change event: written, read, deleted.
            queue_ops: writes * 3.0,
        }
    }
}

/// Account-D1 queries/s at peak from the API's route cache, for tenants with these peak
/// request rates (req/s): today's cache (`services::tenancy::RouteCache`: a route probe or
/// reload at most once per 5 s per account per isolate, issuer answers kept 5 s) and with the
/// batched probe (`services::route_probe`: one query per isolate per 5 s for every cached
/// account, an issuer's account kept 10 min, a route loaded once per isolate lifetime). Requests spread evenly over isolates.
pub fn account_d1_queries_per_s(a: &Assumptions, tenant_rates: &[f64]) -> (f64, f64) {
    let isolates = (a.uk_locations * a.isolates_per_location).max(1.0);
    let p = |rate: f64, window: f64| 1.0 - (-rate * window).exp();
    let (mut before, mut loads, mut issuers, mut total_rate) = (0.0, 0.0, 0.0, 0.0);
    for &r in tenant_rates {
        let per_isolate = r / isolates;
        total_rate += per_isolate;
        before += isolates * p(per_isolate, 5.0) / 5.0 * (1.0 + a.oidc_share);
        loads += isolates * p(per_isolate, a.isolate_lifetime_s) / a.isolate_lifetime_s;
        issuers += isolates * a.oidc_share * p(per_isolate, 600.0) / 600.0;
    }
    let chunks = (tenant_rates.len() as f64 / 500.0).ceil().max(1.0);
    let probes = isolates * p(total_rate, 5.0) / 5.0 * chunks;
    (before, probes + loads + issuers)
}
