//! LLVM source-based coverage for cloture, knowing nothing about HTTP:
//! runtime hooks to reset and snapshot counters in-process, the decoding of
//! snapshots into per-line and per-region coverage (in process, or with the
//! LLVM tools as a fallback), and pure logic on top of it (line rule,
//! deltas, minimal covers, what a call site guards).
//!
//! Map of modules:
//! - [`runtime`]: `__llvm_profile_*` hooks under `cfg(coverage)`, no-ops otherwise.
//! - [`mapping`]: a binary's coverage mapping (`__llvm_covmap`, `__llvm_covfun`), read once.
//! - [`profile`]: counters of raw profile snapshots, merged like `llvm-profdata merge -sparse`.
//! - [`decode`]: [`Decoder`], mapping + snapshots → the [`Export`] model, as `llvm-cov export` gives it.
//! - [`segments`]: a file's segments from its counted regions (llvm-cov's segment builder).
//! - [`process`]: the one place spawning `llvm-profdata` / `llvm-cov`.
//! - [`export`]: serde model of `llvm-cov export` JSON.
//! - [`lines`]: LLVM's line rule over segments; [`LineCoverage`].
//! - [`regions`]: per-file regions with counts; [`RegionCoverage`].
//! - [`delta`]: before/after per-file deltas and greedy minimal covers.
//! - [`guard`]: function spans and what a call site guards: uncovered paths (regions) or lines.
//! - [`cache`]: [`Processor`], snapshot bytes → [`SnapshotCoverage`], memoised.
//! - [`error`]: the crate's [`Error`].

mod bytes;
pub mod cache;
pub mod decode;
pub mod delta;
pub mod error;
pub mod export;
pub mod guard;
pub mod lines;
pub mod mapping;
pub mod process;
pub mod profile;
pub mod regions;
pub mod runtime;
pub mod segments;

pub use cache::{Processor, SnapshotCoverage};
pub use decode::Decoder;
pub use delta::{delta, minimal_cover, union_lines, Counts, FileDelta};
pub use error::Error;
pub use export::{BranchRegion, Export, ExportData, ExportFile, ExportFunction, Region, Segment};
pub use guard::{
    function_spans, guarded_lines, guarded_paths, next_site_in_function, FunctionSpan, Position, UncoveredPath,
};
pub use lines::{line_stats, relative_key, FileLines, LineCoverage, LineStats};
pub use mapping::{CoverageMapping, RegionKind};
pub use process::LlvmTools;
pub use regions::{CoveredRegion, RegionCoverage, RegionStats};
