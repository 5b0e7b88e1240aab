//! The one source of time. Everything that needs "now" — token expiry, session expiry,
//! renewals — asks a [`Clock`], so tests and simulator mode can move time on purpose.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Wall-clock time, for `boxoffice serve`.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClockError {
    /// Renewals and expiries already acted on cannot be undone, so time never runs backwards.
    #[error("the virtual clock only moves forward: {requested} is before {current}")]
    Backwards {
        requested: DateTime<Utc>,
        current: DateTime<Utc>,
    },
}

/// Wall-clock time plus an offset that only grows: simulator mode and tests move it
/// forward with `POST /sim/clock` instead of sleeping.
pub struct VirtualClock {
    offset: Mutex<Duration>,
    wall: fn() -> DateTime<Utc>,
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl VirtualClock {
    pub fn new() -> Self {
        Self {
            offset: Mutex::new(Duration::zero()),
            wall: Utc::now,
        }
    }

    fn offset(&self) -> std::sync::MutexGuard<'_, Duration> {
        // The guarded value is a plain Duration, always valid, so a poisoned lock is harmless.
        self.offset
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn advance(&self, by: Duration) -> Result<DateTime<Utc>, ClockError> {
        let mut offset = self.offset();
        let current = (self.wall)() + *offset;
        if by < Duration::zero() {
            return Err(ClockError::Backwards {
                requested: current + by,
                current,
            });
        }
        *offset += by;
        Ok(current + by)
    }

    pub fn set(&self, instant: DateTime<Utc>) -> Result<DateTime<Utc>, ClockError> {
        let mut offset = self.offset();
        let wall = (self.wall)();
        let current = wall + *offset;
        if instant < current {
            return Err(ClockError::Backwards {
                requested: instant,
                current,
            });
        }
        *offset = instant - wall;
        Ok(instant)
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        (self.wall)() + *self.offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_forward_by_the_duration() {
        let clock = VirtualClock::new();
        let before = clock.now();
        clock.advance(Duration::days(31)).unwrap();
        let moved = clock.now() - before;
        assert!(moved >= Duration::days(31) && moved < Duration::days(31) + Duration::seconds(5));
    }

    #[test]
    fn time_never_runs_backwards() {
        let clock = VirtualClock::new();
        assert!(matches!(
            clock.advance(Duration::seconds(-1)),
            Err(ClockError::Backwards { .. })
        ));
        let past = clock.now() - Duration::hours(1);
        assert!(matches!(clock.set(past), Err(ClockError::Backwards { .. })));
        let future = clock.now() + Duration::days(400);
        assert_eq!(clock.set(future).unwrap(), future);
        assert!(clock.now() >= future);
    }
}
