//! promtool on the Prometheus files, and the shape of the alert rules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::{root, str_of, yaml};

/// promtool, with its arguments relative to the repository.
fn promtool(args: &[&str]) -> Output {
    let found = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("promtool"))
                    .find(|p| p.exists())
            })
        });
    let Some(promtool) = found else {
        panic!(
            "promtool not found: install Debian's `prometheus` package \
             (apt-get install --no-install-recommends prometheus), as .ci/run does"
        );
    };
    Command::new(promtool)
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .expect("run promtool")
}

#[test]
fn prometheus_config_and_rules_pass_promtool() {
    for args in [
        &["check", "config", "dashboards/prometheus/prometheus.yml"][..],
        &["check", "rules", "dashboards/prometheus/alerts.yml"],
        &["test", "rules", "dashboards/prometheus/alerts.test.yml"],
    ] {
        let out = promtool(args);
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_alert_has_a_severity_annotations_and_a_unit_test() {
    let rules = yaml("dashboards/prometheus/alerts.yml");
    let tests = yaml("dashboards/prometheus/alerts.test.yml");
    let tested: BTreeSet<String> = tests["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().cloned().unwrap_or_default())
        .filter(|t| t["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()))
        .map(|t| str_of(&t["alertname"], "alertname").to_string())
        .collect();
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let name = str_of(&rule["alert"], "alert");
            alerts.insert(name.to_string());
            let severity = str_of(&rule["labels"]["severity"], "severity");
            assert!(
                ["critical", "warning"].contains(&severity),
                "{name}: severity {severity}"
            );
            for key in ["summary", "description"] {
                assert!(
                    rule["annotations"][key]
                        .as_str()
                        .is_some_and(|s| !s.is_empty()),
                    "{name}: no {key}"
                );
            }
            assert!(
                tested.contains(name),
                "{name} is never seen firing in alerts.test.yml"
            );
        }
    }
    // What an SRE is paged for.
    for (alert, severity) in [
        ("TickwireFeedStale", "critical"),
        ("TickwireGatewayLatencyHigh", "critical"),
        ("TickwireBusDown", "critical"),
        ("TickwireTargetDown", "critical"),
        ("TickwireSlowConsumerClosesSpiking", "critical"),
    ] {
        assert!(alerts.contains(alert), "no {alert} rule");
        let rule = rules["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .find(|r| r["alert"] == alert)
            .expect("rule");
        assert_eq!(rule["labels"]["severity"], severity, "{alert}");
    }
}
