//! Retries of transient delivery failures: exponential backoff with jitter ("equal jitter":
//! half the exponential delay plus a random share of the other half), capped; permanent failures
//! are never retried.

use std::time::Duration;

/// How a delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying: timeouts, refused connections, HTTP 5xx/408/429, SMTP 4xx.
    Transient(String),
    /// Never retried: HTTP 4xx, SMTP 5xx, a bad address.
    Permanent(String),
}

/// The retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1` after `attempts` failures, given a random
    /// fraction `unit` in [0, 1); `None` when no attempt is left.
    pub fn delay(&self, attempts: u32, unit: f64) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exponent = attempts.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1u32 << exponent).min(self.max);
        let half = full / 2;
        Some(half + half.mul_f64(unit.clamp(0.0, 1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base: Duration::from_secs(1),
        max: Duration::from_secs(10),
    };

    #[test]
    fn delays_grow_exponentially_with_jitter_and_cap() {
        assert_eq!(POLICY.delay(1, 0.0), Some(Duration::from_millis(500)));
        assert_eq!(POLICY.delay(1, 0.999_999).map(|d| d.as_millis()), Some(999));
        assert_eq!(POLICY.delay(2, 0.0), Some(Duration::from_secs(1)));
        assert_eq!(POLICY.delay(3, 0.0), Some(Duration::from_secs(2)));
        assert_eq!(POLICY.delay(4, 0.5), Some(Duration::from_secs(6)));
    }

    #[test]
    fn no_delay_once_attempts_are_used_up() {
        assert_eq!(POLICY.delay(5, 0.3), None);
    }
}
