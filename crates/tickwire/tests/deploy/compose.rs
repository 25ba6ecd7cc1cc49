//! docker-compose.yml and its offline demo override, against the
//! repository, the Dockerfile and the built binary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::dockerfile::{Dockerfile, dockerfile};
use crate::grafana::provisioned_uid;
use crate::metrics::dashboard_exprs;
use crate::{host_port, json, read, root, str_of, summary_value, tickwire, words, yaml};

/// The services docker-compose.yml must define.
const SERVICES: [&str; 6] = [
    "redis",
    "ingest",
    "gateway-1",
    "gateway-2",
    "prometheus",
    "grafana",
];

/// A compose `environment`: a map, or a list of `KEY=VALUE`.
fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Null => BTreeMap::new(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), value)
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                let entry = str_of(i, "environment entry");
                let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        other => panic!("environment should be a map or a list: {other}"),
    }
}

/// A bind mount: the repository path and where it appears in the container.
#[derive(Debug)]
struct Mount {
    host: PathBuf,
    container: String,
}

/// A service's bind mounts (short `./src:/dst[:ro]` and long syntax),
/// each checked to exist in the repository; named volumes are checked to
/// be declared at the top level.
fn mounts(name: &str, service: &Value, compose: &Value) -> Vec<Mount> {
    let Some(volumes) = service["volumes"].as_array() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for volume in volumes {
        let (source, target) = match volume {
            Value::String(s) => {
                let mut parts = s.splitn(3, ':');
                let source = parts.next().unwrap_or_default().to_string();
                let target = parts
                    .next()
                    .unwrap_or_else(|| panic!("{name}: volume {s:?} has no target"))
                    .to_string();
                (source, target)
            }
            Value::Object(_) => (
                str_of(&volume["source"], "volume source").to_string(),
                str_of(&volume["target"], "volume target").to_string(),
            ),
            other => panic!("{name}: volume should be a string or a map: {other}"),
        };
        if source.starts_with('.') || source.starts_with('/') {
            assert!(
                !source.starts_with('/'),
                "{name}: {source}: bind mounts are repository-relative"
            );
            let host = root().join(&source);
            assert!(
                host.exists(),
                "{name}: bind-mounted {source} does not exist in the repository"
            );
            out.push(Mount {
                host,
                container: target,
            });
        } else {
            assert!(
                compose["volumes"].get(&source).is_some(),
                "{name}: named volume {source} is not declared under `volumes:`"
            );
        }
    }
    out
}

/// `value` with a mounted container path replaced by its repository path.
fn to_host(value: &str, mounts: &[Mount]) -> String {
    for m in mounts {
        if let Some(rest) = value.strip_prefix(&m.container) {
            if rest.is_empty() || rest.starts_with('/') {
                return format!("{}{rest}", m.host.display());
            }
        }
    }
    value.to_string()
}

/// The container ports a service publishes (`[IP:]HOST:CONTAINER[/proto]`,
/// `CONTAINER`, or the long syntax).
fn published_ports(name: &str, service: &Value) -> Vec<u16> {
    let Some(ports) = service["ports"].as_array() else {
        return Vec::new();
    };
    ports
        .iter()
        .map(|p| {
            let container = match p {
                Value::String(s) => s
                    .split('/')
                    .next()
                    .and_then(|s| s.rsplit(':').next())
                    .unwrap_or_default()
                    .to_string(),
                Value::Number(n) => n.to_string(),
                Value::Object(_) => p["target"].to_string(),
                other => panic!("{name}: bad port {other}"),
            };
            container
                .parse()
                .unwrap_or_else(|_| panic!("{name}: port {p} has no single container port"))
        })
        .collect()
}

/// Compose durations (`20s`, `1m30s`) in seconds.
fn seconds(duration: &str) -> u64 {
    let mut total = 0;
    let mut number = String::new();
    for c in duration.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number
            .parse()
            .unwrap_or_else(|_| panic!("bad duration {duration:?}"));
        number.clear();
        total += match c {
            'h' => n * 3600,
            'm' => n * 60,
            's' => n,
            _ => panic!("unit {c:?} in {duration:?}"),
        };
    }
    assert!(number.is_empty(), "duration {duration:?} lacks a unit");
    total
}

