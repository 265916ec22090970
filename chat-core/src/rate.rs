//! Rate limits: token buckets per key, in this node's memory (limits hold per node).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use time::OffsetDateTime;

/// A rate: `burst` tokens at most, refilled at `per_sec` tokens a second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Tokens a full bucket holds: how many actions may come at once.
    pub burst: u32,
    /// Tokens added back each second.
    pub per_sec: f64,
}

impl Rate {
    /// `n` actions a minute, all of them at once at most.
    pub fn per_minute(n: u32) -> Rate {
        Rate {
            burst: n,
            per_sec: f64::from(n) / 60.0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: OffsetDateTime,
}

/// Token buckets keyed by `K`. The map is bounded: past [`Limiter::MAX_KEYS`] keys, buckets
/// that have refilled (and so limit nothing) are dropped, and all of them when that frees too
/// little.
#[derive(Debug)]
pub struct Limiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// The most keys tracked before full buckets are forgotten.
    pub const MAX_KEYS: usize = 100_000;

    /// A limiter at `rate`.
    pub fn new(rate: Rate) -> Limiter<K> {
        Limiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`, or says how many seconds until one is there.
    pub fn take(&self, key: &K, now: OffsetDateTime) -> Result<(), u64> {
        self.with(key, now, |tokens| {
            if *tokens >= 1.0 {
                *tokens -= 1.0;
                true
            } else {
                false
            }
        })
    }

    /// Whether `key` has a token, without taking it; `Err` says the seconds until it has.
    pub fn check(&self, key: &K, now: OffsetDateTime) -> Result<(), u64> {
        self.with(key, now, |tokens| *tokens >= 1.0)
    }

    /// Takes a token for `key` if there is one (an action that already happened counts, and
    /// an empty bucket stays empty).
    pub fn spend(&self, key: &K, now: OffsetDateTime) {
        let _ = self.take(key, now);
    }

    fn with(
        &self,
        key: &K,
        now: OffsetDateTime,
        act: impl FnOnce(&mut f64) -> bool,
    ) -> Result<(), u64> {
        let Rate { burst, per_sec } = self.rate;
        let burst = f64::from(burst);
        // A poisoned lock still holds whole buckets: each change below is one assignment.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= Self::MAX_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, b| refilled(b, now, per_sec, burst) < burst);
            // Still crowded (many keys limited at once, as in an attack from many addresses):
            // start over rather than sweep again on every new key. Memory stays bounded; the
            // limits are lenient for a moment.
            if buckets.len() > Self::MAX_KEYS / 2 {
                tracing::warn!(
                    keys = buckets.len(),
                    "rate limiter full; forgetting its buckets"
                );
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens = refilled(bucket, now, per_sec, burst);
        bucket.at = now;
        if act(&mut bucket.tokens) {
            Ok(())
        } else if per_sec > 0.0 {
            Err(((1.0 - bucket.tokens) / per_sec).ceil().max(1.0) as u64)
        } else {
            Err(u64::MAX)
        }
    }
}

fn refilled(bucket: &Bucket, now: OffsetDateTime, per_sec: f64, burst: f64) -> f64 {
    let elapsed = (now - bucket.at).as_seconds_f64().max(0.0);
    (bucket.tokens + elapsed * per_sec).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: f64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds_f64(secs)
    }

    #[test]
    fn a_burst_then_the_rate() {
        let limiter = Limiter::new(Rate {
            burst: 3,
            per_sec: 1.0,
        });
        for _ in 0..3 {
            assert_eq!(limiter.take(&"u", at(0.0)), Ok(()));
        }
        assert_eq!(limiter.take(&"u", at(0.0)), Err(1));
        assert_eq!(limiter.take(&"other", at(0.0)), Ok(()), "keys are separate");
        assert_eq!(limiter.take(&"u", at(1.0)), Ok(()));
        assert_eq!(limiter.take(&"u", at(1.5)), Err(1));
        assert_eq!(limiter.take(&"u", at(10.0)), Ok(()));
    }

    #[test]
    fn the_keys_kept_stay_bounded() {
        let limiter = Limiter::new(Rate::per_minute(10));
        for key in 0..=Limiter::<u32>::MAX_KEYS as u32 {
            limiter.spend(&key, at(0.0));
        }
        let kept = limiter.buckets.lock().unwrap().len();
        assert!(kept <= Limiter::<u32>::MAX_KEYS, "{kept}");
    }

    #[test]
    fn checking_takes_nothing_and_spending_counts_what_happened() {
        let limiter = Limiter::new(Rate::per_minute(2));
        assert_eq!(limiter.check(&1, at(0.0)), Ok(()));
        limiter.spend(&1, at(0.0));
        limiter.spend(&1, at(0.0));
        assert_eq!(limiter.check(&1, at(0.0)), Err(30));
        assert_eq!(limiter.check(&1, at(30.0)), Ok(()));
    }
}
