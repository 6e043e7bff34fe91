//! The crate's single error type: every failure names the input, file or
//! command line that caused it, so a caller can print it as is.

use std::path::PathBuf;

/// Everything that can go wrong in `cloture-coverage`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An LLVM tool could not be found anywhere we looked.
    #[error(
        "{tool} not found (tried {tried}); install it with `rustup component add llvm-tools` \
         or Debian's `llvm-22` package, or point {env} at it"
    )]
    ToolNotFound {
        /// `llvm-profdata` or `llvm-cov`.
        tool: &'static str,
        /// Environment variable that overrides the lookup.
        env: &'static str,
        /// Human-readable list of the places that were tried.
        tried: String,
    },

    /// A tool could not be started at all.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The full command line.
        command: String,
        /// Why the operating system refused.
        #[source]
        source: std::io::Error,
    },

    /// A tool ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    ToolFailed {
        /// The full command line.
        command: String,
        /// The exit status, as printed by the standard library.
        status: String,
        /// The tool's standard error, trimmed.
        stderr: String,
    },

    /// A tool succeeded but printed something we cannot use.
    #[error("unexpected output from `{command}`: {reason}")]
    BadToolOutput {
        /// The full command line.
        command: String,
        /// What was wrong with the output.
        reason: String,
    },

    /// `llvm-cov export` printed something that is not a coverage export.
    #[error("llvm-cov export from `{command}` is not a coverage export: {reason}")]
    NotAnExport {
        /// The full command line (empty when parsing text given directly).
        command: String,
        /// What was wrong with the JSON.
        reason: String,
    },

    /// Reading or writing a file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What we were doing, e.g. `write profraw`.
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// `write_profraw` was called but there is no profile directory.
    #[error(
        "no profile directory: the coverage runtime is not active or LLVM_PROFILE_FILE \
         ({value}) has no usable directory"
    )]
    NoProfileDir {
        /// The value of `LLVM_PROFILE_FILE`, or `unset`.
        value: String,
    },

    /// A binary has no coverage mapping (not built with `-C instrument-coverage`).
    #[error("{} has no coverage mapping: {reason}", path.display())]
    NoMapping {
        /// The binary.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },

    /// A binary's coverage mapping cannot be read.
    #[error("cannot read the coverage mapping of {}: {reason}", path.display())]
    BadMapping {
        /// The binary.
        path: PathBuf,
        /// What is malformed or unsupported.
        reason: String,
    },

    /// A raw profile snapshot cannot be read.
    #[error("cannot read a raw profile snapshot: {reason}")]
    BadProfile {
        /// What is malformed or unsupported.
        reason: String,
    },

    /// A caller-supplied argument was unusable.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidInput {
        /// Which argument, e.g. `profraw tag`.
        what: &'static str,
        /// The offending value.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
}
