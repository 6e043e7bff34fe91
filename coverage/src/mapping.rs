//! The coverage mapping of one instrumented binary, read once: every function's regions, counters and
//! counter expressions from `__llvm_covmap` / `__llvm_covfun`, its name from `__llvm_prf_names`. What
//! `llvm-cov` reads from the object file before it looks at any profile; combined with a snapshot's
//! counters by [`crate::decode`].
//!
//! Refs: LLVM's "LLVM Code Coverage Mapping Format" document;
//! llvm/lib/ProfileData/Coverage/CoverageMappingReader.cpp (`RawCoverageFilenamesReader`,
//! `RawCoverageMappingReader::readMappingRegionsSubArray`, `VersionedCovMapFuncRecordReader`,
//! `RawCoverageMappingDummyChecker`); llvm/lib/ProfileData/InstrProf.cpp (`readAndDecodeStrings`).
//! Mapping format versions 4 to 7 (LLVM 11 to 22) are read; rustc 1.95 writes version 7.
//!
//! Like llvm-cov, a function recorded several times in one binary (same name hash) keeps its first
//! record unless that one is a dummy (an unused inline function: hash 0, one zero region) and a later one
//! is real. Everything else (hash mismatches, unknown functions, duplicates across binaries) depends on
//! the profile and is left to [`crate::decode`].

use std::collections::HashMap;
use std::path::Path;

use object::{Object, ObjectSection};

use crate::bytes::{Cursor, Endian};
use crate::Error;

/// `CovMapVersion::Version4`, the first with function records in `__llvm_covfun` (0-based in the file).
const FIRST_VERSION: u32 = 3;
/// `CovMapVersion::Version6`: filenames relative to a compilation directory listed first.
const RELATIVE_FILENAMES_VERSION: u32 = 5;
/// `CovMapVersion::Version7`, the newest (MC/DC regions).
const LAST_VERSION: u32 = 6;
/// The separator between names in `__llvm_prf_names` (`INSTR_PROF_NAME_SEP`).
const NAME_SEPARATOR: u8 = 0x01;
/// Size of a `__llvm_covfun` record header: name hash, data size, function hash, filenames hash.
const FUNCTION_HEADER_SIZE: usize = 8 + 4 + 8 + 8;

/// A counter of the mapping: zero, a physical counter of the profile, or an expression over counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Counter {
    /// Always zero.
    #[default]
    Zero,
    /// Index into the function's counters in the profile.
    Value(u32),
    /// Index into [`FunctionMapping::expressions`].
    Expression(u32),
}

/// `lhs - rhs` or `lhs + rhs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Expression {
    /// True for `lhs + rhs`, false for `lhs - rhs`.
    pub add: bool,
    pub lhs: Counter,
    pub rhs: Counter,
}

/// Region kinds as numbered by `CounterMappingRegion::RegionKind` (and in `llvm-cov export`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RegionKind {
    /// Ordinary code.
    Code = 0,
    /// A macro or include expansion: its count is that of the expanded code.
    Expansion = 1,
    /// Code left out by the preprocessor or `cfg`: never counted.
    Skipped = 2,
    /// Whitespace between statements: its count shows only on lines without code.
    Gap = 3,
    /// A branch condition with a true and a false count.
    Branch = 4,
    /// An MC/DC decision (not counted here).
    McdcDecision = 5,
    /// An MC/DC condition: a branch with condition ids.
    McdcBranch = 6,
}

impl RegionKind {
    /// The kind numbered `n` in exports, if any.
    pub fn from_number(n: u32) -> Option<RegionKind> {
        use RegionKind::*;
        [Code, Expansion, Skipped, Gap, Branch, McdcDecision, McdcBranch].into_iter().find(|k| *k as u32 == n)
    }

    /// Branch regions, with a true and a false count.
    pub fn is_branch(self) -> bool {
        matches!(self, RegionKind::Branch | RegionKind::McdcBranch)
    }
}

