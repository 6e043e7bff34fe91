//! LLVM source-based coverage for cloture, knowing nothing about HTTP:
//! runtime hooks to reset and snapshot counters in-process, the tools to
//! turn snapshots into per-line coverage, and pure logic on top of it
//! (line rule, deltas, minimal covers, guarded lines of a call site).
//!
//! Map of modules:
//! - [`runtime`]: `__llvm_profile_*` hooks under `cfg(coverage)`, no-ops otherwise.
//! - [`process`]: the one place spawning `llvm-profdata` / `llvm-cov`.
//! - [`export`]: serde model of `llvm-cov export` JSON.
//! - [`lines`]: LLVM's line rule over segments; [`LineCoverage`].
//! - [`delta`]: before/after per-file deltas and greedy minimal covers.
//! - [`guard`]: function spans and the lines a call site guards.
//! - [`cache`]: [`Processor`], snapshot bytes → [`LineCoverage`], memoised.
//! - [`error`]: the crate's [`Error`].

pub mod cache;
pub mod delta;
pub mod error;
pub mod export;
pub mod guard;
pub mod lines;
pub mod process;
pub mod runtime;

pub use cache::Processor;
pub use delta::{delta, minimal_cover, union_lines, Counts, FileDelta};
pub use error::Error;
pub use export::{Export, ExportData, ExportFile, ExportFunction, Region, Segment};
pub use guard::{function_spans, guarded_lines, FunctionSpan};
pub use lines::{line_stats, relative_key, FileLines, LineCoverage, LineStats};
pub use process::LlvmTools;
