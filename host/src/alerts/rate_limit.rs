//! A token bucket: at most `notifications` per `per`, which is also the burst.

use std::time::{Duration, Instant};

/// The bucket of one alert sink.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    tokens: f64,
    /// Tokens added per second.
    refill: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `notifications` refilled over `per`.
    pub fn new(notifications: u32, per: Duration, now: Instant) -> Self {
        let capacity = f64::from(notifications.max(1));
        TokenBucket {
            capacity,
            tokens: capacity,
            refill: capacity / per.as_secs_f64().max(1e-9),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill).min(self.capacity);
        self.last = now;
    }

    /// Takes a token if one is there.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token is there.
    pub fn next_token(&mut self, now: Instant) -> Instant {
        self.refill(now);
        let missing = (1.0 - self.tokens).max(0.0);
        now + Duration::from_secs_f64(missing / self.refill)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_one_per_refill() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2, Duration::from_secs(10), start);
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start));
        let next = bucket.next_token(start);
        assert_eq!(next - start, Duration::from_secs(5));
        assert!(!bucket.try_take(start + Duration::from_secs(4)));
        assert!(bucket.try_take(start + Duration::from_secs(5)));
        // Never more than the capacity, however long it waited.
        let later = start + Duration::from_secs(3600);
        assert!(bucket.try_take(later));
        assert!(bucket.try_take(later));
        assert!(!bucket.try_take(later));
    }
}