/// What `tickwire ... --check` said about one service.
struct Checked {
    /// The address it listens on (`listen`, or `ingest.listen`).
    listen: String,
    stdout: String,
}

/// Runs a tickwire service's command with `--check`, its environment and
/// its mounts mapped to the repository; panics unless it is accepted.
fn check_service(
    name: &str,
    command: &[String],
    env: &BTreeMap<String, String>,
    mounts: &[Mount],
) -> Checked {
    let sub = command.first().map(String::as_str);
    assert!(
        matches!(sub, Some("run" | "ingest" | "gateway")),
        "{name}: `tickwire {}` is not a serving command",
        command.join(" ")
    );
    let mut args: Vec<String> = command.iter().map(|a| to_host(a, mounts)).collect();
    args.push("--check".into());
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.clone(), to_host(v, mounts)))
        .collect();
    let out = tickwire(&args, &env);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{name}: `tickwire {}` refused its configuration: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let key = if sub == Some("ingest") {
        "ingest.listen:"
    } else {
        "listen:"
    };
    let listen = summary_value(&stdout, key)
        .unwrap_or_else(|| panic!("{name}: no {key} in {stdout}"))
        .to_string();
    Checked { listen, stdout }
}

/// `ADDR`'s port, after checking it listens on every interface (a
/// container's loopback is unreachable from the other containers).
fn all_interfaces_port(name: &str, listen: &str) -> u16 {
    let addr: std::net::SocketAddr = listen
        .parse()
        .unwrap_or_else(|_| panic!("{name}: listens on {listen:?}, not an address"));
    assert!(
        addr.ip().is_unspecified(),
        "{name} listens on {addr}: only its own container can reach that"
    );
    addr.port()
}

#[test]
fn docker_compose_references_what_exists_and_the_binary_accepts() {
    let compose = yaml("docker-compose.yml");
    let services = compose["services"].as_object().expect("services");
    for name in SERVICES {
        assert!(services.contains_key(name), "no service {name}");
    }
    let dockerfile = dockerfile();

    // The port each service serves on, for the scrape targets below.
    let mut serves: BTreeMap<String, u16> = BTreeMap::new();
    for (name, service) in services {
        let test = words(&service["healthcheck"]["test"], "healthcheck test");
        assert!(
            matches!(test.first().map(String::as_str), Some("CMD" | "CMD-SHELL")) && test.len() > 1,
            "{name}: a health check is required: {test:?}"
        );
        let mounts = mounts(name, service, &compose);
        let deps: Vec<(String, Value)> = match &service["depends_on"] {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Value::Array(list) => list
                .iter()
                .map(|d| (str_of(d, "depends_on").to_string(), Value::Null))
                .collect(),
            _ => Vec::new(),
        };
        for (dep, how) in deps {
            let target = services
                .get(&dep)
                .unwrap_or_else(|| panic!("{name} depends on unknown {dep}"));
            if how["condition"] == "service_healthy" {
                assert!(
                    target["healthcheck"].is_object(),
                    "{dep} has no health check"
                );
            }
        }
        let ports = published_ports(name, service);

        let is_tickwire = !service["build"].is_null();
        if !is_tickwire {
            // Official images: the health check's URL port is the published one.
            if let Some(url) = test.iter().find(|w| w.starts_with("http://")) {
                let (host, port) = host_port(url);
                assert_eq!(host, "127.0.0.1", "{name}: health check {url}");
                for p in &ports {
                    assert_eq!(*p, port, "{name}: publishes {p}, serves {port}");
                }
                serves.insert(name.clone(), port);
            }
            continue;
        }

        let port = check_tickwire_service(name, service, &test, &ports, &mounts, &dockerfile);
        serves.insert(name.clone(), port);
    }

    check_prometheus(&compose, &serves);
    check_grafana(&compose, &serves);
    check_demo_override(&compose);
}

