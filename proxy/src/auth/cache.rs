//! A bounded cache of verified tokens, so a client reusing its token for an
//! hour pays for one RSA verification, not one per request.
//!
//! Keyed by the SHA-256 of the token string: the cache never holds a token, and
//! a lookup cannot be steered into a collision. An entry is used only while
//! `now < exp` (the validation leeway is not extended to cached entries) and
//! while the exact key that verified it is still in the current key set, so a
//! key removed from the JWKS revokes its cached tokens at the next refresh.
//! Failures are never cached: they are rejected cheaply before any
//! cryptography where possible, and caching them would let an attacker fill
//! the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_lc_rs::digest::{SHA256, digest};

use super::keys::{KeySet, VerifyingKey};
use crate::identity::Authenticated;

/// Independent locks, so concurrent requests rarely wait on each other.
const SHARDS: usize = 16;

type TokenHash = [u8; 32];

struct Entry {
    caller: Arc<Authenticated>,
    kid: String,
    /// The key that verified the token; compared by identity, so a new key
    /// under the same `kid` does not keep old tokens valid.
    key: Arc<VerifyingKey>,
    exp: u64,
}

/// The verified-token cache. `capacity == 0` disables it.
pub(crate) struct TokenCache {
    shards: Vec<Mutex<HashMap<TokenHash, Entry>>>,
    per_shard: usize,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("shards", &self.shards.len())
            .field("per_shard", &self.per_shard)
            .finish()
    }
}

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> Self {
        let shards = if capacity == 0 {
            0
        } else {
            capacity.min(SHARDS)
        };
        TokenCache {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: if shards == 0 {
                0
            } else {
                capacity.div_ceil(shards)
            },
        }
    }

    /// Whether the cache holds anything at all (capacity above zero).
    pub(crate) fn is_enabled(&self) -> bool {
        !self.shards.is_empty()
    }

    /// The cache key for a token.
    pub(crate) fn hash(token: &[u8]) -> TokenHash {
        let d = digest(&SHA256, token);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    fn shard(&self, hash: &TokenHash) -> Option<MutexGuard<'_, HashMap<TokenHash, Entry>>> {
        if self.shards.is_empty() {
            return None;
        }
        let shard = &self.shards[usize::from(hash[0]) % self.shards.len()];
        // A panic while holding the lock cannot leave an entry half-written
        // (inserts and removes are single calls), so a poisoned map is usable.
        Some(shard.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The cached identity, if the entry is still valid at `now` against the
    /// current key set. A stale entry is removed.
    pub(crate) fn get(
        &self,
        hash: &TokenHash,
        keys: &KeySet,
        now: u64,
    ) -> Option<Arc<Authenticated>> {
        let mut shard = self.shard(hash)?;
        let entry = shard.get(hash)?;
        let key_still_current = keys
            .get(&entry.kid)
            .is_some_and(|current| Arc::ptr_eq(current, &entry.key));
        if now < entry.exp && key_still_current {
            Some(Arc::clone(&entry.caller))
        } else {
            shard.remove(hash);
            None
        }
    }

    /// Remembers a verified token. Only tokens not yet past `exp` are kept.
    pub(crate) fn insert(
        &self,
        hash: TokenHash,
        caller: &Arc<Authenticated>,
        kid: &str,
        key: &Arc<VerifyingKey>,
        now: u64,
    ) {
        let exp = caller.expires_at;
        if now >= exp {
            return;
        }
        let Some(mut shard) = self.shard(&hash) else {
            return;
        };
        if shard.len() >= self.per_shard && !shard.contains_key(&hash) {
            // Full: drop what has expired; if that frees too little, drop
            // arbitrary entries down to 7/8 of the bound, so the O(n) sweep
            // happens at most once per n/8 inserts.
            shard.retain(|_, e| now < e.exp);
            let target = self.per_shard - self.per_shard.div_ceil(8);
            if shard.len() > target {
                let excess = shard.len() - target;
                let victims: Vec<TokenHash> = shard.keys().take(excess).copied().collect();
                for v in victims {
                    shard.remove(&v);
                }
            }
        }
        shard.insert(
            hash,
            Entry {
                caller: Arc::clone(caller),
                kid: kid.to_owned(),
                key: Arc::clone(key),
                exp,
            },
        );
    }

    /// How many entries are held (for tests and metrics).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::Algorithm;

    use super::*;
    use crate::identity::{Identity, PrincipalKind};

    const NOW: u64 = 1_800_000_000;

    fn keys(kids_and_e: &[(&str, &str)], previous: Option<&KeySet>) -> KeySet {
        let n = URL_SAFE_NO_PAD.encode([0xc3u8; 256]);
        let keys: Vec<_> = kids_and_e
            .iter()
            .map(|(kid, e)| serde_json::json!({"kty": "RSA", "kid": kid, "n": n, "e": e}))
            .collect();
        let body = serde_json::json!({ "keys": keys }).to_string();
        KeySet::from_jwks(body.as_bytes(), &[Algorithm::RS256], previous)
            .unwrap()
            .0
    }

    fn identity(exp: u64) -> Arc<Authenticated> {
        Arc::new(Authenticated::new(Identity {
            object_id: "o".into(),
            tenant_id: "t".into(),
            kind: PrincipalKind::User,
            roles: vec![],
            scopes: vec!["s".into()],
            name: None,
            email: None,
            app_id: None,
            guest: false,
            audiences: Vec::new(),
            default_audience: true,
            auth_contexts: Vec::new(),
            handles_claims_challenges: false,
            groups: Vec::new(),
            groups_overage: false,
            expires_at: exp,
        }))
    }

    #[test]
    fn entry_is_served_until_exp_and_no_longer() {
        let cache = TokenCache::new(10);
        let set = keys(&[("k", "AQAB")], None);
        let h = TokenCache::hash(b"t1");
        cache.insert(h, &identity(NOW + 10), "k", set.get("k").unwrap(), NOW);
        assert_eq!(cache.get(&h, &set, NOW + 9), Some(identity(NOW + 10)));
        assert_eq!(cache.get(&h, &set, NOW + 10), None);
        assert_eq!(cache.len(), 0, "a stale entry is dropped");
        assert_eq!(cache.get(&TokenCache::hash(b"t2"), &set, NOW), None);
    }

    #[test]
    fn expired_token_is_never_cached() {
        let cache = TokenCache::new(10);
        let set = keys(&[("k", "AQAB")], None);
        cache.insert(
            TokenCache::hash(b"t"),
            &identity(NOW),
            "k",
            set.get("k").unwrap(),
            NOW,
        );
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn entry_dies_with_its_key() {
        let cache = TokenCache::new(10);
        let set = keys(&[("k", "AQAB"), ("k2", "AQAB")], None);
        let h = TokenCache::hash(b"t");
        cache.insert(h, &identity(NOW + 100), "k", set.get("k").unwrap(), NOW);

        let refreshed = keys(&[("k", "AQAB")], Some(&set));
        assert!(
            cache.get(&h, &refreshed, NOW).is_some(),
            "same key survives a refresh"
        );

        let replaced = keys(&[("k", "AQAC")], Some(&refreshed));
        assert!(
            cache.get(&h, &replaced, NOW).is_none(),
            "new material under the same kid"
        );

        cache.insert(h, &identity(NOW + 100), "k", set.get("k").unwrap(), NOW);
        let removed = keys(&[("k2", "AQAB")], Some(&set));
        assert!(cache.get(&h, &removed, NOW).is_none(), "key left the JWKS");
    }

    #[test]
    fn cache_is_bounded() {
        let cache = TokenCache::new(64);
        let set = keys(&[("k", "AQAB")], None);
        for i in 0..10_000 {
            let h = TokenCache::hash(format!("token-{i}").as_bytes());
            cache.insert(h, &identity(NOW + 100), "k", set.get("k").unwrap(), NOW);
            assert!(cache.len() <= 64);
        }
        assert!(
            cache.len() > 32,
            "eviction keeps most of the capacity in use"
        );
    }

    #[test]
    fn zero_capacity_disables_the_cache() {
        let cache = TokenCache::new(0);
        let set = keys(&[("k", "AQAB")], None);
        let h = TokenCache::hash(b"t");
        cache.insert(h, &identity(NOW + 100), "k", set.get("k").unwrap(), NOW);
        assert_eq!(cache.get(&h, &set, NOW), None);
    }
}
