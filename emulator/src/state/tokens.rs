//! Endpoint auth tokens: minted by the control plane, checked by the per-VM endpoint.
//!
//! A token looks like the service's compact JWE (five base64url segments, the second empty,
//! header `{"kid":…,"alg":"dir","enc":"A256GCM"}`) but is just random bytes remembered here.
//! Token values are secrets: they MUST NOT appear in logs; use [`fingerprint`] instead.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;

/// Which ports an app token opens (reference §A.5 PortSpecification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PortGrant {
    /// `{"allPorts":{}}`.
    All,
    /// Inclusive port ranges (a single `port` is a range of one).
    Ranges(Vec<(u16, u16)>),
}

impl PortGrant {
    /// True when `port` is granted.
    pub(crate) fn allows(&self, port: u16) -> bool {
        match self {
            PortGrant::All => true,
            PortGrant::Ranges(r) => r.iter().any(|(lo, hi)| (*lo..=*hi).contains(&port)),
        }
    }
}

/// What a token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// CreateMicrovmShellAuthToken: the shell WebSocket only.
    Shell,
    /// CreateMicrovmAuthToken: HTTP and WebSocket to the granted ports.
    App(PortGrant),
}

/// A minted token's meaning.
#[derive(Debug, Clone)]
pub(crate) struct TokenGrant {
    /// The VM it opens.
    pub vm_id: String,
    /// Shell or app.
    pub kind: TokenKind,
    /// When it stops opening new connections.
    pub expires_at: Instant,
}

impl TokenGrant {
    /// True once the expiry passed.
    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at
    }
}

/// How long an expired token is still recognised (so it is refused as expired, not as unknown).
const KEEP_EXPIRED: Duration = Duration::from_secs(3600);

/// All tokens minted so far.
#[derive(Debug, Default)]
pub(crate) struct TokenStore {
    grants: Mutex<HashMap<String, TokenGrant>>,
}

impl TokenStore {
    /// Mints a new random token for `vm_id` valid for `ttl`.
    pub(crate) fn mint(&self, vm_id: &str, kind: TokenKind, ttl: Duration) -> String {
        let token = random_jwe();
        let now = Instant::now();
        let grant = TokenGrant { vm_id: vm_id.to_owned(), kind, expires_at: now + ttl };
        let mut grants = self.lock();
        grants.retain(|_, g| g.expires_at + KEEP_EXPIRED > now);
        grants.insert(token.clone(), grant);
        tracing::debug!(vm = vm_id, token = %fingerprint(&token), "minted endpoint token");
        token
    }

    /// The grant of `token`, if this emulator minted it.
    pub(crate) fn lookup(&self, token: &str) -> Option<TokenGrant> {
        self.lock().get(token).cloned()
    }

    /// Every token still remembered (minted tokens stay until an hour past expiry).
    pub(crate) fn all(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TokenGrant>> {
        self.grants.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A short, non-reversible tag of a token for log lines (8 hex digits of a hash).
pub(crate) fn fingerprint(token: &str) -> String {
    let mut h = DefaultHasher::new();
    token.hash(&mut h);
    format!("{:08x}", h.finish() >> 32)
}

/// True when `token` has the shape of a compact JWE with `alg: dir`, `enc: A256GCM`.
pub(crate) fn looks_like_jwe(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, key, iv, ciphertext, tag] = parts.as_slice() else { return false };
    let all_b64 = [header, iv, ciphertext, tag].iter().all(|p| !p.is_empty() && URL_SAFE_NO_PAD.decode(p).is_ok());
    if !key.is_empty() || !all_b64 {
        return false;
    }
    let Ok(raw) = URL_SAFE_NO_PAD.decode(header) else { return false };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&raw) else { return false };
    value["alg"] == "dir" && value["enc"] == "A256GCM"
}

/// A random token shaped like the service's (about 880 characters).
fn random_jwe() -> String {
    let header = format!(r#"{{"kid":"{}","alg":"dir","enc":"A256GCM"}}"#, uuid::Uuid::new_v4());
    let mut rng = rand::rng();
    let mut segment = |len: usize| {
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    };
    let (iv, ciphertext, tag) = (segment(12), segment(560), segment(16));
    format!("{}..{iv}.{ciphertext}.{tag}", URL_SAFE_NO_PAD.encode(header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_look_like_the_service_ones() {
        let store = TokenStore::default();
        let t = store.mint("microvm-1", TokenKind::Shell, Duration::from_secs(60));
        assert!(looks_like_jwe(&t), "{}", t.len());
        assert_eq!(t.split('.').count(), 5);
        assert!((800..1000).contains(&t.len()));
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        assert_eq!(store.lookup(&t).map(|g| g.vm_id), Some("microvm-1".into()));
        assert!(!looks_like_jwe("not-a-token"));
        let recorded = "eyJraWQiOiI5NjUwMWMzMy04YjdiLTQ2NDItOWIxZC02YzQ4ZTVmODkwODciLCJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..t1ZayTu28gDGqeR9.p7NmpM6o.-6oZGvi_hJT7UOo1jls7qw";
        assert!(looks_like_jwe(recorded));
    }

    #[test]
    fn port_grants() {
        assert!(PortGrant::All.allows(1));
        let g = PortGrant::Ranges(vec![(8080, 8080), (9000, 9010)]);
        assert!(g.allows(8080) && g.allows(9005) && !g.allows(22));
    }
}
