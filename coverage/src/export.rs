//! Serde model of `llvm-cov export -format=text` JSON: the files with their
//! segments and the functions with their regions. Nothing else is kept.
//!
//! Refs: llvm/tools/llvm-cov/CoverageExporterJson.cpp (renderSegment,
//! renderRegion, renderFunctions, renderRoot).
//!
//! Parsing is deliberately lenient: unknown fields are ignored, positional
//! arrays may grow extra trailing elements, and the `version` string is not
//! checked against a fixed value (LLVM bumps it; LLVM 22 reports "3.x").
//! Only a `type` that is present and different from
//! [`EXPORT_TYPE`] is rejected, since that means it is not an export at all.

use std::fmt;

use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::Error;

/// The `type` string LLVM writes at the root of every JSON export.
pub const EXPORT_TYPE: &str = "llvm.coverage.json.export";

/// Root object of an export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Export {
    /// Format version, e.g. `"3.0.1"`; informational only.
    #[serde(default)]
    pub version: Option<String>,
    /// Always [`EXPORT_TYPE`] for a real export.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// One entry per coverage mapping (in practice one).
    pub data: Vec<ExportData>,
}

/// One coverage mapping's worth of files and functions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ExportData {
    /// Per-file coverage, segments already merged over all instantiations.
    #[serde(default)]
    pub files: Vec<ExportFile>,
    /// Per-function (per-instantiation) coverage.
    #[serde(default)]
    pub functions: Vec<ExportFunction>,
}

/// Coverage for one source file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ExportFile {
    /// Path as recorded in the coverage mapping (absolute for cargo builds).
    pub filename: String,
    /// Sorted, uniqued segments (absent with `-summary-only`).
    #[serde(default)]
    pub segments: Vec<Segment>,
}

/// Coverage for one function instantiation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ExportFunction {
    /// Symbol name (mangled for Rust).
    pub name: String,
    /// How many times the function was entered.
    #[serde(default)]
    pub count: u64,
    /// Counted regions; `file_id` indexes [`ExportFunction::filenames`].
    #[serde(default)]
    pub regions: Vec<Region>,
    /// Branch regions (a true and a false count each); `file_id` as for regions.
    #[serde(default)]
    pub branches: Vec<BranchRegion>,
    /// Files this function's regions refer to; index 0 is the defining file.
    #[serde(default)]
    pub filenames: Vec<String>,
}

/// A segment: `[line, col, count, has_count, is_region_entry, is_gap_region]`.
///
/// A segment marks the point where the innermost active region changes;
/// it stays in force until the next segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// Execution count of the region starting (or resuming) here.
    pub count: u64,
    /// False for skipped regions and region ends with no enclosing region.
    pub has_count: bool,
    /// True where a region starts, false where an enclosing one resumes.
    pub is_region_entry: bool,
    /// True for gap regions (whitespace between statements).
    pub is_gap_region: bool,
}

impl Segment {
    /// Builds a segment from its six positional values.
    pub const fn new(
        line: u32,
        col: u32,
        count: u64,
        has_count: bool,
        is_region_entry: bool,
        is_gap_region: bool,
    ) -> Segment {
        Segment { line, col, count, has_count, is_region_entry, is_gap_region }
    }
}

/// Region kinds as numbered by `CounterMappingRegion::RegionKind`.
pub mod region_kind {
    /// Ordinary code.
    pub const CODE: u32 = 0;
    /// A macro or include expansion.
    pub const EXPANSION: u32 = 1;
    /// Code skipped by the preprocessor / cfg.
    pub const SKIPPED: u32 = 2;
    /// Whitespace between statements.
    pub const GAP: u32 = 3;
    /// A branch condition.
    pub const BRANCH: u32 = 4;
}

/// A region: `[line_start, col_start, line_end, col_end, count, file_id,
/// expanded_file_id, kind]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Region {
    /// 1-based first line.
    pub line_start: u32,
    /// 1-based first column.
    pub col_start: u32,
    /// 1-based last line.
    pub line_end: u32,
    /// Column just past the end.
    pub col_end: u32,
    /// Execution count.
    pub count: u64,
    /// Index into the function's `filenames`.
    pub file_id: u32,
    /// For expansion regions, the file expanded into.
    pub expanded_file_id: u32,
    /// One of [`region_kind`].
    pub kind: u32,
}

/// A branch region: `[line_start, col_start, line_end, col_end, true_count, false_count, file_id,
/// expanded_file_id, kind]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BranchRegion {
    /// 1-based first line.
    pub line_start: u32,
    /// 1-based first column.
    pub col_start: u32,
    /// 1-based last line.
    pub line_end: u32,
    /// Column just past the end.
    pub col_end: u32,
    /// How often the condition was true.
    pub true_count: u64,
    /// How often the condition was false.
    pub false_count: u64,
    /// Index into the function's `filenames`.
    pub file_id: u32,
    /// Unused for branches (0).
    pub expanded_file_id: u32,
    /// [`region_kind::BRANCH`] (or 6, an MC/DC condition).
    pub kind: u32,
}

impl Export {
    /// Parses export JSON; `command` is only used to label errors.
    pub fn parse(json: &[u8], command: &str) -> Result<Export, Error> {
        let not_export = |reason: String| Error::NotAnExport { command: command.to_owned(), reason };
        let export: Export = serde_json::from_slice(json).map_err(|e| not_export(e.to_string()))?;
        if let Some(kind) = &export.kind {
            if kind != EXPORT_TYPE {
                return Err(not_export(format!("type is {kind:?}, expected {EXPORT_TYPE:?}")));
            }
        }
        match export.version.as_deref() {
            Some(v) if !v.starts_with("2.") && !v.starts_with("3.") => {
                tracing::debug!(version = v, "unfamiliar llvm-cov export version, parsing leniently");
            }
            _ => {}
        }
        Ok(export)
    }

