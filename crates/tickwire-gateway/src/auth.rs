//! Authentication: API keys (kept as SHA-256 hashes, compared in constant
//! time) and JWTs (HS256, RS256), turned into a [`Principal`] with its
//! entitlements; and the per-key connection count shared by every shard.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::entitle::Entitlements;

/// `[auth]`: who may connect and what each may see. Default: no keys, no
/// JWT, anonymous access as the command decides (on for `tickwire run`,
/// off for `tickwire gateway`).
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether a client without credentials is served (with every
    /// entitlement). Default: on for `run`, off for `gateway`.
    pub anonymous: Option<bool>,
    /// API keys, by hash. Default none.
    pub keys: Vec<ApiKeyConfig>,
    /// JWT verification. Default none: JWTs are refused.
    pub jwt: Option<JwtConfig>,
    /// How long a client that connected without credentials has to send
    /// `{"op":"auth"}` before it is closed with 4001. Default 5 000 ms.
    pub auth_deadline_ms: Option<u64>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("anonymous", &self.anonymous)
            .field("keys", &self.keys.len())
            .field("jwt", &self.jwt.is_some())
            .field("auth_deadline_ms", &self.auth_deadline_ms)
            .finish()
    }
}

/// One API key in `[[auth.keys]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Who holds it, for logs and per-key connection counts.
    pub name: String,
    /// `sha256:<64 hex digits>` of the key (`tickwire hash-key` makes it).
    pub hash: String,
    /// What it may see. Default everything.
    #[serde(default)]
    pub entitlements: Entitlements,
}

/// `[auth.jwt]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Shared secret for HS256 tokens. Prefer `hs256_secret_env`.
    pub hs256_secret: Option<String>,
    /// Name of an environment variable holding the HS256 secret.
    pub hs256_secret_env: Option<String>,
    /// PEM file with the RSA public key for RS256 tokens.
    pub rs256_public_key_file: Option<PathBuf>,
    /// Required `iss`, if set.
    pub issuer: Option<String>,
    /// Required `aud`, if set.
    pub audience: Option<String>,
    /// Claim holding the entitlements object. Default `tickwire`; a token
    /// without it is entitled to everything.
    #[serde(default = "default_claim")]
    pub claim: String,
}

fn default_claim() -> String {
    "tickwire".to_string()
}

/// An authentication setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("auth: {0}")]
pub struct AuthConfigError(String);

/// Who a connection is, and what it may see.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The key's name, the JWT's `sub`, or `anonymous`.
    pub name: Arc<str>,
    /// What it may see.
    pub entitlements: Arc<Entitlements>,
}

impl Principal {
    /// The principal of a client without credentials where that is allowed.
    pub fn anonymous() -> Self {
        static ANON: LazyLock<Principal> = LazyLock::new(|| Principal {
            name: Arc::from("anonymous"),
            entitlements: Arc::new(Entitlements::default()),
        });
        ANON.clone()
    }
}

/// Why credentials were refused; the detail goes to the log only.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No credentials, and anonymous access is off.
    #[error("credentials required")]
    Missing,
    /// The key matches no configured hash.
    #[error("unknown API key")]
    UnknownKey,
    /// The JWT failed verification (signature, expiry, issuer, audience).
    #[error("invalid token: {0}")]
    BadToken(String),
}

/// Verifies credentials; one per gateway, shared by its shards.
pub struct Authenticator {
    anonymous: bool,
    deadline_ms: u64,
    keys: Vec<(Arc<str>, [u8; 32], Arc<Entitlements>)>,
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
    issuer: Option<String>,
    audience: Option<String>,
    claim: String,
    /// Open connections per principal name, for `max_connections`.
    conns: Mutex<HashMap<Arc<str>, usize>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("anonymous", &self.anonymous)
            .field("keys", &self.keys.len())
            .field("hs256", &self.hs256.is_some())
            .field("rs256", &self.rs256.is_some())
            .finish()
    }
}

