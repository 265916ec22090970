//! Time and id generation, injected so tests are deterministic.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::from_micros;
use crate::domain::micros;

/// Tells the time.
pub trait Clock: Send + Sync + Debug {
    /// Now, in UTC, at microsecond precision (what every store keeps).
    fn now(&self) -> OffsetDateTime;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        from_micros(micros(OffsetDateTime::now_utc()))
    }
}

/// A clock that only moves when told to, for tests.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: OffsetDateTime) -> ManualClock {
        ManualClock {
            micros: AtomicU64::new(micros(start).max(0) as u64),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        self.micros
            .fetch_add(by.as_micros() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        from_micros(self.micros.load(Ordering::SeqCst) as i64)
    }
}

/// Makes ids for new users, rooms, messages and sessions.
pub trait IdGenerator: Send + Sync + Debug {
    /// A new unique id.
    fn new_id(&self) -> Uuid;
}

/// Random (v4) UUIDs.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn new_id(&self) -> Uuid {
        Uuid::new_v4()
    }
}

/// Fills `buf` with bytes from the operating system's secure random source.
pub fn random_bytes(buf: &mut [u8]) {
    // The OS source failing means the machine cannot make secrets at all; nothing sensible
    // can continue, so this is the one place that may stop the process.
    getrandom::fill(buf).expect("the operating system's random source failed");
}
