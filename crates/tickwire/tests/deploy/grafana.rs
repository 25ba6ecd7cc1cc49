//! The Grafana dashboard and its provisioning.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::metrics::metric_names;
use crate::{json, str_of, yaml};

/// The datasource uid Grafana is provisioned with.
pub(crate) fn provisioned_uid() -> String {
    let ds = yaml("dashboards/grafana/provisioning/datasources/prometheus.yml");
    let list = ds["datasources"].as_array().expect("datasources");
    assert_eq!(list.len(), 1, "one datasource");
    assert_eq!(list[0]["type"], "prometheus");
    str_of(&list[0]["uid"], "uid").to_string()
}

/// The panels under each row, by row title.
fn rows(dashboard: &Value) -> BTreeMap<String, Vec<Value>> {
    let mut rows: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut panels = dashboard["panels"].as_array().expect("panels").clone();
    panels.sort_by_key(|p| {
        (
            p["gridPos"]["y"].as_u64().unwrap_or(0),
            p["gridPos"]["x"].as_u64().unwrap_or(0),
        )
    });
    for panel in panels {
        if panel["type"] == "row" {
            let title = str_of(&panel["title"], "row title").to_string();
            // A collapsed row holds its panels inside.
            let inner = panel["panels"].as_array().cloned().unwrap_or_default();
            rows.entry(title.clone()).or_default().extend(inner);
            current = Some(title);
        } else {
            let row = current
                .clone()
                .unwrap_or_else(|| panic!("panel {} is above every row", panel["title"]));
            rows.entry(row).or_default().push(panel);
        }
    }
    rows
}

fn exprs_of(panel: &Value) -> Vec<String> {
    panel["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| str_of(&t["expr"], "expr").to_string())
        .collect()
}

#[test]
fn grafana_dashboard_has_the_overview_and_latency_rows() {
    let dashboard = json("dashboards/grafana/tickwire.json");
    let uid = provisioned_uid();
    assert!(
        dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 37),
        "Grafana 10+ schema"
    );
    let vars: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .map(|v| str_of(&v["name"], "variable name"))
        .collect();
    assert_eq!(vars, ["job", "instance"]);

    // Every panel and query on the provisioned datasource, filtered by the
    // variables; ids unique; no two panels on the same grid cells.
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    let all: Vec<Value> = rows(&dashboard).into_values().flatten().collect();
    for panel in &all {
        let title = str_of(&panel["title"], "title");
        assert!(ids.insert(panel["id"].to_string()), "{title}: duplicate id");
        assert_eq!(panel["datasource"]["uid"], uid.as_str(), "{title}");
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(target["datasource"]["uid"], uid.as_str(), "{title}");
            let expr = str_of(&target["expr"], "expr");
            assert!(
                expr.contains(r#"job=~"$job""#) && expr.contains(r#"instance=~"$instance""#),
                "{title}: {expr} ignores $job/$instance"
            );
        }
        let g = &panel["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().expect("x"),
            g["y"].as_u64().expect("y"),
            g["w"].as_u64().expect("w"),
            g["h"].as_u64().expect("h"),
        );
        assert!(x + w <= 24, "{title} wider than the grid");
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(cells.insert((cx, cy)), "{title} overlaps another panel");
            }
        }
    }
    for var in dashboard["templating"]["list"].as_array().expect("vars") {
        assert_eq!(var["datasource"]["uid"], uid.as_str());
    }

    let rows = rows(&dashboard);
    let overview = rows.get("Overview").expect("an Overview row");
    let find = |panels: &[Value], title: &str| -> Value {
        panels
            .iter()
            .find(|p| p["title"] == title)
            .cloned()
            .unwrap_or_else(|| panic!("no panel {title:?}"))
    };
    // Title, then metrics its queries must read.
    for (title, metrics) in [
        ("Connections", &["tickwire_gateway_connections"][..]),
        ("Subscriptions", &["tickwire_gateway_subscriptions"]),
        (
            "Updates in / out",
            &[
                "tickwire_gateway_updates_in_total",
                "tickwire_gateway_updates_out_total",
            ],
        ),
        (
            "Conflation ratio",
            &[
                "tickwire_gateway_conflated_total",
                "tickwire_gateway_updates_out_total",
            ],
        ),
        ("Gaps", &["tickwire_gateway_gaps_total"]),
        (
            "Slow-consumer closes",
            &["tickwire_gateway_slow_consumer_closes_total"],
        ),
        ("Feed states", &["tickwire_ingest_feed_state"]),
        ("Bus health", &["tickwire_bus_connected"]),
    ] {
        let panel = find(overview, title);
        let names: BTreeSet<String> = exprs_of(&panel)
            .iter()
            .flat_map(|e| metric_names(e))
            .collect();
        for metric in metrics {
            assert!(names.contains(*metric), "{title} reads {metric}: {names:?}");
        }
    }
    let ratio = exprs_of(&find(overview, "Conflation ratio")).concat();
    let (conflated, out) = ratio.split_once(" / ").expect("a ratio");
    assert!(
        conflated.contains("tickwire_gateway_conflated_total")
            && out.contains("tickwire_gateway_updates_out_total"),
        "conflated / updates out: {ratio}"
    );

    let latency = rows.get("Latency").expect("a Latency row");
    for metric in [
        "tickwire_ingest_venue_to_ingest_seconds",
        "tickwire_gateway_ingest_to_gateway_seconds",
        "tickwire_gateway_socket_write_seconds",
    ] {
        let bucket = format!("{metric}_bucket");
        let panel = latency
            .iter()
            .find(|p| p["type"] == "timeseries" && exprs_of(p).iter().all(|e| e.contains(&bucket)))
            .unwrap_or_else(|| panic!("no latency panel of {metric}"));
        assert_eq!(panel["fieldConfig"]["defaults"]["unit"], "s");
        let exprs = exprs_of(panel);
        for q in ["0.5", "0.99", "0.999"] {
            let line = format!("histogram_quantile({q}, ");
            assert!(
                exprs
                    .iter()
                    .any(|e| e.starts_with(&line) && e.contains(&format!("rate({bucket}{{"))),
                "{metric}: no p{q} line over rate({bucket}[...]): {exprs:?}"
            );
        }
    }
    let heatmaps: Vec<&Value> = latency.iter().filter(|p| p["type"] == "heatmap").collect();
    assert_eq!(heatmaps.len(), 1, "one heatmap");
    let heatmap = heatmaps[0];
    let target = &heatmap["targets"][0];
    assert_eq!(target["format"], "heatmap");
    assert!(str_of(&target["expr"], "expr").contains("_seconds_bucket"));
    assert_eq!(
        heatmap["options"]["calculate"], false,
        "buckets, not raw values"
    );
}
