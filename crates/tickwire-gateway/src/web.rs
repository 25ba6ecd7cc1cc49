//! The web ticker board (`dashboards/web/`): its files, embedded in the
//! binary so it serves with no build step and no files beside it, and
//! their HTTP answers (content type, revalidation by `ETag`).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

/// One embedded file of the board.
#[derive(Debug)]
pub(crate) struct Asset {
    /// The path it is served at.
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
    /// A hash of `body`: a new binary with a changed board gets a new tag.
    tag: u64,
}

const fn asset(path: &'static str, content_type: &'static str, body: &'static str) -> Asset {
    Asset {
        path,
        content_type,
        body,
        tag: fnv1a(body.as_bytes()),
    }
}

static ASSETS: [Asset; 5] = [
    asset(
        "/index.html",
        "text/html; charset=utf-8",
        include_str!("../../../dashboards/web/index.html"),
    ),
    asset(
        "/board.css",
        "text/css; charset=utf-8",
        include_str!("../../../dashboards/web/board.css"),
    ),
    asset(
        "/decimal.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../dashboards/web/decimal.js"),
    ),
    asset(
        "/book.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../dashboards/web/book.js"),
    ),
    asset(
        "/board.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../dashboards/web/board.js"),
    ),
];

/// The page's policy: its own files and sockets only (no CDN, no inline
/// script), and no framing by other sites.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The board's file at `path` (`/` is the page), if there is one.
pub(crate) fn lookup(path: &str) -> Option<&'static Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

/// The answer for `asset`: the file, or `304 Not Modified` when the
/// request's `If-None-Match` already names this version.
pub(crate) fn respond(asset: &Asset, request: &HeaderMap) -> Response<Full<Bytes>> {
    let etag = format!("\"{:016x}\"", asset.tag);
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag);
    let builder = Response::builder()
        // Revalidate every time: a restarted service with a new board is
        // picked up at once, an unchanged one costs a 304.
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::ETAG, etag)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    let builder = if asset.content_type.starts_with("text/html") {
        builder
            .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
            .header(header::REFERRER_POLICY, "no-referrer")
    } else {
        builder
    };
    if fresh {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Full::new(Bytes::new()))
            .unwrap_or_default();
    }
    builder
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )
        .body(Full::new(Bytes::from_static(asset.body.as_bytes())))
        .unwrap_or_default()
}

/// 64-bit FNV-1a: enough to tell versions of a file apart, and `const`.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).expect("header value"));
        }
        h
    }

    async fn body(r: Response<Full<Bytes>>) -> Bytes {
        r.into_body().collect().await.expect("body").to_bytes()
    }

    #[test]
    fn the_page_and_its_files_are_found_and_nothing_else() {
        assert_eq!(lookup("/").map(|a| a.path), Some("/index.html"));
        assert_eq!(lookup("/index.html").map(|a| a.path), Some("/index.html"));
        assert_eq!(lookup("/board.js").map(|a| a.path), Some("/board.js"));
        assert_eq!(lookup("/board.css").map(|a| a.path), Some("/board.css"));
        assert_eq!(lookup("/decimal.js").map(|a| a.path), Some("/decimal.js"));
        assert_eq!(lookup("/book.js").map(|a| a.path), Some("/book.js"));
        assert!(lookup("/board.map").is_none());
        assert!(lookup("/../Cargo.toml").is_none());
    }

    #[tokio::test]
    async fn each_file_has_its_type_and_a_revalidating_cache() {
        for (path, kind) in [
            ("/", "text/html; charset=utf-8"),
            ("/board.css", "text/css; charset=utf-8"),
            ("/decimal.js", "text/javascript; charset=utf-8"),
            ("/book.js", "text/javascript; charset=utf-8"),
            ("/board.js", "text/javascript; charset=utf-8"),
        ] {
            let asset = lookup(path).expect("served");
            let r = respond(asset, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], kind, "{path}");
            assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache", "{path}");
            assert_eq!(
                r.headers().contains_key(header::CONTENT_SECURITY_POLICY),
                path == "/",
                "{path}: the policy is the page's"
            );
            assert_eq!(body(r).await, asset.body.as_bytes(), "{path}");
        }
    }

    #[tokio::test]
    async fn a_known_version_is_answered_not_modified() {
        let asset = lookup("/board.js").expect("served");
        let first = respond(asset, &HeaderMap::new());
        let etag = first.headers()[header::ETAG]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

        let again = respond(
            asset,
            &headers(&[(header::IF_NONE_MATCH, &format!("\"other\", W/{etag}"))]),
        );
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], etag.as_str());
        assert!(body(again).await.is_empty());

        let stale = respond(asset, &headers(&[(header::IF_NONE_MATCH, "\"other\"")]));
        assert_eq!(stale.status(), StatusCode::OK);
    }

    #[test]
    fn the_files_differ_in_their_tags() {
        let tags: std::collections::BTreeSet<u64> = ASSETS.iter().map(|a| a.tag).collect();
        assert_eq!(tags.len(), ASSETS.len());
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
    }
}
