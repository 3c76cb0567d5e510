//! Per-object retry delays: jittered exponential backoff keyed by UID, reset
//! when the object reconciles successfully.
//!
//! A flat retry either hammers a throttled cloud API or stalls recovery; a
//! per-object sequence lets one broken Service back off to minutes while the
//! others keep their normal pace.

use std::{collections::HashMap, time::Duration};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use parking_lot::Mutex;

/// Backoff settings.
#[derive(Clone, Copy, Debug)]
pub struct BackoffConfig {
    /// First delay.
    pub min: Duration,
    /// Ceiling.
    pub max: Duration,
    /// Add random jitter (off only in tests that check exact growth).
    pub jitter: bool,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            min: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: true,
        }
    }
}

/// Retry delays per object UID.
#[derive(Debug)]
pub struct Backoffs {
    config: BackoffConfig,
    per_uid: Mutex<HashMap<String, ExponentialBackoff>>,
}

impl Backoffs {
    /// An empty table.
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            per_uid: Mutex::new(HashMap::new()),
        }
    }

    fn builder(&self) -> ExponentialBuilder {
        let b = ExponentialBuilder::default()
            .with_min_delay(self.config.min)
            .with_max_delay(self.config.max)
            .with_factor(2.0)
            .without_max_times();
        if self.config.jitter {
            b.with_jitter()
        } else {
            b
        }
    }

    /// The next delay for `uid`, growing on every call until [`Backoffs::reset`].
    pub fn next(&self, uid: &str) -> Duration {
        let mut map = self.per_uid.lock();
        let seq = map
            .entry(uid.to_string())
            .or_insert_with(|| self.builder().build());
        // `without_max_times` makes the sequence infinite; fall back to the
        // ceiling anyway rather than trusting that.
        seq.next().unwrap_or(self.config.max)
    }

    /// Forget `uid`'s failures (after a success or when the object is gone).
    pub fn reset(&self, uid: &str) {
        self.per_uid.lock().remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> Backoffs {
        Backoffs::new(BackoffConfig {
            min: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: false,
        })
    }

    #[test]
    fn grows_to_the_ceiling_and_resets() {
        let b = fixed();
        let seq: Vec<u64> = (0..12).map(|_| b.next("u1").as_secs()).collect();
        assert_eq!(seq, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        // Another object has its own sequence.
        assert_eq!(b.next("u2"), Duration::from_secs(1));
        b.reset("u1");
        assert_eq!(b.next("u1"), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let b = Backoffs::new(BackoffConfig::default());
        for _ in 0..50 {
            let d = b.next("u");
            assert!(d >= Duration::from_secs(1), "{d:?}");
            // Jitter adds at most one more min-delay-sized share on top of the ceiling.
            assert!(d <= Duration::from_secs(600), "{d:?}");
        }
    }
}