/// `sha256:<hex>` of `key`, as `[[auth.keys]] hash` holds it.
pub fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn parse_hash(hash: &str) -> Option<[u8; 32]> {
    let hex = hash.strip_prefix("sha256:")?.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

impl Authenticator {
    /// Builds the verifier; `anonymous_default` applies when the config
    /// does not say. Reads the HS256 secret variable and the RS256 key
    /// file now, so a bad setting fails at start.
    pub fn new(config: &AuthConfig, anonymous_default: bool) -> Result<Self, AuthConfigError> {
        let err = |m: String| AuthConfigError(m);
        let mut keys = Vec::new();
        for k in &config.keys {
            let hash = parse_hash(&k.hash).ok_or_else(|| {
                err(format!(
                    "key {:?}: `hash` must be sha256:<64 hex digits> (see `tickwire hash-key`)",
                    k.name
                ))
            })?;
            k.entitlements
                .validate()
                .map_err(|m| err(format!("key {:?}: {m}", k.name)))?;
            keys.push((
                Arc::from(k.name.as_str()),
                hash,
                Arc::new(k.entitlements.clone()),
            ));
        }
        let (mut hs256, mut rs256, mut issuer, mut audience, mut claim) =
            (None, None, None, None, default_claim());
        if let Some(jwt) = &config.jwt {
            let secret = match (&jwt.hs256_secret, &jwt.hs256_secret_env) {
                (Some(s), None) => Some(s.clone()),
                (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
                    err(format!(
                        "`jwt.hs256_secret_env`: {var} is not set or not UTF-8"
                    ))
                })?),
                (None, None) => None,
                (Some(_), Some(_)) => {
                    return Err(err(
                        "set one of `jwt.hs256_secret` and `jwt.hs256_secret_env`".into(),
                    ));
                }
            };
            if secret.as_ref().is_some_and(|s| s.len() < 16) {
                return Err(err("the HS256 secret must be at least 16 bytes".into()));
            }
            hs256 = secret.map(|s| DecodingKey::from_secret(s.as_bytes()));
            if let Some(path) = &jwt.rs256_public_key_file {
                let pem = std::fs::read(path).map_err(|e| {
                    err(format!(
                        "`jwt.rs256_public_key_file` {}: {e}",
                        path.display()
                    ))
                })?;
                rs256 = Some(DecodingKey::from_rsa_pem(&pem).map_err(|e| {
                    err(format!(
                        "`jwt.rs256_public_key_file` {}: {e}",
                        path.display()
                    ))
                })?);
            }
            if hs256.is_none() && rs256.is_none() {
                return Err(err(
                    "[auth.jwt] needs an HS256 secret or an RS256 public key file".into(),
                ));
            }
            issuer = jwt.issuer.clone();
            audience = jwt.audience.clone();
            claim = jwt.claim.clone();
        }
        Ok(Self {
            anonymous: config.anonymous.unwrap_or(anonymous_default),
            deadline_ms: config.auth_deadline_ms.unwrap_or(5_000).max(1),
            keys,
            hs256,
            rs256,
            issuer,
            audience,
            claim,
            conns: Mutex::new(HashMap::new()),
        })
    }

    /// Whether clients without credentials are served.
    pub fn anonymous(&self) -> bool {
        self.anonymous
    }

    /// How long a client has to send `op:auth`, in milliseconds.
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// The principal for `token` (or for none: anonymous, if allowed).
    pub fn authenticate(&self, token: Option<&str>) -> Result<Principal, AuthError> {
        let Some(token) = token else {
            return if self.anonymous {
                Ok(Principal::anonymous())
            } else {
                Err(AuthError::Missing)
            };
        };
        if token.bytes().filter(|&b| b == b'.').count() == 2 && !self.jwt_off() {
            return self.verify_jwt(token);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every key is compared, match or not, so timing says nothing
        // about which key (or how much of one) matched.
        let mut found = None;
        for (name, hash, ent) in &self.keys {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(Principal {
                    name: name.clone(),
                    entitlements: ent.clone(),
                });
            }
        }
        found.ok_or(AuthError::UnknownKey)
    }

    fn jwt_off(&self) -> bool {
        self.hs256.is_none() && self.rs256.is_none()
    }

    fn verify_jwt(&self, token: &str) -> Result<Principal, AuthError> {
        let bad = |e: &dyn fmt::Display| AuthError::BadToken(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(&e))?;
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.as_ref(),
            Algorithm::RS256 => self.rs256.as_ref(),
            _ => None,
        }
        .ok_or_else(|| bad(&format!("algorithm {:?} not accepted", header.alg)))?;
        let mut validation = Validation::new(header.alg);
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
        }
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            key,
            &validation,
        )
        .map_err(|e| bad(&e))?;
        let entitlements = match data.claims.get(&self.claim) {
            None => Entitlements::default(),
            Some(v) => {
                let e: Entitlements = serde_json::from_value(v.clone()).map_err(|e| bad(&e))?;
                e.validate().map_err(|m| bad(&m))?;
                e
            }
        };
        let name = data
            .claims
            .get("sub")
            .and_then(|s| s.as_str())
            .unwrap_or("jwt");
        Ok(Principal {
            name: Arc::from(format!("jwt:{name}")),
            entitlements: Arc::new(entitlements),
        })
    }

    /// Counts a connection of `principal` against its `max_connections`;
    /// `None` when it holds that many already. The count drops with the
    /// returned permit.
    pub fn acquire(self: &Arc<Self>, principal: Principal) -> Option<Granted> {
        let permit = match principal.entitlements.max_connections {
            None => None,
            Some(max) => {
                let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
                let n = conns.entry(principal.name.clone()).or_insert(0);
                if *n >= max {
                    return None;
                }
                *n += 1;
                Some(ConnPermit {
                    auth: self.clone(),
                    name: principal.name.clone(),
                })
            }
        };
        Some(Granted {
            principal,
            _permit: permit,
        })
    }
}