/// Checks a service running the tickwire image: built from this
/// repository, its command and health-check probe accepted by the binary
/// (`--check`), its ports those it listens on. Returns the port it serves.
fn check_tickwire_service(
    name: &str,
    service: &Value,
    test: &[String],
    ports: &[u16],
    mounts: &[Mount],
    dockerfile: &Dockerfile,
) -> u16 {
    // The image: built from this repository's Dockerfile.
    let context = root().join(str_of(&service["build"]["context"], "build context"));
    assert!(
        context.is_dir(),
        "{name}: build context {}",
        context.display()
    );
    let file = service["build"]["dockerfile"]
        .as_str()
        .unwrap_or("Dockerfile");
    assert!(context.join(file).is_file(), "{name}: no {file}");
    assert_eq!(
        dockerfile.entrypoint,
        ["tickwire"],
        "{name}: the image runs tickwire"
    );
    assert!(
        service["entrypoint"].is_null(),
        "{name}: keeps the image's entrypoint, so `command` is tickwire's arguments"
    );
    let command = words(&service["command"], "command");
    let env = environment(service);
    let checked = check_service(name, &command, &env, mounts);
    let port = all_interfaces_port(name, &checked.listen);
    for p in ports {
        assert_eq!(
            *p, port,
            "{name}: publishes container port {p}, listens on {port}"
        );
    }
    for p in service["expose"].as_array().into_iter().flatten() {
        let p = p.as_str().map_or_else(|| p.to_string(), str::to_string);
        assert_eq!(
            p,
            port.to_string(),
            "{name}: exposes {p}, listens on {port}"
        );
    }
    assert!(
        dockerfile.exposed.contains(&port),
        "{name}: the Dockerfile does not EXPOSE {port}"
    );

    // Health check: `tickwire probe URL` on the port it listens on,
    // a command the binary accepts.
    assert_eq!(test[0], "CMD", "{name}: exec form, no shell in the image");
    assert_eq!(&test[1..3], ["tickwire", "probe"], "{name}: {test:?}");
    let (host, probed) = host_port(&test[3]);
    assert_eq!(
        (host.as_str(), probed),
        ("127.0.0.1", port),
        "{name}: probes {}",
        test[3]
    );
    let mut probe = test[2..].to_vec();
    probe.push("--check".into());
    let out = tickwire(&probe, &BTreeMap::new());
    assert!(
        out.status.success(),
        "{name}: `tickwire {}`: {}",
        probe.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );

    match command[0].as_str() {
        "ingest" => {
            // The deployed default is the live venues.
            let feeds: Vec<&str> = checked
                .stdout
                .lines()
                .filter(|l| l.trim_start().starts_with("feeds:"))
                .collect();
            assert_eq!(feeds.len(), 5, "{name}: five venues: {}", checked.stdout);
            assert!(
                feeds.iter().all(|l| l.contains("(live ")),
                "{name}: live feeds: {feeds:?}"
            );
            assert!(
                dockerfile.copies_feeds_to_workdir,
                "relative --feeds paths need feeds/ in the image's WORKDIR"
            );
        }
        "gateway" => {
            // Above the gateway's graceful stop: drain window (5 s by
            // default) plus shutdown_timeout_ms.
            let grace = seconds(str_of(&service["stop_grace_period"], "stop_grace_period"));
            assert!(grace > 15, "{name}: stop_grace_period {grace}s");
            assert!(
                service["depends_on"]["redis"]["condition"] == "service_healthy",
                "{name} waits for a healthy redis"
            );
        }
        _ => {}
    }
    port
}

/// The Prometheus service loads the repository's config, which scrapes
/// every tickwire service by service name on the port it listens on.
fn check_prometheus(compose: &Value, serves: &BTreeMap<String, u16>) {
    let service = &compose["services"]["prometheus"];
    let mounts = mounts("prometheus", service, compose);
    let command = words(&service["command"], "prometheus command");
    let config = command
        .iter()
        .find_map(|a| a.strip_prefix("--config.file="))
        .expect("--config.file");
    let config = PathBuf::from(to_host(config, &mounts));
    assert!(
        config.is_file(),
        "prometheus: {} is not mounted",
        config.display()
    );
    let config_rel = config.strip_prefix(root()).expect("in the repository");
    let config_rel = config_rel.to_str().expect("utf-8");
    assert_eq!(config_rel, "dashboards/prometheus/prometheus.yml");
    let prom = yaml(config_rel);
    let dir = config.parent().expect("dir");
    for file in prom["rule_files"].as_array().expect("rule_files") {
        let file = dir.join(str_of(file, "rule file"));
        assert!(
            file.is_file(),
            "rule file {} is mounted beside",
            file.display()
        );
    }
    let mut scraped = BTreeSet::new();
    for job in prom["scrape_configs"].as_array().expect("scrape_configs") {
        for sc in job["static_configs"].as_array().expect("static_configs") {
            for target in sc["targets"].as_array().expect("targets") {
                let target = str_of(target, "target");
                let (host, port) = target.rsplit_once(':').expect("HOST:PORT");
                let port: u16 = port.parse().expect("port");
                let serves_on = serves
                    .get(host)
                    .unwrap_or_else(|| panic!("scrape target {target}: no compose service {host}"));
                assert_eq!(port, *serves_on, "scrape target {target}");
                scraped.insert(host.to_string());
            }
        }
    }
    for name in ["ingest", "gateway-1", "gateway-2"] {
        assert!(scraped.contains(name), "Prometheus does not scrape {name}");
    }
}

