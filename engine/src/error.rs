//! The library's one error type.

/// What can go wrong in cloture's library code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown fault `{name}`: {why}")]
    BadFault { name: String, why: String },
    #[error("{origin}, line {line}: {why}")]
    BadCatalog { origin: String, line: usize, why: String },
    #[error("{}: not a cloture report: {why}", path.display())]
    BadReport { path: std::path::PathBuf, why: String },
    #[error("the test fails without faults, so there is nothing to explore: {message}{}{}",
        location.as_ref().map(|l| format!(" (at {l})")).unwrap_or_default(),
        report.as_ref().map(|p| format!("; report: {}", p.display())).unwrap_or_default())]
    ReferenceFailed { message: String, location: Option<crate::CallSite>, report: Option<std::path::PathBuf> },
    #[error("no execution `{id}` in {}; known ids include: {known}", report.display())]
    UnknownExecution { id: String, report: std::path::PathBuf, known: String },
    #[error("replay needs a report directory (the report of the exploration to replay from)")]
    NoReportDir,
    /// `index` is the position of the offending report among those given (0-based).
    #[error("cannot merge report {}: {why}", index + 1)]
    CannotMerge { index: usize, why: String },
    /// The report could not be written where asked; it holds the report's terminal summary (the findings
    /// must not be lost) and where a copy of the whole report was written instead, if anywhere.
    #[error("cannot write the report: {why}{}", match fallback {
        Some(dir) => format!("; it was written to {} instead", dir.display()),
        None => "; no copy could be written either".to_string(),
    })]
    ReportNotWritten { why: String, fallback: Option<std::path::PathBuf>, summary: String },
    #[error("cannot {what}: {source}")]
    Io { what: String, source: std::io::Error },
}