/// One region of a function as the binary records it: where, what kind, and which counters count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappingRegion {
    /// The count (the true count of a branch).
    pub count: Counter,
    /// The false count of a branch; zero otherwise.
    pub false_count: Counter,
    /// Index into the function's [`FunctionMapping::files`].
    pub file_id: u32,
    /// For expansions, the file id expanded.
    pub expanded_file_id: u32,
    pub line_start: u32,
    pub col_start: u32,
    pub line_end: u32,
    pub col_end: u32,
    pub kind: RegionKind,
}

impl MappingRegion {
    /// `(line, column)` where the region starts.
    pub fn start(&self) -> (u32, u32) {
        (self.line_start, self.col_start)
    }

    /// `(line, column)` just past the region's end.
    pub fn end(&self) -> (u32, u32) {
        (self.line_end, self.col_end)
    }
}

/// The mapping of one function (one instantiation of a generic function, one closure, one async body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionMapping {
    /// Symbol name as in `__llvm_prf_names` (mangled for Rust).
    pub name: String,
    /// MD5 of the name, the key of the function's counters in a profile.
    pub name_ref: u64,
    /// Structural hash: counters of another hash belong to another version of the function.
    pub hash: u64,
    /// The function's file ids: indices into [`CoverageMapping::filenames`].
    pub files: Vec<u32>,
    pub expressions: Vec<Expression>,
    /// Regions of file id 0 first, then of file id 1, and so on, as recorded.
    pub regions: Vec<MappingRegion>,
}

/// Everything `llvm-cov` reads from one instrumented binary before it looks at a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoverageMapping {
    /// Every source file named by the binary's translation units, absolute where the compiler gave a
    /// directory; the functions refer to them by index.
    pub filenames: Vec<String>,
    /// Functions in `__llvm_covfun` order, one per name hash.
    pub functions: Vec<FunctionMapping>,
}

/// The three sections a mapping is read from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sections<'a> {
    pub covmap: &'a [u8],
    pub covfun: &'a [u8],
    pub names: &'a [u8],
    pub endian: Endian,
}

impl CoverageMapping {
    /// Reads the mapping of the instrumented binary at `path` (ELF or Mach-O). Only the three sections
    /// are read from disk.
    pub fn read(path: &Path) -> Result<CoverageMapping, Error> {
        let bad = |reason: String| Error::BadMapping { path: path.to_path_buf(), reason };
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            action: "open",
            path: path.to_path_buf(),
            source,
        })?;
        let cache = object::ReadCache::new(file);
        let object = object::File::parse(&cache).map_err(|e| bad(format!("not an object file: {e}")))?;
        let section = |name: &str| -> Result<&[u8], Error> {
            let section = object.section_by_name(name).ok_or_else(|| Error::NoMapping {
                path: path.to_path_buf(),
                reason: format!("no {name} section (not built with -C instrument-coverage, e.g. under cargo llvm-cov)"),
            })?;
            section.data().map_err(|e| bad(format!("cannot read {name}: {e}")))
        };
        if !object.is_64() {
            return Err(bad("only 64-bit binaries are read".to_string()));
        }
        let sections = Sections {
            covmap: section("__llvm_covmap")?,
            covfun: section("__llvm_covfun")?,
            names: section("__llvm_prf_names")?,
            endian: if object.is_little_endian() { Endian::Little } else { Endian::Big },
        };
        CoverageMapping::from_sections(sections).map_err(bad)
    }

    /// Decodes the sections; errors say what is malformed and where.
    pub(crate) fn from_sections(sections: Sections<'_>) -> Result<CoverageMapping, String> {
        let names = function_names(sections.names)?;
        let mut mapping = CoverageMapping::default();
        let units = mapping.read_headers(sections.covmap, sections.endian)?;
        let records = unique_records(sections.covfun, sections.endian, &units)?;
        for record in records {
            let name = names
                .get(&record.name_ref)
                .ok_or_else(|| format!("no name for the function with name hash {:#x}", record.name_ref))?;
            let function = decode_function(&record, name.clone(), mapping.filenames.len())
                .map_err(|e| format!("function {name}: {e}"))?;
            mapping.functions.push(function);
        }
        Ok(mapping)
    }

    /// Reads every `__llvm_covmap` header with its filenames; returns filenames hash → range of
    /// [`CoverageMapping::filenames`] (`None` for a hash two different lists share).
    fn read_headers(&mut self, covmap: &[u8], endian: Endian) -> Result<HashMap<u64, Option<(usize, usize)>>, String> {
        let mut units: HashMap<u64, Option<(usize, usize)>> = HashMap::new();
        let mut cursor = Cursor::new(covmap, endian);
        while !cursor.is_empty() {
            let at = cursor.position();
            let what = |field: &str| format!("__llvm_covmap header at {at}: {field}");
            let records = cursor.u32(&what("record count"))?;
            let filenames_size = cursor.u32(&what("filenames size"))? as usize;
            let coverage_size = cursor.u32(&what("coverage size"))?;
            let version = cursor.u32(&what("version"))?;
            if !(FIRST_VERSION..=LAST_VERSION).contains(&version) {
                return Err(format!(
                    "{}: mapping format version {} is not one of {}..={} (LLVM 11 to 22)",
                    what("version"),
                    version + 1,
                    FIRST_VERSION + 1,
                    LAST_VERSION + 1
                ));
            }
            if records != 0 || coverage_size != 0 {
                return Err(what("inline function records, which format versions 4 and later never have"));
            }
            let blob = cursor.take(filenames_size, &what("filenames"))?;
            let start = self.filenames.len();
            self.filenames.extend(decode_filenames(blob, version).map_err(|e| format!("{}: {e}", what("filenames")))?);
            let range = (start, self.filenames.len() - start);
            let key = md5_low(blob);
            match units.get(&key).copied() {
                None => {
                    units.insert(key, Some(range));
                }
                Some(Some((old_start, len))) => {
                    let same = self.filenames[old_start..old_start + len] == self.filenames[range.0..];
                    if !same {
                        units.insert(key, None);
                    }
                }
                Some(None) => {}
            }
            cursor.align(8);
        }
        Ok(units)
    }
}

