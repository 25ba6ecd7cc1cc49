//! The metric names a PromQL expression selects, and a check that every
//! expression of the dashboard and the alerts selects ours (that each is
//! exported with data is checked on a live scrape, tests/observability.rs).

use serde_json::Value;

use crate::{json, str_of, yaml};

/// The series names a PromQL expression selects: identifiers that are not
/// functions, keywords, label names (`by (...)`, `{...}`), strings,
/// durations (`[5m]`) or numbers. Grafana's `$variables` are skipped.
pub(crate) fn metric_names(expr: &str) -> Vec<String> {
    const KEYWORDS: [&str; 11] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    // Aggregations may be followed by `by (...)` rather than their `(`.
    const AGGREGATIONS: [&str; 12] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_group => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                skip_group = false;
            }
            '$' => {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let is_call = chars.get(next) == Some(&'(');
                if GROUPING.contains(&word.as_str()) {
                    skip_group = true;
                } else if word == "offset" {
                    // The duration after it is a word too.
                    while i < chars.len() && chars[i].is_whitespace() {
                        i += 1;
                    }
                    while i < chars.len() && chars[i].is_alphanumeric() {
                        i += 1;
                    }
                } else if !is_call
                    && !KEYWORDS.contains(&word.as_str())
                    && !AGGREGATIONS.contains(&word.as_str())
                {
                    names.push(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn promql_names_are_found_and_nothing_else() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.99, sum by (job, le) (rate(a_bucket{x="y{z}",le!="1"}[5m]))) > 0.05"#
        ),
        ["a_bucket"]
    );
    assert_eq!(
        metric_names(
            r#"sum(rate(x_total{job=~"$job"}[$__rate_interval])) / on (i) group_left (v) y offset 5m and bool up == 0"#
        ),
        ["x_total", "y", "up"]
    );
    assert_eq!(metric_names("max without (instance) (g) != 1e3"), ["g"]);
    assert_eq!(metric_names("sum(x) by (a) > bool 1"), ["x"]);
}

/// Every PromQL expression of the dashboard: panel targets, and the metric
/// of each `label_values(METRIC, label)` variable query.
pub(crate) fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(str_of(&target["expr"], "expr").to_string());
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = str_of(&var["definition"], "variable definition");
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.rsplit_once(','))
            .map(|(metric, _)| metric)
            .unwrap_or_else(|| {
                panic!("variable query {query:?}: expected label_values(METRIC, label)")
            });
        exprs.push(inner.to_string());
    }
    exprs
}

#[test]
fn alerts_and_dashboard_select_tickwire_series() {
    let mut exprs = Vec::new();
    let rules = yaml("dashboards/prometheus/alerts.yml");
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            exprs.push(("alerts.yml", str_of(&rule["expr"], "expr").to_string()));
        }
    }
    let dashboard = json("dashboards/grafana/tickwire.json");
    for expr in dashboard_exprs(&dashboard) {
        exprs.push(("tickwire.json", expr));
    }
    assert!(exprs.len() > 20, "{} expressions", exprs.len());
    for (file, expr) in exprs {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "{file}: no metric in {expr}");
        // Whether each name is exported, with data, is checked against a
        // live scrape in tests/observability.rs.
        for name in names {
            assert!(
                name == "up" || name.starts_with("tickwire_"),
                "{file}: `{name}` is neither ours nor Prometheus's `up`: {expr}"
            );
        }
    }
}
