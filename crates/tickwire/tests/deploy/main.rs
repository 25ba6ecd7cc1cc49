//! The observability files, checked against the repository:
//!
//! - `dashboards/prometheus/`: `promtool check config`, `check rules` and
//!   `test rules` (the alert unit tests) pass;
//! - `dashboards/grafana/tickwire.json`: the overview and latency rows with
//!   their panels and queries, one datasource uid, the provisioned one;
//! - every PromQL expression (alerts, dashboard) uses only the names in
//!   `metrics::METRICS`.

mod grafana;
mod metrics;
mod prometheus;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The repository root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A repository file's text.
pub(crate) fn read(path: &str) -> String {
    let full = root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

/// A YAML file of the repository as a JSON value (merge keys applied).
pub(crate) fn yaml(path: &str) -> Value {
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

/// A JSON file of the repository.
pub(crate) fn json(path: &str) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not valid JSON: {e}"))
}

/// `v` as a string, or a panic naming `what`.
pub(crate) fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} should be a string: {v}"))
}
