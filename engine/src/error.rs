//! The library's one error type.

/// What can go wrong in cloture's library code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown fault `{name}`: {why}")]
    BadFault { name: String, why: String },
    #[error("{origin}, line {line}: {why}")]
    BadCatalog { origin: String, line: usize, why: String },
    #[error("cannot {what}: {source}")]
    Io { what: String, source: std::io::Error },
}