/// Grafana's provisioning is mounted where Grafana reads it, the dashboard
/// where the provider looks, and the datasource is the prometheus service.
fn check_grafana(compose: &Value, serves: &BTreeMap<String, u16>) {
    let service = &compose["services"]["grafana"];
    let mounts = mounts("grafana", service, compose);
    let provisioning = mounts
        .iter()
        .find(|m| m.container == "/etc/grafana/provisioning")
        .expect("provisioning mounted at /etc/grafana/provisioning");
    assert_eq!(
        provisioning.host,
        root().join("dashboards/grafana/provisioning")
    );

    let providers = yaml("dashboards/grafana/provisioning/dashboards/tickwire.yml");
    let path = str_of(
        &providers["providers"][0]["options"]["path"],
        "provider path",
    );
    let dashboard = mounts
        .iter()
        .find(|m| m.host.ends_with("dashboards/grafana/tickwire.json"))
        .expect("tickwire.json mounted");
    assert_eq!(
        Path::new(&dashboard.container).parent(),
        Some(Path::new(path)),
        "the dashboard is mounted where the provider reads"
    );
    let env = environment(service);
    if let Some(home) = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH") {
        assert_eq!(home, &dashboard.container, "home dashboard");
    }

    let ds = yaml("dashboards/grafana/provisioning/datasources/prometheus.yml");
    let url = str_of(&ds["datasources"][0]["url"], "datasource url");
    let (host, port) = host_port(url);
    assert_eq!(host, "prometheus", "the datasource is the compose service");
    assert_eq!(Some(&port), serves.get("prometheus"));
    let uid = provisioned_uid();
    let dash = json("dashboards/grafana/tickwire.json");
    assert!(
        dashboard_exprs(&dash).len() > 10,
        "the dashboard has queries"
    );
    let text = read("dashboards/grafana/tickwire.json");
    let uids: BTreeSet<&str> = text
        .match_indices(r#""uid": ""#)
        .map(|(i, m)| {
            let rest = &text[i + m.len()..];
            &rest[..rest.find('"').unwrap_or(0)]
        })
        .filter(|u| *u != "tickwire" && *u != "-- Grafana --")
        .collect();
    assert_eq!(uids, BTreeSet::from([uid.as_str()]), "every datasource uid");
}

/// deploy/compose.demo.yml only swaps ingest's command for the embedded
/// captures, which the binary accepts with the rest of the service as is.
fn check_demo_override(compose: &Value) {
    let demo = yaml("deploy/compose.demo.yml");
    let services = demo["services"].as_object().expect("services");
    assert_eq!(services.keys().collect::<Vec<_>>(), ["ingest"]);
    let ingest = services["ingest"].as_object().expect("ingest");
    assert_eq!(ingest.keys().collect::<Vec<_>>(), ["command"]);
    let base = &compose["services"]["ingest"];
    let mounts = mounts("ingest", base, compose);
    let command = words(&ingest["command"], "demo command");
    let checked = check_service("ingest (demo)", &command, &environment(base), &mounts);
    let feeds: Vec<&str> = checked
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("feeds:"))
        .collect();
    assert!(
        !feeds.is_empty() && feeds.iter().all(|l| l.contains("embedded demo")),
        "the demo replays the embedded captures: {feeds:?}"
    );
}
