//! A thread's word that it is alive: a beat every turn of its loop, and the reason it
//! stopped if it died. `/health` reads the beats (a shard that has not turned for 2 s is
//! stalled); the signalling thread reads the deaths (a dead shard stops the server with a
//! failure, so a supervisor restarts it).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// See the module docs.
#[derive(Debug)]
pub struct Heartbeat {
    name: String,
    epoch: Instant,
    /// Milliseconds from `epoch` to the last beat.
    last_ms: AtomicU64,
    death: Mutex<Option<String>>,
}

impl Heartbeat {
    /// A heartbeat for the thread called `name`, beating now.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            death: Mutex::new(None),
        }
    }

    /// The thread's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The thread is alive now. One relaxed store: cheap enough for every loop turn.
    pub fn beat(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long since the last beat, at `now`.
    pub fn silence(&self, now: Instant) -> Duration {
        let last = self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }

    /// The thread stopped for good, and why.
    pub fn die(&self, why: String) {
        *self.death.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }

    /// Why the thread died, if it did.
    pub fn death(&self) -> Option<String> {
        self.death.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The text of a panic's payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_grows_until_the_next_beat_and_a_death_is_kept() {
        let h = Heartbeat::new("shard-0");
        let later = Instant::now() + Duration::from_secs(3);
        assert!(h.silence(later) >= Duration::from_secs(2));
        h.beat();
        assert!(h.silence(Instant::now()) < Duration::from_secs(1));
        assert_eq!(h.death(), None);
        h.die("panicked: boom".into());
        assert_eq!(h.death().as_deref(), Some("panicked: boom"));
        assert_eq!(h.name(), "shard-0");
    }
}
