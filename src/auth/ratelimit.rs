//! Failed-login limits per account and per client address (sliding window,
//! in memory, per process).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts failures per key inside a sliding window.
pub struct FailureLimiter {
    window: Duration,
    entries: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailureLimiter {
    /// A limiter with the given window.
    pub fn new(window: Duration) -> Self {
        FailureLimiter {
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when `key` already has `max` failures in the window.
    pub fn blocked(&self, key: &str, max: u32) -> Option<Duration> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let queue = entries.get_mut(key)?;
        while queue
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            queue.pop_front();
        }
        if queue.len() >= max as usize {
            let oldest = *queue.front()?;
            Some(self.window.saturating_sub(now.duration_since(oldest)))
        } else {
            None
        }
    }

    /// Atomically checks every `(key, max)` and, if none is blocked, counts
    /// this attempt as a failure against each (so concurrent attempts cannot
    /// all slip past the check). `Err(wait)` when one is blocked. Call
    /// [`FailureLimiter::forgive`] or [`FailureLimiter::clear`] if it succeeds.
    pub fn reserve(&self, keys: &[(&str, u32)]) -> Result<(), Duration> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for (key, max) in keys {
            if let Some(queue) = entries.get_mut(*key) {
                while queue
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    queue.pop_front();
                }
                if queue.len() >= *max as usize {
                    if let Some(oldest) = queue.front() {
                        let w = self.window.saturating_sub(now.duration_since(*oldest));
                        wait = Some(wait.map_or(w, |v: Duration| v.max(w)));
                    }
                }
            }
        }
        if let Some(w) = wait {
            return Err(w);
        }
        if entries.len() > 100_000 {
            entries.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        for (key, _) in keys {
            entries.entry((*key).to_owned()).or_default().push_back(now);
        }
        Ok(())
    }

    /// Takes back the most recent attempt counted for `key`.
    pub fn forgive(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = entries.get_mut(key) {
            q.pop_back();
        }
    }

    /// Records a failure for `key`.
    pub fn record(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > 100_000 {
            // Bound memory under a flood of distinct keys: drop stale ones.
            let now = Instant::now();
            entries.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        entries
            .entry(key.to_owned())
            .or_default()
            .push_back(Instant::now());
    }

    /// Forgets `key` (after a successful login).
    pub fn clear(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_and_clears() {
        let l = FailureLimiter::new(Duration::from_secs(60));
        for _ in 0..3 {
            assert!(l.blocked("a", 3).is_none());
            l.record("a");
        }
        let wait = l.blocked("a", 3).unwrap();
        assert!(wait > Duration::from_secs(58) && wait <= Duration::from_secs(60));
        assert!(l.blocked("b", 3).is_none());
        l.clear("a");
        assert!(l.blocked("a", 3).is_none());
    }

    #[test]
    fn reserve_counts_attempts_up_front() {
        let l = FailureLimiter::new(Duration::from_secs(60));
        let keys = [("acct", 2), ("addr", 3)];
        assert!(l.reserve(&keys).is_ok());
        assert!(l.reserve(&keys).is_ok());
        assert!(l.reserve(&keys).is_err(), "the account allows two attempts");
        l.forgive("acct");
        assert!(l.reserve(&keys).is_ok());
        assert!(
            l.reserve(&[("other", 5), ("addr", 3)]).is_err(),
            "the address has had three"
        );
    }

    #[test]
    fn window_expires() {
        let l = FailureLimiter::new(Duration::from_millis(20));
        l.record("a");
        assert!(l.blocked("a", 1).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(l.blocked("a", 1).is_none());
    }
}
