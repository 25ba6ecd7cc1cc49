//! The deployment files, checked against the repository and the real
//! binary (compose and Docker cannot run here):
//!
//! - `dashboards/prometheus/`: `promtool check config`, `check rules` and
//!   `test rules` (the alert unit tests) pass;
//! - `docker-compose.yml` (and the offline demo override): services, health
//!   checks, every bind-mounted path and build file exists, every published
//!   port is the one the service listens on, every `tickwire` command and
//!   health-check probe is accepted by the built binary with `--check` and
//!   the service's environment, Prometheus scrapes the compose services on
//!   their ports, Grafana's provisioning points at what is mounted;
//! - `dashboards/grafana/tickwire.json`: the overview and latency rows with
//!   their panels and queries, one datasource uid, the provisioned one;
//! - every PromQL expression (alerts, dashboard) uses only the names in
//!   `metrics::METRICS`;
//! - the `Dockerfile`: multi-stage, unprivileged `USER`, `tickwire`
//!   entrypoint, every file it copies exists.

mod compose;
mod dockerfile;
mod grafana;
mod metrics;
mod prometheus;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tickwire");

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

/// A list of strings (compose `command`, a health check `test`): a YAML
/// list, or a string split on whitespace.
pub(crate) fn words(v: &Value, what: &str) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().map(|i| str_of(i, what).to_string()).collect(),
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        other => panic!("{what} should be a list or a string: {other}"),
    }
}

/// `http://HOST:PORT/...` to `(HOST, PORT)`.
pub(crate) fn host_port(url: &str) -> (String, u16) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("{url}: expected http://"));
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = authority
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{url}: no port"));
    (
        host.to_string(),
        port.parse().unwrap_or_else(|_| panic!("{url}: bad port")),
    )
}

/// Runs the built binary to its end with exactly `env` as its `TICKWIRE_*`
/// variables, from the repository root (the image's working directory
/// holds `feeds/` the same way).
pub(crate) fn tickwire(args: &[String], env: &BTreeMap<String, String>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(root())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TICKWIRE_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env);
    // --check binds and connects nothing and ends at once.
    cmd.output().expect("run tickwire")
}

/// The value of `key:` in a `--check` summary.
pub(crate) fn summary_value<'a>(stdout: &'a str, key: &str) -> Option<&'a str> {
    stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(key))
        .map(str::trim)
}