/// An authenticated connection's principal, holding its connection slot.
#[derive(Debug)]
pub struct Granted {
    /// Who it is.
    pub principal: Principal,
    _permit: Option<ConnPermit>,
}

impl Granted {
    /// Anonymous, uncounted: for gateways without `[auth]`.
    pub fn anonymous() -> Self {
        Self {
            principal: Principal::anonymous(),
            _permit: None,
        }
    }
}

#[derive(Debug)]
struct ConnPermit {
    auth: Arc<Authenticator>,
    name: Arc<str>,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut conns = self.auth.conns.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = conns.get_mut(&self.name) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                conns.remove(&self.name);
            }
        }
    }
}

/// A connection's authentication, set once: at upgrade, or by `op:auth`.
/// Shared with the deadline task, which closes the connection if it is
/// still unset when time is up.
#[derive(Debug, Default)]
pub struct AuthState(OnceLock<Granted>);

impl AuthState {
    /// Already granted.
    pub fn granted(granted: Granted) -> Self {
        Self(OnceLock::from(granted))
    }

    /// The principal, once authenticated.
    pub fn get(&self) -> Option<&Granted> {
        self.0.get()
    }

    /// Sets the principal; false if one was set already.
    pub fn set(&self, granted: Granted) -> bool {
        self.0.set(granted).is_ok()
    }
}

/// What the upgrade request's credentials decided.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Serve this principal.
    Granted(Principal),
    /// No credentials and no anonymous access: wait for `op:auth`.
    Pending,
    /// Bad credentials: close with 4001.
    Denied,
}

impl Admission {
    /// Decides for a request carrying `token`; `None` auth serves all.
    pub(crate) fn decide(auth: Option<&Authenticator>, token: Option<&str>) -> Self {
        let Some(auth) = auth else {
            return Admission::Granted(Principal::anonymous());
        };
        if token.is_none() && !auth.anonymous() {
            return Admission::Pending;
        }
        match auth.authenticate(token) {
            Ok(p) => Admission::Granted(p),
            Err(e) => {
                tracing::debug!(error = %e, "credentials refused");
                Admission::Denied
            }
        }
    }
}