/// The low 64 bits of the MD5 of `bytes`, as LLVM's `MD5Hash`: the key of names and filename lists.
pub(crate) fn md5_low(bytes: &[u8]) -> u64 {
    let digest = md5::compute(bytes);
    u64::from_le_bytes(digest.0[..8].try_into().expect("an MD5 digest has 16 bytes"))
}

/// The names in `__llvm_prf_names`, by their MD5: chunks of `\x01`-separated names, zlib-compressed
/// or not, with zero padding between chunks.
fn function_names(section: &[u8]) -> Result<HashMap<u64, String>, String> {
    let mut names = HashMap::new();
    let mut cursor = Cursor::new(section, Endian::Little);
    while !cursor.is_empty() {
        let uncompressed = cursor.uleb128("__llvm_prf_names: uncompressed size")? as usize;
        let compressed = cursor.uleb128("__llvm_prf_names: compressed size")? as usize;
        let strings = if compressed == 0 {
            cursor.take(uncompressed, "__llvm_prf_names: names")?.to_vec()
        } else {
            inflate(cursor.take(compressed, "__llvm_prf_names: compressed names")?, uncompressed)
                .map_err(|e| format!("__llvm_prf_names: {e}"))?
        };
        for name in strings.split(|&b| b == NAME_SEPARATOR) {
            names.insert(md5_low(name), String::from_utf8_lossy(name).into_owned());
        }
        while section.get(cursor.position()) == Some(&0) {
            cursor.take(1, "padding")?;
        }
    }
    Ok(names)
}

/// zlib data of a known uncompressed size.
fn inflate(data: &[u8], size: usize) -> Result<Vec<u8>, String> {
    let out = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, size)
        .map_err(|e| format!("cannot decompress: {e}"))?;
    if out.len() != size {
        return Err(format!("decompressed to {} bytes, expected {size}", out.len()));
    }
    Ok(out)
}

