//! Every assumption of the capacity model and the simulation, in one struct with its defaults.
//! `bench/capacity/assumptions.json` holds the defaults as a file; `--assumptions FILE` reads
//! another (any field left out keeps its default), `--set name=value` changes one field.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Assumptions {
    // --- Tenant population ---
    /// Zipf-like exponent of tenant sizes: tenant of size rank k has `max_users * k^-s` users.
    pub zipf_exponent: f64,
    /// Peak concurrent users of the largest tenant when grown (the seed's "up to 4000").
    pub max_users: f64,
    /// No tenant is smaller than this many concurrent users.
    pub min_users: f64,
    /// Tenants join evenly over this many years (the first ones in month 0).
    pub onboarding_years: f64,
    /// A tenant starts at this share of its grown user count ...
    pub initial_user_share: f64,
    /// ... and its users grow by this much a year until it reaches its grown size.
    pub user_growth_per_year: f64,
    // --- Data: the seed's 5 GB per tenant, split into D1 and R2 ---
    /// Bytes (D1 + R2) the largest tenant holds after 10 years (the seed's "about 5 GB").
    pub reference_tenant_bytes_10y: f64,
    /// Mean size of a document's content object in R2 (lognormal, median 120 kB, mean 200 kB:
    /// PDFs and scans of fact finds, suitability reports and letters).
    pub r2_mean_document_bytes: f64,
    /// Documents per client (sets how many client rows each document brings).
    pub documents_per_client: f64,
    /// Audited writes per document over its life (create, edits, restriction changes).
    pub writes_per_document: f64,
    /// Audited writes per client over its life (create, edits).
    pub writes_per_client: f64,
    /// Share of D1 bytes that retention removes over time (0: kept for the whole 10 years).
    pub d1_retention_reclaim_share: f64,
    // --- Load ---
    /// A concurrent user's think time between requests, seconds (the bench's 10 s).
    pub think_time_s: f64,
    /// Working hours a month in which users are active.
    pub active_hours_per_month: f64,
    /// Mean load over the working hours as a share of the peak.
    pub mean_to_peak: f64,
    /// Share of requests that are reads (the bench's mix: 0.8).
    pub read_share: f64,
    /// Share of reads that fetch a document's content from R2.
    pub content_read_share: f64,
    /// Isolate CPU per request billed by Workers, ms.
    pub cpu_ms_per_request: f64,
    /// D1 queries the consumer makes per write (one batch per account per message batch; 1.0
    /// when every event travels alone, lower under load).
    pub consumer_queries_per_write: f64,
    /// A D1 database's query ceiling at ~1 ms per query (platform notes).
    pub d1_queries_per_s_ceiling: f64,
    // --- Planner and operations ---
    /// Planner soft cap (the product's `Policy::default`: 0.70).
    pub soft_cap_ratio: f64,
    /// Planner horizon, days (product default 30).
    pub horizon_days: f64,
    // --- Routing: the account D1 ---
    /// Cloudflare locations serving UK users (London, Manchester, Edinburgh).
    pub uk_locations: f64,
    /// Isolates of the API Worker per location at peak.
    pub isolates_per_location: f64,
    /// How long an isolate lives, seconds (a new one starts with an empty route cache).
    pub isolate_lifetime_s: f64,
    /// Share of accounts that sign in through their own OIDC provider (issuer lookups).
    pub oidc_share: f64,
}

impl Default for Assumptions {
    fn default() -> Self {
        Self {
            zipf_exponent: 1.0,
            max_users: 4000.0,
            min_users: 5.0,
            onboarding_years: 3.0,
            initial_user_share: 0.4,
            user_growth_per_year: 0.25,
            reference_tenant_bytes_10y: 5e9,
            r2_mean_document_bytes: 200_000.0,
            documents_per_client: 8.0,
            writes_per_document: 3.0,
            writes_per_client: 6.0,
            d1_retention_reclaim_share: 0.0,
            think_time_s: 10.0,
            active_hours_per_month: 176.0,
            mean_to_peak: 0.3,
            read_share: 0.8,
            content_read_share: 0.1,
            cpu_ms_per_request: 2.0,
            consumer_queries_per_write: 1.0,
            d1_queries_per_s_ceiling: 1000.0,
            soft_cap_ratio: 0.70,
            horizon_days: 30.0,
            uk_locations: 3.0,
            isolates_per_location: 20.0,
            isolate_lifetime_s: 900.0,
            oidc_share: 1.0,
        }
    }
}

impl Assumptions {
    /// `name=value` for one numeric field.
    pub fn set(&mut self, pair: &str) -> Result<(), String> {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--set {pair}: expected name=value"))?;
        let value: f64 = value.parse().map_err(|e| format!("--set {pair}: {e}"))?;
        let mut v = serde_json::to_value(&*self).map_err(|e| e.to_string())?;
        let slot = v
            .get_mut(name)
            .ok_or_else(|| format!("--set {pair}: no assumption named {name}"))?;
        *slot = serde_json::json!(value);
        *self = serde_json::from_value(v).map_err(|e| e.to_string())?;
        Ok(())
    }

    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}
