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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_messages_name_the_kind() {
        // engine/engine.ts maps these numbers (ENGINE_ERRORS).
        assert_eq!(Error::Io("x".into()).code(), 1);
        assert_eq!(Error::Corrupt("x".into()).code(), 2);
        assert_eq!(Error::Foreign("x".into()).code(), 3);
        assert_eq!(Error::Poisoned.code(), 4);
        assert_eq!(Error::Invalid("x".into()).code(), 5);
        assert_eq!(Error::Corrupt("page 3".into()).to_string(), "the database file is corrupt: page 3");
        assert!(Error::Poisoned.to_string().contains("refuses writes until it is reopened"));
    }
}
