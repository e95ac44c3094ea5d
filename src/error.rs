//! One error type for the whole program: what went wrong, what was being done, and the exit
//! code it maps to (the table is in README.md).

use std::fmt;
use std::io;
use std::time::Duration;

/// The result type used throughout the program.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can make a command fail.
#[derive(Debug)]
pub enum Error {
    /// The command line or an environment variable is wrong (exit 2).
    Usage(String),
    /// An archive, manifest, config or reference is malformed (exit 3).
    BadInput(String),
    /// Authentication failed or permission was denied (exit 4).
    Denied(String),
    /// A network or registry failure worth trying again: a connection lost or refused, a
    /// timeout, 408, 429 or 5xx (exit 5 once retries run out).
    Network(String),
    /// The registry refused in a way retrying will not change, or a TLS handshake failed
    /// for another reason than its certificate (exit 5).
    Registry(String),
    /// The registry speaks TLS but its certificate is not trusted (exit 5): neither trying
    /// again nor falling back to plain HTTP can pass.
    Tls(String),
    /// The image is in neither the cache nor the registry, or the file named is not there (exit 6).
    NotFound(String),
    /// A registry answered a request with a status it was not asked for; the exit code and
    /// whether it is worth trying again follow from the status and the registry's codes.
    Refused(Box<Refusal>),
    /// An operating-system error while doing `what` (exit 1).
    Io { what: String, source: io::Error },
    /// Another error, with what was being done when it happened.
    Context { context: String, source: Box<Error> },
}

/// What a registry answered instead of what was asked for.
#[derive(Debug)]
pub struct Refusal {
    /// The request, `METHOD url` (without the query).
    pub request: String,
    pub status: u16,
    /// The codes of its JSON error body (`BLOB_UPLOAD_UNKNOWN`), if it had one.
    pub codes: Vec<String>,
    /// What it said, ready to append: `: CODE: message; …`, or the first line of another body.
    pub detail: String,
    /// The pause its `Retry-After` asked for, if any (as asked: the retry policy caps it).
    pub retry_after: Option<Duration>,
    /// Whether trying again may pass, as the retry policy (`crate::retry::worth_retrying`)
    /// judged the status, the codes and the pause when the answer was read.
    pub retryable: bool,
    /// What to make of it, ready to append: what its rate-limit headers said (`; rate limit:
    /// …`), whose credentials a 401 refused or where none were found, or nothing.
    pub advice: String,
}

impl Refusal {
    fn exit_code(&self) -> u8 {
        match self.status {
            401 | 403 => 4,
            404 => 6,
            400 if !self.retryable => 3,
            _ => 5,
        }
    }
}

impl Error {
    /// The registry's answer, if this error is (or wraps) a refusal.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Error::Refused(refusal) => Some(refusal),
            Error::Context { source, .. } => source.refusal(),
            _ => None,
        }
    }

    /// The HTTP status a registry refused with, if it did.
    pub fn status(&self) -> Option<u16> {
        self.refusal().map(|refusal| refusal.status)
    }

    /// An operating-system error while doing `what`.
    pub fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// Turns an `io::Error` back into the `Error` it carries, if a reader wrapped one (see
    /// [`Error::into_io`]); otherwise it becomes an `Io` error while doing `what`.
    pub fn from_io(what: impl Into<String>, source: io::Error) -> Error {
        if !source.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            return Error::io(what, source);
        }
        match source.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(error)) => *error,
            _ => Error::io(what, io::Error::other("an error was lost on the way")),
        }
    }

    /// Whether trying again may succeed (see [`Error::Network`]).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Network(_) => true,
            Error::Refused(refusal) => refusal.retryable,
            Error::Context { source, .. } => source.is_retryable(),
            _ => false,
        }
    }

    /// Wraps this error in an `io::Error`, for readers that must speak `io::Read`.
    pub fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::BadInput(_) => 3,
            Error::Denied(_) => 4,
            Error::Network(_) | Error::Registry(_) | Error::Tls(_) => 5,
            Error::NotFound(_) => 6,
            Error::Refused(refusal) => refusal.exit_code(),
            Error::Io { .. } => 1,
            Error::Context { source, .. } => source.exit_code(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message)
            | Error::BadInput(message)
            | Error::Denied(message)
            | Error::Network(message)
            | Error::Registry(message)
            | Error::Tls(message)
            | Error::NotFound(message) => f.write_str(message),
            Error::Refused(refusal) => write!(
                f,
                "{}: HTTP {}{}{}",
                refusal.request, refusal.status, refusal.detail, refusal.advice
            ),
            Error::Io { what, source } => write!(f, "{what}: {source}"),
            Error::Context { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for Error {}

/// Adds what was being done to an error, keeping its exit code.
pub trait Context<T> {
    /// Prefixes the error with `context()`, computed only on failure.
    fn context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> Context<T> for Result<T> {
    fn context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|source| Error::Context {
            context: context().to_string(),
            source: Box::new(source),
        })
    }
}

impl<T> Context<T> for Result<T, io::Error> {
    fn context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|source| Error::from_io(context().to_string(), source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_exit_code_and_reads_outside_in() {
        let error: Result<()> = Err(Error::BadInput("unexpected end of archive".into()));
        let error = error.context(|| "reading image.tar").unwrap_err();
        assert_eq!(error.exit_code(), 3);
        assert_eq!(
            error.to_string(),
            "reading image.tar: unexpected end of archive"
        );
    }

    #[test]
    fn an_error_survives_a_trip_through_io_error() {
        let io = Error::NotFound("no such image".into()).into_io();
        let back = Error::from_io("copying", io);
        assert_eq!(back.exit_code(), 6);
        assert_eq!(back.to_string(), "no such image");
    }

    #[test]
    fn plain_io_errors_exit_1_with_what_was_being_done() {
        let error = Error::from_io("writing x", io::Error::other("disk full"));
        assert_eq!(error.exit_code(), 1);
        assert_eq!(error.to_string(), "writing x: disk full");
    }
}