/// One translation unit's filenames: a count, then (from version 4) the sizes of a possibly
/// compressed list of length-prefixed names. From version 6 the first name is the compilation
/// directory, which relative names are joined to.
fn decode_filenames(blob: &[u8], version: u32) -> Result<Vec<String>, String> {
    let mut cursor = Cursor::new(blob, Endian::Little);
    let count = cursor.uleb128_size("filename count")?;
    if count == 0 {
        return Err("the filename count is zero".to_string());
    }
    let uncompressed = cursor.uleb128("uncompressed size")? as usize;
    let compressed = cursor.uleb128_size("compressed size")?;
    let inflated;
    let mut list = if compressed > 0 {
        inflated = inflate(cursor.take(compressed, "compressed filenames")?, uncompressed)?;
        Cursor::new(&inflated, Endian::Little)
    } else {
        cursor
    };
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        let len = list.uleb128_size("filename length")?;
        let name = String::from_utf8_lossy(list.take(len, "filename")?).into_owned();
        names.push(name);
    }
    if version >= RELATIVE_FILENAMES_VERSION {
        let directory = names[0].clone();
        for name in names.iter_mut().skip(1) {
            if !name.starts_with('/') {
                *name = join_and_remove_dots(&directory, name);
            }
        }
    }
    Ok(names)
}

/// `directory/name` with `.` and `..` components resolved, as LLVM's `sys::path::append` and
/// `remove_dots(.., true)` do on POSIX paths.
fn join_and_remove_dots(directory: &str, name: &str) -> String {
    let joined = if directory.is_empty() { name.to_string() } else { format!("{directory}/{name}") };
    let absolute = joined.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            _ => parts.push(part),
        }
    }
    let body = parts.join("/");
    if absolute {
        format!("/{body}")
    } else {
        body
    }
}

/// A `__llvm_covfun` record before its mapping is decoded.
struct RawRecord<'a> {
    name_ref: u64,
    hash: u64,
    mapping: &'a [u8],
    /// Start and length in [`CoverageMapping::filenames`].
    files: (usize, usize),
}

/// The function records of `__llvm_covfun`, one per name hash: a later record replaces a first one only
/// when the first is a dummy and the later one is not.
fn unique_records<'a>(
    covfun: &'a [u8],
    endian: Endian,
    units: &HashMap<u64, Option<(usize, usize)>>,
) -> Result<Vec<RawRecord<'a>>, String> {
    let mut records: Vec<RawRecord<'a>> = Vec::new();
    let mut by_name: HashMap<u64, usize> = HashMap::new();
    let mut cursor = Cursor::new(covfun, endian);
    while cursor.remaining() >= FUNCTION_HEADER_SIZE {
        let at = cursor.position();
        let what = |field: &str| format!("__llvm_covfun record at {at}: {field}");
        let name_ref = cursor.u64(&what("name hash"))?;
        let size = cursor.u32(&what("data size"))? as usize;
        let hash = cursor.u64(&what("function hash"))?;
        let filenames_ref = cursor.u64(&what("filenames hash"))?;
        let mapping = cursor.take(size, &what("mapping"))?;
        cursor.align(8);
        let files = match units.get(&filenames_ref) {
            None => return Err(what(&format!("no filenames with hash {filenames_ref:#x}"))),
            Some(None) => continue,
            Some(Some(range)) => *range,
        };
        let record = RawRecord { name_ref, hash, mapping, files };
        match by_name.get(&name_ref) {
            None => {
                by_name.insert(name_ref, records.len());
                records.push(record);
            }
            Some(&index) => {
                if is_dummy(&records[index]).map_err(|e| what(&e))? && !is_dummy(&record).map_err(|e| what(&e))? {
                    records[index] = record;
                }
            }
        }
    }
    Ok(records)
}

/// A dummy record (emitted for an inline function unused in one translation unit): hash 0, one file,
/// no expressions and one region with a zero counter.
fn is_dummy(record: &RawRecord<'_>) -> Result<bool, String> {
    if record.hash != 0 {
        return Ok(false);
    }
    let mut c = Cursor::new(record.mapping, Endian::Little);
    if c.uleb128_size("file count")? != 1 {
        return Ok(false);
    }
    c.uleb128_below(u64::from(u32::MAX), "file index")?;
    if c.uleb128_size("expression count")? != 0 {
        return Ok(false);
    }
    if c.uleb128_size("region count")? != 1 {
        return Ok(false);
    }
    let encoded = c.uleb128_below(u64::from(u32::MAX), "counter")?;
    Ok(encoded & 3 == 0)
}

