//! The harness's error type: a message that says what failed and why.

use std::fmt;

/// A harness failure (building, starting, talking to or judging an emulator run).
///
/// It is a plain message: every caller either shows it to a person or panics with it.
#[derive(Clone, PartialEq, Eq)]
pub struct Error(String);

/// Shows the message as is (not escaped), so `expect` on a `Result<_, Error>` in a test
/// prints multi-line build output readably.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error {
    /// An error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds "what we were doing" to a lower-level error.
pub trait Context<T> {
    /// Turns the error into an [`Error`] reading `what: cause`.
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error(format!("{what}: {e}")))
    }
}
