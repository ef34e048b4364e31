//! Raw results (results.json and CSVs), SVG plots rendered from them, and the Markdown summary
//! (the README's results table).

use super::plot;
use super::stats::csv;
use crate::Result;
use serde_json::Value;
use std::path::Path;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(x) => x.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.fract() != 0.0 => format!("{x:.3}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn ms(us: &Value) -> f64 {
    f(us) / 1000.0
}

fn write_file(dir: &Path, name: &str, text: &str) -> Result<()> {
    let p = dir.join(name);
    std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))
}

pub fn write(
    dir: &Path,
    r: &Value,
    lag_rows: &[Vec<String>],
    backlog: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    let pretty = serde_json::to_string_pretty(r).map_err(|e| e.to_string())?;
    write_file(dir, "results.json", &pretty)?;
    let runs: Vec<&Value> = r["load"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(r["reads"].as_array().into_iter().flatten())
        .collect();
    let load_rows: Vec<Vec<String>> = runs
        .iter()
        .map(|v| {
            vec![
                s(&v["name"]),
                s(&v["connections"]),
                s(&v["seconds"]),
                s(&v["think_ms"][0]),
                s(&v["think_ms"][1]),
                s(&v["requests"]),
                format!("{:.1}", f(&v["rps"])),
                format!("{:.2}", ms(&v["latency_us"]["p50"])),
                format!("{:.2}", ms(&v["latency_us"]["p95"])),
                format!("{:.2}", ms(&v["latency_us"]["p99"])),
                s(&v["non2xx"]),
                s(&v["socket_errors"]["timeout"]),
                format!("{:.5}", f(&v["error_rate"])),
            ]
        })
        .collect();
    write_file(
        dir,
        "load.csv",
        &csv(
            &[
                "run",
                "connections",
                "seconds",
                "think_min_ms",
                "think_max_ms",
                "requests",
                "rps",
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "non2xx",
                "timeouts",
                "error_rate",
            ],
            &load_rows,
        ),
    )?;
    write_file(
        dir,
        "pipeline_lag.csv",
        &csv(&["max_batch_size", "phase", "write", "lag_ms"], lag_rows),
    )?;
    let mut backlog_rows = Vec::new();
    for (name, pts) in backlog {
        for (t, b) in pts {
            backlog_rows.push(vec![name.clone(), format!("{t:.1}"), format!("{b:.0}")]);
        }
    }
    write_file(
        dir,
        "pipeline_backlog.csv",
        &csv(&["phase", "seconds", "backlog"], &backlog_rows),
    )?;
    let cost_rows: Vec<Vec<String>> = r["cost"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            vec![
                s(&c["op"]),
                s(&c["status"]),
                s(&c["calls"]),
                s(&c["statements"]),
                s(&c["rows_read"]),
                s(&c["rows_written"]),
                s(&c["ideal"]["calls"]),
                s(&c["ideal"]["rows_read"]),
                s(&c["ideal"]["rows_written"]),
                c["above_2x_ideal"]
                    .as_array()
                    .map(|a| a.iter().map(s).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    write_file(
        dir,
        "cost.csv",
        &csv(
            &[
                "op",
                "status",
                "calls",
                "statements",
                "rows_read",
                "rows_written",
                "ideal_calls",
                "ideal_rows_read",
                "ideal_rows_written",
                "above_2x_ideal",
            ],
            &cost_rows,
        ),
    )?;
    let size_rows: Vec<Vec<String>> = r["sizes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|z| {
            vec![
                s(&z["worker"]),
                s(&z["upload_kib"]),
                s(&z["gzip_kib"]),
                s(&z["wasm_file_kib"]),
            ]
        })
        .collect();
    write_file(
        dir,
        "sizes.csv",
        &csv(
            &["worker", "upload_kib", "gzip_kib", "wasm_file_kib"],
            &size_rows,
        ),
    )?;
    let sweep_rows: Vec<Vec<String>> = r["sweep"]["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            vec![
                s(&x["run"]),
                format!("{:.2}", f(&x["seconds"])),
                s(&x["outcome"]),
                x["counts"].to_string(),
            ]
        })
        .collect();
    write_file(
        dir,
        "sweep_runs.csv",
        &csv(&["run", "seconds", "outcome", "counts"], &sweep_rows),
    )?;
    let rss: Vec<(f64, f64)> = r["rss"]["samples"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| (f(&x[0]), f(&x[1]) / 1024.0))
        .collect();
    write_file(
        dir,
        "rss.csv",
        &csv(
            &["seconds", "workerd_rss_mib"],
            &rss.iter()
                .map(|(t, m)| vec![format!("{t:.1}"), format!("{m:.1}")])
                .collect::<Vec<_>>(),
        ),
    )?;

    // ---- plots, from the values just written
    let names: Vec<String> = runs.iter().map(|v| s(&v["name"])).collect();
    let rps: Vec<Option<f64>> = runs.iter().map(|v| v["rps"].as_f64()).collect();
    write_file(
        dir,
        "throughput.svg",
        &plot::bars(
            "Throughput (wrk, same machine)",
            "requests/s",
            &names,
            &[("req/s", rps)],
        ),
    )?;
    let pct = |k: &str| {
        runs.iter()
            .map(|v| Some(ms(&v["latency_us"][k])))
            .collect::<Vec<_>>()
    };
    write_file(
        dir,
        "latency.svg",
        &plot::bars(
            "Latency percentiles",
            "ms",
            &names,
            &[
                ("p50", pct("p50")),
                ("p95", pct("p95")),
                ("p99", pct("p99")),
            ],
        ),
    )?;
    let ops: Vec<String> = r["cost"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| s(&c["op"]))
        .collect();
    let col = |k: &str, ideal: bool| -> Vec<Option<f64>> {
        r["cost"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                if ideal {
                    c["ideal"][k].as_f64()
                } else {
                    c[k].as_f64()
                }
            })
            .collect()
    };
    write_file(
        dir,
        "cost.svg",
        &plot::bars(
            "D1 rows per request vs ideal",
            "rows",
            &ops,
            &[
                ("rows_read", col("rows_read", false)),
                ("ideal read", col("rows_read", true)),
                ("rows_written", col("rows_written", false)),
                ("ideal written", col("rows_written", true)),
            ],
        ),
    )?;
    let series: Vec<(&str, Vec<(f64, f64)>)> = backlog
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    write_file(
        dir,
        "pipeline_backlog.svg",
        &plot::lines(
            "Consumer backlog (writes answered - audit rows recorded)",
            "seconds since first write",
            "events",
            &series,
        ),
    )?;
    let mut lag_series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for row in lag_rows {
        let key = format!("batch {} {}", row[0], row[1]);
        let lag = row[3].parse::<f64>().unwrap_or(0.0) / 1000.0;
        match lag_series.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push((0.0, lag)),
            None => lag_series.push((key, vec![(0.0, lag)])),
        }
    }
    // Lag CDFs: x = lag (s), y = share of events at or below it.
    let cdf: Vec<(String, Vec<(f64, f64)>)> = lag_series
        .into_iter()
        .map(|(k, v)| {
            let mut l: Vec<f64> = v.into_iter().map(|p| p.1).collect();
            l.sort_by(f64::total_cmp);
            let n = l.len().max(1) as f64;
            (
                k,
                l.iter()
                    .enumerate()
                    .map(|(i, x)| (x.max(0.0), (i + 1) as f64 / n * 100.0))
                    .collect(),
            )
        })
        .collect();
    let cdf_ref: Vec<(&str, Vec<(f64, f64)>)> =
        cdf.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    write_file(
        dir,
        "pipeline_lag_cdf.svg",
        &plot::lines(
            "Lag from write response to audit row (CDF)",
            "lag (s)",
            "% of events",
            &cdf_ref,
        ),
    )?;
    write_file(
        dir,
        "rss.svg",
        &plot::lines(
            "workerd RSS during the VU run",
            "seconds",
            "MiB",
            &[("sum of workerd VmRSS", rss)],
        ),
    )?;
    write_file(dir, "summary.md", &summary_markdown(r))?;
    Ok(())
}