/// Decodes one function's mapping: its file ids, expressions and regions, then gives every expansion
/// region the count of the first region of the file it expands.
fn decode_function(record: &RawRecord<'_>, name: String, total_files: usize) -> Result<FunctionMapping, String> {
    let mut c = Cursor::new(record.mapping, Endian::Little);
    let (first, unit_files) = record.files;
    let file_count = c.uleb128_size("file count")?;
    let mut files = Vec::with_capacity(file_count);
    for _ in 0..file_count {
        let index = c.uleb128_below(unit_files as u64, "file index")? as usize;
        debug_assert!(first + index < total_files);
        files.push(u32::try_from(first + index).map_err(|_| "too many files".to_string())?);
    }
    let expression_count = c.uleb128_size("expression count")?;
    let mut expressions = vec![Expression { add: false, lhs: Counter::Zero, rhs: Counter::Zero }; expression_count];
    for index in 0..expression_count {
        let lhs = read_counter(&mut c, &mut expressions)?;
        let rhs = read_counter(&mut c, &mut expressions)?;
        expressions[index].lhs = lhs;
        expressions[index].rhs = rhs;
    }
    let mut regions = Vec::new();
    for file_id in 0..file_count as u32 {
        read_regions(&mut c, file_id, file_count as u32, &mut expressions, &mut regions)?;
    }
    propagate_expansion_counts(&mut regions, file_count);
    Ok(FunctionMapping { name, name_ref: record.name_ref, hash: record.hash, files, expressions, regions })
}

/// Decodes a counter; one that refers to an expression also fixes that expression's kind.
fn decode_counter(encoded: u64, expressions: &mut [Expression]) -> Result<Counter, String> {
    let id = u32::try_from(encoded >> 2).map_err(|_| format!("counter {encoded} is too large"))?;
    match encoded & 3 {
        0 => Ok(Counter::Zero),
        1 => Ok(Counter::Value(id)),
        tag => {
            let expression =
                expressions.get_mut(id as usize).ok_or_else(|| format!("counter refers to missing expression {id}"))?;
            expression.add = tag == 3;
            Ok(Counter::Expression(id))
        }
    }
}

fn read_counter(c: &mut Cursor<'_>, expressions: &mut [Expression]) -> Result<Counter, String> {
    let encoded = c.uleb128_below(u64::from(u32::MAX), "counter")?;
    decode_counter(encoded, expressions)
}

/// Reads the regions of one file id: a count, then per region its counter (or pseudo-counter saying
/// its kind), a line delta, start column, line count and end column (high bit: gap region).
fn read_regions(
    c: &mut Cursor<'_>,
    file_id: u32,
    file_count: u32,
    expressions: &mut [Expression],
    regions: &mut Vec<MappingRegion>,
) -> Result<(), String> {
    let count = c.uleb128_size("region count")?;
    let mut line_start = 0u32;
    for _ in 0..count {
        let (kind, count, false_count, expanded_file_id) = read_region_kind(c, file_count, expressions)?;
        let delta = c.uleb128_below(u64::from(u32::MAX), "line delta")? as u32;
        let col_start = c.uleb128_below(u64::from(u32::MAX) + 1, "start column")? as u32;
        let lines = c.uleb128_below(u64::from(u32::MAX), "line count")? as u32;
        let mut col_end = c.uleb128_below(u64::from(u32::MAX), "end column")? as u32;
        line_start = line_start.wrapping_add(delta);
        let mut kind = kind;
        if col_end & (1 << 31) != 0 {
            kind = RegionKind::Gap;
            col_end &= !(1 << 31);
        }
        let (col_start, col_end) = if col_start == 0 && col_end == 0 { (1, u32::MAX) } else { (col_start, col_end) };
        let region = MappingRegion {
            count,
            false_count,
            file_id,
            expanded_file_id,
            line_start,
            col_start,
            line_end: line_start.wrapping_add(lines),
            col_end,
            kind,
        };
        if region.start() > region.end() {
            return Err(format!("region {}:{} ends before it starts", region.line_start, region.col_start));
        }
        regions.push(region);
    }
    Ok(())
}