    /// All files of all data entries.
    pub fn files(&self) -> impl Iterator<Item = &ExportFile> {
        self.data.iter().flat_map(|d| d.files.iter())
    }

    /// All functions of all data entries.
    pub fn functions(&self) -> impl Iterator<Item = &ExportFunction> {
        self.data.iter().flat_map(|d| d.functions.iter())
    }
}

/// Reads a JSON array of at least `N` numbers-or-bools, ignoring extra
/// trailing elements (future LLVM versions may append fields).
struct Positional<const N: usize>(&'static str);

#[derive(Clone, Copy)]
enum Scalar {
    Num(u64),
    Bool(bool),
}

impl Scalar {
    fn num(self) -> u64 {
        match self {
            Scalar::Num(n) => n,
            Scalar::Bool(b) => u64::from(b),
        }
    }

    fn u32<E: de::Error>(self, what: &str, idx: usize) -> Result<u32, E> {
        let n = self.num();
        u32::try_from(n).map_err(|_| E::custom(format!("{what}[{idx}] = {n} does not fit in u32")))
    }

    fn flag(self) -> bool {
        match self {
            Scalar::Num(n) => n != 0,
            Scalar::Bool(b) => b,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer or a boolean")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Num(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                // Counts are clamped to i64 by LLVM; negatives never occur, treat as 0.
                Ok(Scalar::Num(u64::try_from(v).unwrap_or(0)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de, const N: usize> Visitor<'de> for Positional<N> {
    type Value = [Scalar; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} array of at least {N} elements", self.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[Scalar; N], A::Error> {
        let mut out = [Scalar::Num(0); N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = seq
                .next_element()?
                .ok_or_else(|| de::Error::custom(format!("{} array has {i} elements, expected {N}", self.0)))?;
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(out)
    }
}

impl<'de> Deserialize<'de> for Segment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Segment, D::Error> {
        let v = d.deserialize_seq(Positional::<6>("segment"))?;
        let w = "segment";
        Ok(Segment {
            line: v[0].u32(w, 0)?,
            col: v[1].u32(w, 1)?,
            count: v[2].num(),
            has_count: v[3].flag(),
            is_region_entry: v[4].flag(),
            is_gap_region: v[5].flag(),
        })
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Region, D::Error> {
        let v = d.deserialize_seq(Positional::<8>("region"))?;
        let w = "region";
        Ok(Region {
            line_start: v[0].u32(w, 0)?,
            col_start: v[1].u32(w, 1)?,
            line_end: v[2].u32(w, 2)?,
            col_end: v[3].u32(w, 3)?,
            count: v[4].num(),
            file_id: v[5].u32(w, 5)?,
            expanded_file_id: v[6].u32(w, 6)?,
            kind: v[7].u32(w, 7)?,
        })
    }
}

impl<'de> Deserialize<'de> for BranchRegion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<BranchRegion, D::Error> {
        let v = d.deserialize_seq(Positional::<9>("branch"))?;
        let w = "branch";
        Ok(BranchRegion {
            line_start: v[0].u32(w, 0)?,
            col_start: v[1].u32(w, 1)?,
            line_end: v[2].u32(w, 2)?,
            col_end: v[3].u32(w, 3)?,
            true_count: v[4].num(),
            false_count: v[5].num(),
            file_id: v[6].u32(w, 6)?,
            expanded_file_id: v[7].u32(w, 7)?,
            kind: v[8].u32(w, 8)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minimal_export_ignoring_unknown_fields() {
        let json = br#"{
            "version": "9.9.9-future", "type": "llvm.coverage.json.export",
            "data": [{
                "files": [{"filename": "/w/a.rs", "segments": [[1,2,3,true,true,false,"extra"]],
                           "branches": [], "summary": {"lines": {"count": 1}}, "new": 1}],
                "functions": [{"name": "f", "count": 2, "regions": [[1,2,3,4,5,0,0,0]],
                               "filenames": ["/w/a.rs"], "branches": [[1,2,1,9,3,0,0,0,4]]}],
                "totals": {}
            }]
        }"#;
        let e = Export::parse(json, "test").expect("lenient parse");
        let f = e.files().next().expect("one file");
        assert_eq!(f.segments, vec![Segment::new(1, 2, 3, true, true, false)]);
        let func = e.functions().next().expect("one function");
        assert_eq!(func.regions[0].line_end, 3);
        assert_eq!(func.regions[0].count, 5);
        assert_eq!((func.branches[0].true_count, func.branches[0].false_count, func.branches[0].kind), (3, 0, 4));
    }

    #[test]
    fn rejects_non_exports_with_command_in_message() {
        let err = Export::parse(b"not json", "llvm-cov export x").expect_err("garbage");
        let msg = err.to_string();
        assert!(msg.starts_with("llvm-cov export from `llvm-cov export x` is not a coverage export"), "{msg}");

        let err = Export::parse(br#"{"type":"other","data":[]}"#, "c").expect_err("wrong type");
        assert!(err.to_string().contains("\"other\""));

        let err = Export::parse(br#"{"data":[{"files":[{"filename":"a","segments":[[1,2]]}]}]}"#, "c")
            .expect_err("short segment");
        assert!(err.to_string().contains("segment array has 2 elements"), "{err}");
    }
}
