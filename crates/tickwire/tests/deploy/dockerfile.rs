//! The Dockerfile and .dockerignore.

use crate::{read, root};

/// What the tests need from the Dockerfile.
pub(crate) struct Dockerfile {
    /// The last stage's ENTRYPOINT (exec form).
    pub(crate) entrypoint: Vec<String>,
    /// Ports of the last stage's EXPOSE lines.
    pub(crate) exposed: Vec<u16>,
    /// Whether the last stage copies `feeds` into its WORKDIR.
    pub(crate) copies_feeds_to_workdir: bool,
}

/// The Dockerfile's instructions (continuation lines joined, comments
/// dropped), checked as they are read: multi-stage, an unprivileged USER
/// in the image, every file copied from the context present.
pub(crate) fn dockerfile() -> Dockerfile {
    let text = read("Dockerfile");
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    let stages = lines.iter().filter(|l| l.starts_with("FROM ")).count();
    assert!(stages >= 2, "multi-stage: {stages} FROM");
    let last_from = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("FROM");
    let last = &lines[last_from..];
    let instruction = |name: &str| -> Vec<&str> {
        last.iter()
            .filter_map(|l| l.strip_prefix(name).map(str::trim))
            .collect()
    };

    let user = instruction("USER ");
    let user = user.last().expect("the image sets a USER");
    let (name, group) = user.split_once(':').unwrap_or((user, ""));
    assert!(
        !["root", "0"].contains(&name) && !["root", "0"].contains(&group),
        "USER {user} is root"
    );

    let entrypoint: Vec<String> =
        serde_json::from_str(instruction("ENTRYPOINT ").last().expect("an ENTRYPOINT"))
            .expect("ENTRYPOINT in exec form");
    let exposed = instruction("EXPOSE ")
        .iter()
        .flat_map(|l| l.split_whitespace())
        .map(|p| {
            p.split('/')
                .next()
                .unwrap_or_default()
                .parse()
                .expect("port")
        })
        .collect();

    let workdir = instruction("WORKDIR ").last().map(|w| w.to_string());
    let mut copies_feeds_to_workdir = false;
    for line in &lines {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        let parts: Vec<&str> = rest.split_whitespace().collect();
        let from_stage = parts.iter().any(|p| p.starts_with("--from="));
        let paths: Vec<&str> = parts
            .iter()
            .copied()
            .filter(|p| !p.starts_with("--"))
            .collect();
        let (dest, sources) = paths.split_last().expect("COPY SRC... DEST");
        if !from_stage {
            for source in sources {
                assert!(
                    root().join(source).exists(),
                    "COPY {source}: not in the repository"
                );
            }
        }
        if last.contains(line)
            && sources
                .iter()
                .any(|s| s.trim_end_matches('/').ends_with("feeds"))
        {
            let dest = dest.trim_end_matches('/');
            let in_workdir = dest == "./feeds"
                || workdir
                    .as_deref()
                    .is_some_and(|w| dest == format!("{}/feeds", w.trim_end_matches('/')));
            copies_feeds_to_workdir |= in_workdir;
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("cargo build --release --locked -p tickwire")),
        "the builder builds the release binary from the lock file"
    );

    let ignore = read(".dockerignore");
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["target", "**/node_modules", ".git"] {
        assert!(ignored.contains(&needed), ".dockerignore lacks {needed}");
    }

    Dockerfile {
        entrypoint,
        exposed,
        copies_feeds_to_workdir,
    }
}

#[test]
fn dockerfile_is_multi_stage_unprivileged_and_copies_what_exists() {
    let d = dockerfile();
    assert_eq!(d.entrypoint, ["tickwire"]);
    assert!(d.exposed.contains(&8080) && d.exposed.contains(&9090));
    assert!(d.copies_feeds_to_workdir);
}