/// The token an upgrade or REST request carries: `Authorization: Bearer`,
/// else `?token=` (percent-decoded).
pub fn request_token(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get(http::header::AUTHORIZATION) {
        if let Some(t) = v.to_str().ok().and_then(|s| {
            s.strip_prefix("Bearer ")
                .or_else(|| s.strip_prefix("bearer "))
        }) {
            return Some(t.trim().to_string());
        }
    }
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .and_then(percent_decode)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(keys: &[(&str, &str)]) -> AuthConfig {
        AuthConfig {
            keys: keys
                .iter()
                .map(|(name, key)| ApiKeyConfig {
                    name: name.to_string(),
                    hash: hash_key(key),
                    entitlements: Entitlements::default(),
                })
                .collect(),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn keys_match_by_hash_and_anonymous_follows_the_setting() {
        let auth = Authenticator::new(&config(&[("alice", "k-alice"), ("bob", "k-bob")]), false)
            .expect("valid");
        assert_eq!(&*auth.authenticate(Some("k-bob")).expect("bob").name, "bob");
        assert_eq!(
            auth.authenticate(Some("k-carol")).map(|_| ()),
            Err(AuthError::UnknownKey)
        );
        assert_eq!(auth.authenticate(None).map(|_| ()), Err(AuthError::Missing));
        let open = Authenticator::new(&config(&[]), true).expect("valid");
        assert_eq!(&*open.authenticate(None).expect("anon").name, "anonymous");
    }

    #[test]
    fn bad_hashes_are_refused_at_start() {
        let mut c = config(&[("x", "k")]);
        c.keys[0].hash = "md5:abcd".into();
        let e = Authenticator::new(&c, false)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("sha256:"), "{e}");
    }

    #[test]
    fn hs256_tokens_verify_and_carry_entitlements() {
        use jsonwebtoken::{EncodingKey, Header};
        let secret = "0123456789abcdef0123";
        let c = AuthConfig {
            jwt: Some(JwtConfig {
                hs256_secret: Some(secret.into()),
                hs256_secret_env: None,
                rs256_public_key_file: None,
                issuer: Some("me".into()),
                audience: None,
                claim: default_claim(),
            }),
            ..AuthConfig::default()
        };
        let auth = Authenticator::new(&c, false).expect("valid");
        let sign = |claims: serde_json::Value, key: &str| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(key.as_bytes()),
            )
            .expect("signs")
        };
        let exp = 4_000_000_000u64;
        let good = sign(
            serde_json::json!({"sub":"ann","iss":"me","exp":exp,"tickwire":{"instruments":["coinbase:*"]}}),
            secret,
        );
        let p = auth.authenticate(Some(&good)).expect("accepted");
        assert_eq!(&*p.name, "jwt:ann");
        assert_eq!(p.entitlements.instruments, vec!["coinbase:*".to_string()]);
        let forged = sign(
            serde_json::json!({"sub":"ann","iss":"me","exp":exp}),
            "another-secret-of-length",
        );
        assert!(matches!(
            auth.authenticate(Some(&forged)),
            Err(AuthError::BadToken(_))
        ));
        let expired = sign(
            serde_json::json!({"sub":"ann","iss":"me","exp":1000}),
            secret,
        );
        assert!(matches!(
            auth.authenticate(Some(&expired)),
            Err(AuthError::BadToken(_))
        ));
        let wrong_iss = sign(
            serde_json::json!({"sub":"ann","iss":"you","exp":exp}),
            secret,
        );
        assert!(matches!(
            auth.authenticate(Some(&wrong_iss)),
            Err(AuthError::BadToken(_))
        ));
    }

    #[test]
    fn connection_permits_count_per_name_and_release() {
        let mut c = config(&[("solo", "k")]);
        c.keys[0].entitlements.max_connections = Some(1);
        let auth = Arc::new(Authenticator::new(&c, false).expect("valid"));
        let p = auth.authenticate(Some("k")).expect("known");
        let first = auth.acquire(p.clone()).expect("first");
        assert!(auth.acquire(p.clone()).is_none(), "second refused");
        drop(first);
        assert!(auth.acquire(p).is_some(), "released");
    }

    #[test]
    fn tokens_come_from_bearer_or_query() {
        let mut h = http::HeaderMap::new();
        assert_eq!(
            request_token(&h, Some("batch=1&token=a%2Bb")),
            Some("a+b".into())
        );
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(request_token(&h, Some("token=q")), Some("xyz".into()));
        assert_eq!(request_token(&http::HeaderMap::new(), None), None);
    }
}