/// The README's results table.
pub fn summary_markdown(r: &Value) -> String {
    let mut o = String::new();
    let lat = |v: &Value| {
        format!(
            "{:.0} / {:.0} / {:.0} ms",
            ms(&v["latency_us"]["p50"]),
            ms(&v["latency_us"]["p95"]),
            ms(&v["latency_us"]["p99"])
        )
    };
    o += "| Measure | Result |\n|---|---|\n";
    for v in r["load"].as_array().into_iter().flatten() {
        o += &format!(
            "| {} ({} s) | {:.0} req/s; p50/p95/p99 {}; errors {:.2}% ({} non-2xx, {} timeouts) |\n",
            s(&v["name"]), s(&v["seconds"]), f(&v["rps"]), lat(v), f(&v["error_rate"]) * 100.0, s(&v["non2xx"]), s(&v["socket_errors"]["timeout"])
        );
    }
    let reads: Vec<Value> = r["reads"].as_array().cloned().unwrap_or_default();
    o += &read_path_markdown(&reads);
    let native = &r["native_floor"];
    if let Some(product) = reads.first() {
        o += &format!(
            "| product GET by id vs native SQLite | {:.2}% of native SQLite throughput ({:.0} queries/s, p50 {:.1} µs) |\n",
            100.0 * f(&product["rps"]) / f(&native["qps"]), f(&native["qps"]), f(&native["p50_us"])
        );
    }
    for p in r["pipeline"].as_array().into_iter().flatten() {
        let (su, bu) = (&p["sustained"], &p["burst"]);
        o += &format!(
            "| pipeline, max_batch_size {} | sustained {:.0} writes/s: lag p50 {:.0} ms, p99 {:.0} ms, backlog grows: {}; burst of {}: {:.0} events/s through the consumer, lag p99 {:.1} s; outbox unpublished after: {} |\n",
            s(&p["max_batch_size"]), f(&su["write_rate"]), f(&su["lag_ms"]["p50"]), f(&su["lag_ms"]["p99"]), s(&su["backlog"]["grows"]),
            s(&bu["writes"]), f(&bu["events_per_s"]), f(&bu["lag_ms"]["p99"]) / 1000.0, s(&p["outbox_unpublished_after"])
        );
    }
    let sw = &r["sweep"];
    o += &format!(
        "| retention sweep ({} rows on the shard's retention tenant, 10% due) | {:.0} deleted in {:.0} s over {} runs (complete: {}): {:.0} rows deleted/s; rows read per row deleted: {} |\n",
        r["seed"]["tenants"].as_array().and_then(|t| t.iter().find(|x| x["due"].is_number())).map(|x| f(&x["clients"]) + f(&x["documents"])).unwrap_or(0.0),
        f(&sw["deleted"]), f(&sw["seconds"]), sw["runs"].as_array().map(Vec::len).unwrap_or(0), s(&sw["complete"]), f(&sw["deleted_per_s"]),
        if sw["rows_read_per_deleted"].is_number() {
            format!("{:.3} on {} ({:.0} rows read, {:.0} deleted); {:.3} counting every shard's probes", f(&sw["shard_rows_read_per_deleted"]), s(&sw["shard"]), f(&sw["on_shard"]["rows_read"]), f(&sw["on_shard"]["deleted"]), f(&sw["rows_read_per_deleted"]))
        } else { "not reported by the job (no `rows_read` in counts)".into() }
    );
    let st = &r["startup"];
    o += &format!(
        "| start-up | stack spawn to first 200: {:.1} s (restart: {:.1} s); first request to a fresh isolate: api {:.0} ms, floor-rs {:.0} ms, floor-js {:.0} ms (warm: {:.1} / {:.1} / {:.1} ms) |\n",
        f(&st["stack_start_to_first_200_ms"]) / 1000.0, f(&st["stack_restart_to_first_200_ms"]) / 1000.0,
        f(&st["api_first_request_ms"]), f(&st["floor-rs_first_request_ms"]), f(&st["floor-js_first_request_ms"]),
        f(&st["api_warm_request_ms"]), f(&st["floor-rs_warm_request_ms"]), f(&st["floor-js_warm_request_ms"])
    );
    o += &format!(
        "| workerd memory during the VU run | peak RSS (sum of {} workerd processes) {:.0} MiB; VmHWM {:.0} MiB |\n",
        s(&r["rss"]["workerd_processes"]), f(&r["rss"]["peak_rss_kib"]) / 1024.0, f(&r["rss"]["peak_hwm_kib"]) / 1024.0
    );
    o += "\n| Worker | upload (KiB) | gzip (KiB) | wasm file (KiB) |\n|---|---|---|---|\n";
    for z in r["sizes"].as_array().into_iter().flatten() {
        o += &format!(
            "| {} | {:.0} | {:.0} | {} |\n",
            s(&z["worker"]),
            f(&z["upload_kib"]),
            f(&z["gzip_kib"]),
            z["wasm_file_kib"]
                .as_f64()
                .map(|x| format!("{x:.0}"))
                .unwrap_or_else(|| "-".into())
        );
    }
    o += "\n| D1 cost per request | calls | statements | rows read | rows written | ideal (calls / read / written) | above 2x ideal |\n|---|---|---|---|---|---|---|\n";
    for c in r["cost"].as_array().into_iter().flatten() {
        let flags = c["above_2x_ideal"]
            .as_array()
            .map(|a| a.iter().map(s).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        o += &format!(
            "| {} | {} | {} | {} | {} | {} / {} / {} | {} |\n",
            s(&c["op"]),
            or_dash(&c["calls"]),
            or_dash(&c["statements"]),
            or_dash(&c["rows_read"]),
            or_dash(&c["rows_written"]),
            s(&c["ideal"]["calls"]),
            s(&c["ideal"]["rows_read"]),
            s(&c["ideal"]["rows_written"]),
            if c["header"].is_null() {
                "no x-d1-cost header".to_string()
            } else if flags.is_empty() {
                "no".into()
            } else {
                format!("**{flags}**")
            }
        );
    }
    o
}

/// Rows of the read path against its floors (the first entry is the product).
pub fn read_path_markdown(reads: &[Value]) -> String {
    side_by_side_markdown(reads, "product GET by id vs twin and floors")
}

/// Rows of the write path (create) against its JS twin (the first entry is the product).
pub fn write_path_markdown(writes: &[Value]) -> String {
    side_by_side_markdown(writes, "product POST /v1/clients vs twin")
}

/// A per-round array as "a, b, c" with `digits` decimals (empty if `v` is not an array).
fn per_round(v: &Value, digits: usize) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| format!("{:.*}", digits, f(x)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Alternated runs of the product and the Workers it is compared with (see `load::alternated`).
fn side_by_side_markdown(reads: &[Value], versus: &str) -> String {
    let mut o = String::new();
    for v in reads {
        let rounds = per_round(&v["round_rps"], 0);
        let cpu_rounds = per_round(&v["round_cpu_ms_per_request"], 2);
        let runtime = if v["runtime_cpu_ms_per_request"].is_number() {
            format!(
                "; runtime process {:.2} ms/request (rounds: {})",
                f(&v["runtime_cpu_ms_per_request"]),
                per_round(&v["round_runtime_cpu_ms_per_request"], 2)
            )
        } else {
            String::new()
        };
        o += &format!(
            "| {} ({} conns, {} s) | {:.0} req/s (rounds: {rounds}); p50/p95/p99 {:.0} / {:.0} / {:.0} ms (median round); workerd CPU {:.2} ms/request (rounds: {cpu_rounds}; until idle after each run {:.2}){runtime}; non-2xx {} |\n",
            s(&v["name"]),
            s(&v["connections"]),
            s(&v["seconds"]),
            f(&v["rps"]),
            ms(&v["latency_us"]["p50"]),
            ms(&v["latency_us"]["p95"]),
            ms(&v["latency_us"]["p99"]),
            f(&v["cpu_ms_per_request"]),
            f(&v["cpu_ms_per_request_to_idle"]),
            s(&v["non2xx"])
        );
    }
    if let Some((product, floors)) = reads.split_first() {
        let parts: Vec<String> = floors
            .iter()
            .map(|fl| {
                let short = s(&fl["name"])
                    .split(" (")
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let runtime = if product["runtime_cpu_ms_per_request"].is_number()
                    && fl["runtime_cpu_ms_per_request"].is_number()
                {
                    format!(
                        ", runtime process {:.2}x",
                        f(&product["runtime_cpu_ms_per_request"])
                            / f(&fl["runtime_cpu_ms_per_request"])
                    )
                } else {
                    String::new()
                };
                format!(
                    "{:.0}% of {short} (CPU/request {:.2}x{runtime})",
                    100.0 * f(&product["rps"]) / f(&fl["rps"]),
                    f(&product["cpu_ms_per_request"]) / f(&fl["cpu_ms_per_request"])
                )
            })
            .collect();
        o += &format!("| {versus} (throughput) | {} |\n", parts.join("; "));
        // Round by round against the twin (the first target after the product).
        if let Some(twin) = floors.first() {
            let per = |k: &str, a: &Value, b: &Value| -> Vec<String> {
                let (a, b) = (a[k].as_array(), b[k].as_array());
                a.into_iter()
                    .flatten()
                    .zip(b.into_iter().flatten())
                    .map(|(x, y)| format!("{:.2}x", f(x) / f(y)))
                    .collect()
            };
            let runtime = per("round_runtime_cpu_ms_per_request", product, twin);
            let runtime = if runtime.is_empty() {
                String::new()
            } else {
                format!("; runtime process CPU/request {}", runtime.join(", "))
            };
            o += &format!(
                "| product / twin-js, per round | req/s {}; CPU/request {}{runtime}; CPU/request until idle {:.2}x |\n",
                per("round_rps", product, twin).join(", "),
                per("round_cpu_ms_per_request", product, twin).join(", "),
                f(&product["cpu_ms_per_request_to_idle"]) / f(&twin["cpu_ms_per_request_to_idle"])
            );
        }
    }
    o
}

/// Rows of the consumer path (see `pipeline::consumer_path`): the product's pipeline and the
/// twin's, the product consumer fed by the twin's create, and the twin create alone.
pub fn consumer_path_markdown(rows: &[Value]) -> String {
    let mut o = String::new();
    for v in rows {
        let eps = if v["consumed"] == true {
            format!(
                "{:.0} events/s (rounds: {}); ",
                f(&v["events_per_s"]),
                per_round(&v["round_events_per_s"], 0)
            )
        } else {
            String::new()
        };
        o += &format!(
            "| {} ({} creates a round, burst) | {eps}workerd CPU burst to idle {:.2} ms/event (rounds: {}) |\n",
            s(&v["name"]),
            s(&v["creates_per_round"]),
            f(&v["cpu_ms_per_event"]),
            per_round(&v["round_cpu_ms_per_event"], 2)
        );
    }
    if let [product, twin, cross, _] = rows {
        o += &format!(
            "| product / twin | pipeline: events/s {:.2}x, CPU/event {:.2}x; the consumers alone, fed by the same create (the twin's): product consumer / twin consumer events/s {:.2}x, CPU/event {:.2}x |\n",
            f(&product["events_per_s"]) / f(&twin["events_per_s"]),
            f(&product["cpu_ms_per_event"]) / f(&twin["cpu_ms_per_event"]),
            f(&cross["events_per_s"]) / f(&twin["events_per_s"]),
            f(&cross["cpu_ms_per_event"]) / f(&twin["cpu_ms_per_event"])
        );
    }
    o
}

fn or_dash(v: &Value) -> String {
    if v.is_null() {
        "-".into()
    } else {
        s(v)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn row(name: &str, cpu: f64, runtime: Option<f64>) -> serde_json::Value {
        json!({
            "name": name, "connections": 50, "seconds": 30, "rps": 300.0,
            "round_rps": [300.0, 300.0, 300.0],
            "round_cpu_ms_per_request": [cpu, cpu, cpu],
            "cpu_ms_per_request": cpu, "cpu_ms_per_request_to_idle": cpu,
            "runtime_cpu_ms_per_request": runtime,
            "round_runtime_cpu_ms_per_request": runtime.map(|r| vec![r, r, r]),
            "latency_us": {"p50": 1000, "p95": 2000, "p99": 3000}, "non2xx": 0,
        })
    }

    #[test]
    fn the_read_path_table_gives_the_runtime_process_ratio_beside_all_workerd() {
        let t = super::read_path_markdown(&[
            row("product GET by id", 4.0, Some(2.2)),
            row("twin-js (plain JS)", 4.0, Some(2.0)),
        ]);
        assert!(
            t.contains("runtime process 2.20 ms/request (rounds: 2.20, 2.20, 2.20)"),
            "{t}"
        );
        assert!(
            t.contains("100% of twin-js (CPU/request 1.00x, runtime process 1.10x)"),
            "{t}"
        );
        assert!(
            t.contains("runtime process CPU/request 1.10x, 1.10x, 1.10x"),
            "{t}"
        );
    }

    #[test]
    fn without_a_runtime_figure_the_table_gives_the_all_process_one_only() {
        let t = super::read_path_markdown(&[
            row("product GET by id", 4.4, None),
            row("twin-js (plain JS)", 4.0, None),
        ]);
        assert!(!t.contains("runtime process"), "{t}");
        assert!(t.contains("(CPU/request 1.10x)"), "{t}");
    }
}

#[cfg(test)]
mod recorded {
    /// The committed records render to their committed tables (with the runtime process, and
    /// from before it was measured).
    #[test]
    fn committed_read_path_records_render_to_their_tables() {
        for name in ["read_path_quick", "read_path_quick_8ee37ee"] {
            let dir = crate::root().join("bench/results");
            let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
            let md = std::fs::read_to_string(dir.join(format!("{name}.md"))).unwrap();
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            let rows = v["reads"].as_array().unwrap();
            assert_eq!(super::read_path_markdown(rows), md, "{name}");
        }
    }
}
