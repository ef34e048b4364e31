//! Demo tenants for the run command, created through the real operator API and API (so the
//! pipeline records them). Idempotent: fixed ids, slugs and Idempotency-Keys.

use crate::http::Client;
use crate::{Result, LOCAL_ADMIN_SECRET};
use serde_json::{json, Value};

pub struct Tenant {
    pub name: &'static str,
    pub id: &'static str,
    pub slug: &'static str,
    pub shard: Option<&'static str>,
    pub domain: Option<&'static str>,
    pub user: &'static str,
}

pub const TENANTS: &[Tenant] = &[
    Tenant {
        name: "Acme Financial Planning",
        id: "a0000000-0000-4000-8000-000000000001",
        slug: "acme",
        shard: None,
        domain: None,
        user: "a0000000-0000-4000-8000-0000000000a1",
    },
    Tenant {
        name: "Brightwater Wealth",
        id: "b0000000-0000-4000-8000-000000000002",
        slug: "brightwater",
        shard: None,
        domain: None,
        user: "b0000000-0000-4000-8000-0000000000b1",
    },
    Tenant {
        name: "Northwind Capital",
        id: "c0000000-0000-4000-8000-000000000003",
        slug: "northwind",
        shard: Some("shard-ded-01"),
        domain: Some("northwind.localhost"),
        user: "c0000000-0000-4000-8000-0000000000c1",
    },
];

pub struct Seeded {
    pub tenant: &'static Tenant,
    pub shard: String,
    pub token: String,
    pub client_id: String,
}

fn ok(r: &crate::http::Reply, what: &str) -> Result<Value> {
    if (200..300).contains(&r.status) {
        Ok(r.json())
    } else {
        Err(format!("{what}: HTTP {} {}", r.status, r.text()))
    }
}

pub fn seed(base: &str) -> Result<Vec<Seeded>> {
    let c = Client::new(base);
    let admin = Some(LOCAL_ADMIN_SECRET);
    // Operator calls go to the operator Worker's own host.
    let ops: &[(&str, &str)] = &[("host", crate::OPERATOR_HOST)];
    let mut out = Vec::new();
    for t in TENANTS {
        crate::step(&format!("demo tenant {}", t.name));
        let mut body = json!({"id": t.id, "name": t.name, "slug": t.slug, "kind": "test"});
        if let Some(s) = t.shard {
            body["shard_id"] = json!(s);
        }
        let r = c.json("POST", "/admin/v1/accounts", admin, Some(&body), ops)?;
        if r.status != 201 && r.status != 409 {
            return Err(format!(
                "create account {}: HTTP {} {}",
                t.slug,
                r.status,
                r.text()
            ));
        }
        let account = ok(
            &c.json(
                "GET",
                &format!("/admin/v1/accounts/{}", t.id),
                admin,
                None,
                ops,
            )?,
            "get account",
        )?;
        let shard = account["db_shard_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(d) = t.domain {
            let r = c.json(
                "POST",
                &format!("/admin/v1/accounts/{}/domains", t.id),
                admin,
                Some(&json!({"hostname": d})),
                ops,
            )?;
            if r.status != 201 && r.status != 409 {
                return Err(format!(
                    "register domain {d}: HTTP {} {}",
                    r.status,
                    r.text()
                ));
            }
        }
        let tok = ok(
            &c.json(
                "POST",
                &format!("/admin/v1/accounts/{}/tokens", t.id),
                admin,
                Some(&json!({"sub": t.user, "role": "admin", "ttl_seconds": 86400})),
                ops,
            )?,
            "mint token",
        )?;
        let token = tok["token"].as_str().unwrap_or_default().to_string();
        let host: Vec<(&str, &str)> = t.domain.map(|d| vec![("host", d)]).unwrap_or_default();
        let post = |path: &str, key: &str, body: Value| -> Result<Value> {
            let mut h = host.clone();
            h.push(("idempotency-key", key));
            ok(&c.json("POST", path, Some(&token), Some(&body), &h)?, path)
        };
        let group = post("/v1/groups", "demo-group", json!({"name": "Head Office"}))?;
        let adviser = post(
            "/v1/users",
            "demo-adviser",
            json!({"email": format!("adviser@{}.example", t.slug), "display_name": "Alex Adviser", "role": "member", "group_id": group["id"]}),
        )?;
        let client = post(
            "/v1/clients",
            "demo-client-1",
            json!({"title": "Ms", "forenames": "Ada", "surname": "Lovelace", "status": "active",
                   "group_id": group["id"], "adviser_id": adviser["id"],
                   "address": {"line1": "12 St James's Square", "town": "London", "postcode": "SW1Y 4JH"},
                   "dependants": [{"name": "Byron Lovelace", "relationship": "child", "date_of_birth": "2016-12-10"}]}),
        )?;
        post(
            "/v1/clients",
            "demo-client-2",
            json!({"forenames": "Charles", "surname": "Babbage", "status": "prospect", "group_id": group["id"]}),
        )?;
        out.push(Seeded {
            tenant: t,
            shard,
            token,
            client_id: client["id"].as_str().unwrap_or_default().to_string(),
        });
    }
    Ok(out)
}

