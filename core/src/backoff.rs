//! Capped exponential backoff with jitter: the one retry pause used everywhere.

use std::time::Duration;

/// Pauses between retries: each twice the one before, from `first` up to `cap`, each drawn at
/// random from its upper half ("equal jitter"), so that many retrying workers spread out
/// instead of retrying in step.
///
/// ```
/// use recount::Backoff;
/// use std::time::Duration;
///
/// let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
/// let pauses: Vec<Duration> = (0..5).map(|_| backoff.next_pause()).collect();
/// assert!(pauses[0] >= Duration::from_millis(5) && pauses[0] <= Duration::from_millis(10));
/// assert!(pauses[4] >= Duration::from_millis(25) && pauses[4] <= Duration::from_millis(50));
/// backoff.reset();
/// assert!(backoff.next_pause() <= Duration::from_millis(10));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// Backoff from `first`, doubling, never above `cap`.
    pub fn new(first: Duration, cap: Duration) -> Self {
        Backoff {
            first,
            cap: cap.max(first),
            attempt: 0,
        }
    }

    /// The next pause.
    pub fn next_pause(&mut self) -> Duration {
        let full = self
            .first
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = full / 2;
        half + half.mul_f64(unit_random())
    }

    /// Pauses taken since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts again from `first` (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A random number in `[0, 1)`, from the operating system's generator (through UUID v4,
/// whose low 53 bits are all random: its fixed version and variant bits sit higher).
fn unit_random() -> f64 {
    const BITS: u64 = (1 << 53) - 1;
    ((uuid::Uuid::new_v4().as_u128() as u64) & BITS) as f64 / (BITS + 1) as f64
}