/// The kind part of a region: a non-zero counter means a code region with that counter; a zero counter's
/// upper bits give an expansion (with the file id expanded) or another kind, branches with two counters.
fn read_region_kind(
    c: &mut Cursor<'_>,
    file_count: u32,
    expressions: &mut [Expression],
) -> Result<(RegionKind, Counter, Counter, u32), String> {
    let encoded = c.uleb128_below(u64::from(u32::MAX), "counter and kind")?;
    if encoded & 3 != 0 {
        return Ok((RegionKind::Code, decode_counter(encoded, expressions)?, Counter::Zero, 0));
    }
    if encoded & 4 != 0 {
        let expanded = (encoded >> 3) as u32;
        if expanded >= file_count {
            return Err(format!("expansion of missing file id {expanded}"));
        }
        return Ok((RegionKind::Expansion, Counter::Zero, Counter::Zero, expanded));
    }
    let kind = u32::try_from(encoded >> 3).ok().and_then(RegionKind::from_number);
    match kind {
        Some(RegionKind::Code) => Ok((RegionKind::Code, Counter::Zero, Counter::Zero, 0)),
        Some(RegionKind::Skipped) => Ok((RegionKind::Skipped, Counter::Zero, Counter::Zero, 0)),
        Some(kind @ (RegionKind::Branch | RegionKind::McdcBranch)) => {
            let t = read_counter(c, expressions)?;
            let f = read_counter(c, expressions)?;
            if kind == RegionKind::McdcBranch {
                for what in ["condition id", "true id", "false id"] {
                    c.uleb128_below(i16::MAX as u64, what)?;
                }
            }
            Ok((kind, t, f, 0))
        }
        Some(RegionKind::McdcDecision) => {
            c.uleb128_below(u64::from(u32::MAX), "bitmap index")?;
            c.uleb128_below(i16::MAX as u64, "condition count")?;
            Ok((RegionKind::McdcDecision, Counter::Zero, Counter::Zero, 0))
        }
        _ => Err(format!("unknown region kind {}", encoded >> 3)),
    }
}