pub fn print(base: &str, seeded: &[Seeded]) {
    println!("\nThe local stack is up at {base} (Ctrl-C stops it).\n");
    for s in seeded {
        let host = s
            .tenant
            .domain
            .map(|d| format!(" -H 'Host: {d}'"))
            .unwrap_or_default();
        println!("# {} ({}), on {}", s.tenant.name, s.tenant.id, s.shard);
        println!(
            "curl -s {base}/v1/clients{host} -H 'Authorization: Bearer {}'",
            s.token
        );
        println!(
            "curl -s {base}/v1/clients/{}{host} -H 'Authorization: Bearer {}'",
            s.client_id, s.token
        );
        println!(
            "curl -s -X POST {base}/v1/clients{host} -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' -d '{{\"forenames\":\"Grace\",\"surname\":\"Hopper\",\"status\":\"prospect\"}}'",
            s.token
        );
        println!(
            "curl -s {base}/v1/audit/verify{host} -H 'Authorization: Bearer {}'",
            s.token
        );
        if s.tenant.domain.is_some() {
            println!(
                "# without its Host it reaches the shared deployment: 421 naming the dedicated one"
            );
            println!(
                "curl -s {base}/v1/clients -H 'Authorization: Bearer {}'",
                s.token
            );
        }
        println!();
    }
    let ops = crate::OPERATOR_HOST;
    println!(
        "# operator API: the operator Worker on its own host ({ops}; deployed behind Cloudflare Access),"
    );
    println!("# locally with the dev credential; every action lands in the platform audit trail");
    println!(
        "curl -s {base}/admin/v1/shards -H 'Host: {ops}' -H 'Authorization: Bearer {LOCAL_ADMIN_SECRET}'"
    );
    println!(
        "curl -s -X POST {base}/admin/v1/jobs/outbox_relay/run -H 'Host: {ops}' -H 'Authorization: Bearer {LOCAL_ADMIN_SECRET}'"
    );
    println!(
        "curl -s '{base}/admin/v1/job-runs' -H 'Host: {ops}' -H 'Authorization: Bearer {LOCAL_ADMIN_SECRET}'"
    );
    println!(
        "curl -s '{base}/admin/v1/audit' -H 'Host: {ops}' -H 'Authorization: Bearer {LOCAL_ADMIN_SECRET}'"
    );
    println!(
        "curl -s '{base}/admin/v1/audit/verify' -H 'Host: {ops}' -H 'Authorization: Bearer {LOCAL_ADMIN_SECRET}'"
    );
    println!("# cron triggers go through /__scheduled locally");
    println!("curl -s '{base}/__scheduled?cron=*+*+*+*+*'");
}
