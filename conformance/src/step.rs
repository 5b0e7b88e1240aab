//! How a scenario stops early: it failed (with what was wrong and the response that showed
//! it), or it cannot run against this target (with why). Every helper in this crate returns
//! a [`Step`], so a scenario reads as a straight line of `?`s.

use std::fmt;

/// Why a scenario did not run to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abort {
    /// The target broke the contract; the message says how, with the evidence.
    Fail(String),
    /// The scenario needs a surface this target does not offer (a simulator-only control,
    /// a fixture the configuration does not name); the message says which.
    Skip(String),
}

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Abort::Fail(message) => write!(f, "failed: {message}"),
            Abort::Skip(reason) => write!(f, "skipped: {reason}"),
        }
    }
}

/// The result of one step of a scenario.
pub type Step<T = ()> = Result<T, Abort>;

/// A failed step, for `return Err(fail(...))` and `ok_or_else(|| fail(...))`.
pub fn fail(message: impl Into<String>) -> Abort {
    Abort::Fail(message.into())
}

/// A step that cannot run here.
pub fn skip(reason: impl Into<String>) -> Abort {
    Abort::Skip(reason.into())
}

/// Fails the scenario unless the condition holds: `ensure!(cond, "format", args...)`.
#[macro_export]
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err($crate::step::Abort::Fail(format!($($message)+)));
        }
    };
}

/// Fails the scenario unless what the target answered equals what the contract says,
/// showing both and the context: `ensure_eq!(actual, expected, "format", args...)`.
#[macro_export]
macro_rules! ensure_eq {
    ($actual:expr, $expected:expr, $($message:tt)+) => {{
        let (actual, expected) = (&$actual, &$expected);
        if actual != expected {
            return Err($crate::step::Abort::Fail(format!(
                "{}: expected {:?}, got {:?}",
                format!($($message)+),
                expected,
                actual
            )));
        }
    }};
}
