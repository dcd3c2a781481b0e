//! The engine's errors. Each kind has a stable code the TypeScript glue maps
//! to a `StoreError` with the message.

use std::fmt;

/// What went wrong, and the message to show.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The host's storage call failed (its message is kept by the host).
    Io(String),
    /// A page or commit slot does not verify: the file is damaged.
    Corrupt(String),
    /// The file is not a database of this engine.
    Foreign(String),
    /// An earlier write failed; writes are refused until the file is reopened.
    Poisoned,
    /// A call the engine cannot honour (too large, wrong state).
    Invalid(String),
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The code the glue sees (negated in return values).
    pub fn code(&self) -> i32 {
        match self {
            Error::Io(_) => 1,
            Error::Corrupt(_) => 2,
            Error::Foreign(_) => 3,
            Error::Poisoned => 4,
            Error::Invalid(_) => 5,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(m) => write!(f, "{}", m),
            Error::Corrupt(m) => write!(f, "the database file is corrupt: {}", m),
            Error::Foreign(m) => write!(f, "not a valkeyrie database file: {}", m),
            Error::Poisoned => write!(
                f,
                "an earlier write failed, so the database refuses writes until it is reopened"
            ),
            Error::Invalid(m) => write!(f, "{}", m),
        }
    }
}

/// Shorthand for a corruption error.
pub fn corrupt<T>(message: String) -> Result<T> {
    Err(Error::Corrupt(message))
}
