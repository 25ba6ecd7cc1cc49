//! `tickwire probe`: one plain-HTTP GET whose exit status says whether the
//! answer was 2xx, for container health checks in an image without curl.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Most bytes read before the status line must have ended: a status line
/// is short, and a probe must not buffer whatever a wrong port sends.
const MAX_HEAD: usize = 8 * 1024;

/// Check an HTTP endpoint: exit 0 on a 2xx answer, 1 otherwise.
///
/// Sends one `GET` (plain http://, HTTP/1.1, `Connection: close`) and
/// reads only the status line. Any other status, a refused or silent
/// connection, or no answer within --timeout-ms exits 1 with one line on
/// stderr saying why. Made for health checks where the image has no curl.
///
/// Examples:
///   tickwire probe http://127.0.0.1:8080/readyz
///   tickwire probe http://127.0.0.1:9090/healthz --timeout-ms 500
///   tickwire probe --check http://127.0.0.1:8080/readyz   (parse only)
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct ProbeArgs {
    /// The URL: http://HOST[:PORT]/PATH (port 80 by default).
    #[arg(value_name = "URL")]
    url: String,
    /// Give up after this long, connecting and reading included.
    #[arg(long, value_name = "N", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: u64,
    /// Check the URL and print the request that would be sent, without
    /// connecting (exit 0, or 1 naming what is wrong).
    #[arg(long)]
    check: bool,
}

/// Where one probe goes.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// Host name or address, without IPv6 brackets (for connecting).
    host: String,
    /// Host as written, with brackets (for the `Host` header).
    authority: String,
    port: u16,
    /// Path and query, `/` at least.
    path: String,
}

/// Probes once; exit 0 on 2xx, an error (exit 1) otherwise.
pub(crate) async fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let target = parse_url(&args.url)?;
    if args.check {
        println!(
            "GET {} from {}:{} (timeout {} ms)",
            target.path, target.host, target.port, args.timeout_ms
        );
        return Ok(ExitCode::SUCCESS);
    }
    let timeout = Duration::from_millis(args.timeout_ms);
    let status = tokio::time::timeout(timeout, fetch_status(&target))
        .await
        .map_err(|_| anyhow::anyhow!("{}: no answer within {} ms", args.url, args.timeout_ms))?
        .with_context(|| args.url.clone())?;
    if (200..300).contains(&status.code) {
        Ok(ExitCode::SUCCESS)
    } else {
        bail!("{}: {} {}", args.url, status.code, status.reason)
    }
}

/// `http://HOST[:PORT][/PATH]` split up; anything else (https, no host,
/// a fragment) is refused with the reason.
fn parse_url(url: &str) -> anyhow::Result<Target> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("{url:?} is not a URL; expected http://HOST[:PORT]/PATH"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => bail!("{url}: only http:// is probed, not {other}://"),
        None => bail!("{url}: expected http://HOST[:PORT]/PATH"),
    }
    let Some(authority) = uri.authority() else {
        bail!("{url}: no host");
    };
    if authority.as_str().contains('@') {
        bail!("{url}: credentials in the URL are not supported");
    }
    let written = authority.host();
    let host = written.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        bail!("{url}: no host");
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    Ok(Target {
        host: host.to_string(),
        authority: authority.as_str().to_string(),
        port: uri.port_u16().unwrap_or(80),
        path: if path.is_empty() { "/".into() } else { path },
    })
}

/// An HTTP status line's code and reason.
#[derive(Debug, PartialEq, Eq)]
struct Status {
    code: u16,
    reason: String,
}

/// Connects, sends the request and reads up to the end of the status line.
async fn fetch_status(target: &Target) -> anyhow::Result<Status> {
    let mut stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .with_context(|| format!("cannot connect to {}:{}", target.host, target.port))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tickwire-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.path, target.authority
    );
    stream
        .write_all(request.as_bytes())
        .await
        .context("cannot send the request")?;
    let mut head = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head.iter().position(|&b| b == b'\n') {
            return parse_status_line(&head[..end]);
        }
        if head.len() >= MAX_HEAD {
            bail!("no HTTP status line in the first {MAX_HEAD} bytes");
        }
        let n = stream
            .read(&mut chunk)
            .await
            .context("cannot read the answer")?;
        if n == 0 {
            if head.is_empty() {
                bail!("the connection closed without an answer");
            }
            return parse_status_line(&head);
        }
        head.extend_from_slice(&chunk[..n]);
    }
}

/// `HTTP/1.1 200 OK` (with or without `\r`) to its code and reason.
fn parse_status_line(line: &[u8]) -> anyhow::Result<Status> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r');
    let shown: String = text.chars().take(80).collect();
    let mut parts = text.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(code) if version.starts_with("HTTP/") && (100..1000).contains(&code) => Ok(Status {
            code,
            reason: parts.next().unwrap_or_default().to_string(),
        }),
        _ => bail!("not an HTTP answer: {shown:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_port_and_path() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/readyz").expect("valid"),
            Target {
                host: "127.0.0.1".into(),
                authority: "127.0.0.1:8080".into(),
                port: 8080,
                path: "/readyz".into(),
            }
        );
        let t = parse_url("http://gateway-1").expect("valid");
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        let t = parse_url("http://[::1]:9090/metrics?x=1").expect("valid");
        assert_eq!(
            (t.host.as_str(), t.authority.as_str(), t.path.as_str()),
            ("::1", "[::1]:9090", "/metrics?x=1")
        );
        for (bad, says) in [
            ("https://127.0.0.1/", "only http://"),
            ("127.0.0.1:8080/readyz", "expected http://"),
            ("http://user:pw@127.0.0.1/", "credentials"),
            ("not a url", "not a URL"),
        ] {
            let err = parse_url(bad).expect_err(bad).to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn status_lines_parse_or_are_refused() {
        assert_eq!(
            parse_status_line(b"HTTP/1.1 503 Service Unavailable\r").expect("valid"),
            Status {
                code: 503,
                reason: "Service Unavailable".into()
            }
        );
        assert_eq!(parse_status_line(b"HTTP/1.0 200").expect("valid").code, 200);
        for bad in [
            &b"SSH-2.0-OpenSSH"[..],
            b"HTTP/1.1 abc OK",
            b"",
            b"HTTP/1.1 42 x",
        ] {
            assert!(parse_status_line(bad).is_err(), "{bad:?}");
        }
    }
}