/// An expansion region counts what the first region of the expanded file counts, through nested
/// expansions: repeated until nothing changes (bounded by the number of files).
fn propagate_expansion_counts(regions: &mut [MappingRegion], file_count: usize) {
    for _ in 0..=file_count {
        let mut expansion_of: Vec<Option<usize>> = vec![None; file_count];
        for (index, region) in regions.iter().enumerate() {
            if region.kind == RegionKind::Expansion {
                expansion_of[region.expanded_file_id as usize] = Some(index);
            }
        }
        let mut changed = false;
        for index in 0..regions.len() {
            let file_id = regions[index].file_id as usize;
            if let Some(expansion) = expansion_of[file_id].take() {
                if regions[expansion].count != regions[index].count {
                    regions[expansion].count = regions[index].count;
                    changed = true;
                }
            }
        }
        if !changed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leb(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn lebs(values: &[u64]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in values {
            leb(*v, &mut out);
        }
        out
    }

    /// A translation unit's uncompressed filenames blob.
    fn filenames_blob(names: &[&str]) -> Vec<u8> {
        let mut list = Vec::new();
        for name in names {
            leb(name.len() as u64, &mut list);
            list.extend_from_slice(name.as_bytes());
        }
        let mut blob = lebs(&[names.len() as u64, list.len() as u64, 0]);
        blob.extend(list);
        blob
    }

    fn covmap(blob: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [0u32, blob.len() as u32, 0, LAST_VERSION] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(blob);
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        out
    }

    fn covfun_record(name: &str, hash: u64, filenames_ref: u64, mapping: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&md5_low(name.as_bytes()).to_le_bytes());
        out.extend_from_slice(&(mapping.len() as u32).to_le_bytes());
        out.extend_from_slice(&hash.to_le_bytes());
        out.extend_from_slice(&filenames_ref.to_le_bytes());
        out.extend_from_slice(mapping);
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
    }

    fn names_section(names: &[&str]) -> Vec<u8> {
        let joined = names.join("\u{1}");
        let mut out = lebs(&[joined.len() as u64, 0]);
        out.extend_from_slice(joined.as_bytes());
        out
    }

    /// `f`: file 0 = unit file 1; expressions e0 = #0 - #1, e1 = e0 + #1; regions: code #0 on 3:1-9:2,
    /// gap e0 on 4:9-4:10, branch (#1, e0) on 4:5-4:9, code e1 on 5:1-5:20, skipped on 7:1-7:3,
    /// expansion of file 1 on 8:1-8:5; file 1: code #1 on 1:1-2:2.
    fn mapping_of_f() -> Vec<u8> {
        let mut m = lebs(&[2, 1, 2]); // two file ids: unit files 1 and 2
        m.extend(lebs(&[2, 1, (1 << 2) | 1])); // e0 = #0 .. #1 (two expressions)
        m.extend(lebs(&[2, (1 << 2) | 1])); // e1 = e0 .. #1; this reference makes e0 a subtraction
        m.extend(lebs(&[6]));
        m.extend(lebs(&[1, 3, 1, 6, 2])); // code #0 3:1 - 9:2
        m.extend(lebs(&[2, 1, 9, 0, 10 | (1 << 31)])); // gap e0 (subtract) 4:9 - 4:10
        m.extend(lebs(&[(4 << 3), 5, 2, 0, 5, 0, 9])); // branch #1 / e0 at 4:5 - 4:9
        m.extend(lebs(&[(1 << 2) | 3, 1, 1, 0, 20])); // code e1 (add) 5:1 - 5:20
        m.extend(lebs(&[(2 << 3), 2, 1, 0, 3])); // skipped 7:1 - 7:3
        m.extend(lebs(&[(1 << 3) | 4, 1, 1, 0, 5])); // expansion of file id 1 at 8:1 - 8:5
        m.extend(lebs(&[1, (1 << 2) | 1, 1, 1, 1, 2])); // file id 1: code #1 1:1 - 2:2
        m
    }

    #[test]
    fn decodes_regions_counters_and_expressions_of_a_function() {
        let blob = filenames_blob(&["/w", "src/lib.rs", "../w/src/macros.rs"]);
        let mut covfun = Vec::new();
        covfun_record("f", 7, md5_low(&blob), &mapping_of_f(), &mut covfun);
        let sections = Sections {
            covmap: &covmap(&blob),
            covfun: &covfun,
            names: &names_section(&["f", "g"]),
            endian: Endian::Little,
        };
        let mapping = CoverageMapping::from_sections(sections).expect("well-formed");
        assert_eq!(mapping.filenames, ["/w", "/w/src/lib.rs", "/w/src/macros.rs"]);
        let f = &mapping.functions[0];
        assert_eq!((f.name.as_str(), f.hash, f.files.clone()), ("f", 7, vec![1, 2]));
        assert_eq!(
            f.expressions,
            [
                Expression { add: false, lhs: Counter::Value(0), rhs: Counter::Value(1) },
                Expression { add: true, lhs: Counter::Expression(0), rhs: Counter::Value(1) }
            ]
        );
        let kinds: Vec<RegionKind> = f.regions.iter().map(|r| r.kind).collect();
        use RegionKind::*;
        assert_eq!(kinds, [Code, Gap, Branch, Code, Skipped, Expansion, Code]);
        let gap = f.regions[1];
        assert_eq!((gap.start(), gap.end(), gap.count), ((4, 9), (4, 10), Counter::Expression(0)));
        let branch = f.regions[2];
        assert_eq!((branch.count, branch.false_count), (Counter::Value(1), Counter::Expression(0)));
        // The expansion counts what the first region of file id 1 counts.
        assert_eq!((f.regions[5].expanded_file_id, f.regions[5].count), (1, Counter::Value(1)));
        assert_eq!((f.regions[6].file_id, f.regions[6].start(), f.regions[6].end()), (1, (1, 1), (2, 2)));
    }

    #[test]
    fn a_real_record_replaces_an_earlier_dummy_of_the_same_name_but_not_the_reverse() {
        let blob = filenames_blob(&["/w", "a.rs"]);
        let dummy = lebs(&[1, 1, 0, 1, 0, 1, 1, 0, 2]); // one zero region
        let real = lebs(&[1, 1, 0, 1, 1, 1, 1, 0, 2]); // counter #0
        let mut covfun = Vec::new();
        covfun_record("inline", 0, md5_low(&blob), &dummy, &mut covfun);
        covfun_record("inline", 42, md5_low(&blob), &real, &mut covfun);
        covfun_record("inline", 0, md5_low(&blob), &dummy, &mut covfun);
        let sections = Sections {
            covmap: &covmap(&blob),
            covfun: &covfun,
            names: &names_section(&["inline"]),
            endian: Endian::Little,
        };
        let mapping = CoverageMapping::from_sections(sections).expect("well-formed");
        assert_eq!(mapping.functions.len(), 1);
        assert_eq!(mapping.functions[0].hash, 42);
        assert_eq!(mapping.functions[0].regions[0].count, Counter::Value(0));
    }

    #[test]
    fn whole_line_regions_and_compressed_names_are_read() {
        let blob = filenames_blob(&["/w", "a.rs"]);
        let mapping_bytes = lebs(&[1, 1, 0, 1, 1, 4, 0, 0, 0]); // counter #0, columns 0 to 0
        let mut covfun = Vec::new();
        covfun_record("zipped", 1, md5_low(&blob), &mapping_bytes, &mut covfun);
        let plain = b"zipped\x01other";
        let packed = miniz_oxide::deflate::compress_to_vec_zlib(plain, 6);
        let mut names = lebs(&[plain.len() as u64, packed.len() as u64]);
        names.extend(packed);
        names.extend([0, 0]); // padding between chunks
        let sections = Sections { covmap: &covmap(&blob), covfun: &covfun, names: &names, endian: Endian::Little };
        let mapping = CoverageMapping::from_sections(sections).expect("well-formed");
        let region = mapping.functions[0].regions[0];
        assert_eq!((region.start(), region.end()), ((4, 1), (4, u32::MAX)));
        assert_eq!(mapping.functions[0].name, "zipped");
    }

    #[test]
    fn malformed_sections_are_errors_that_say_where() {
        let blob = filenames_blob(&["/w", "a.rs"]);
        let mut covfun = Vec::new();
        covfun_record("f", 1, 0xdead, &lebs(&[0, 0]), &mut covfun);
        let names = names_section(&["f"]);
        let sections = Sections { covmap: &covmap(&blob), covfun: &covfun, names: &names, endian: Endian::Little };
        let err = CoverageMapping::from_sections(sections).expect_err("unknown filenames hash");
        assert!(err.contains("__llvm_covfun record at 0") && err.contains("0xdead"), "{err}");

        let mut old = covmap(&blob);
        old[12] = 2; // version 3: records inline, not supported
        let sections = Sections { covmap: &old, covfun: &[], names: &names, endian: Endian::Little };
        let err = CoverageMapping::from_sections(sections).expect_err("old version");
        assert!(err.contains("version 3 is not one of 4..=7"), "{err}");

        let mut covfun = Vec::new();
        covfun_record("f", 1, md5_low(&blob), &lebs(&[1, 5]), &mut covfun);
        let sections = Sections { covmap: &covmap(&blob), covfun: &covfun, names: &names, endian: Endian::Little };
        let err = CoverageMapping::from_sections(sections).expect_err("file index out of range");
        assert!(err.starts_with("function f: file index: 5 is not below 2"), "{err}");
    }

    #[test]
    fn relative_filenames_are_joined_like_llvm() {
        assert_eq!(join_and_remove_dots("/w/x", "./a/../b.rs"), "/w/x/b.rs");
        assert_eq!(join_and_remove_dots("/w", "../../../b.rs"), "/b.rs");
        assert_eq!(join_and_remove_dots("", "../b.rs"), "../b.rs");
        assert_eq!(join_and_remove_dots("/w/", "src//lib.rs"), "/w/src/lib.rs");
    }
}
