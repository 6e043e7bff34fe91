//! Counters of raw profiles (`.profraw`, the bytes `__llvm_profile_write_buffer` writes), keyed by
//! function name hash and structural hash, and merged as `llvm-profdata merge -sparse` merges them.
//! Pure: no I/O.
//!
//! Refs: llvm/include/llvm/ProfileData/InstrProfData.inc (`INSTR_PROF_RAW_HEADER`, `INSTR_PROF_DATA`);
//! llvm/lib/ProfileData/InstrProfReader.cpp (`RawInstrProfReader::readHeader`, `readRawCounts`:
//! a record's counters start at its relative counter pointer minus the counters delta, which moves
//! back by one record size per record); llvm/lib/ProfileData/InstrProfWriter.cpp (`shouldEncodeData`:
//! with `-sparse`, a name whose records are all zero is left out, so llvm-cov sees it as unknown).
//!
//! Raw profile version 10 (LLVM 19 to 22) is read, 64-bit, either byte order, with 8-byte counters.
//! Value profiles, bitmaps (MC/DC) and virtual table data are skipped.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::bytes::{Cursor, Endian};

/// `INSTR_PROF_RAW_MAGIC_64`: `\xfflprofr\x81` as a number.
const MAGIC_64: u64 = (255 << 56)
    | ((b'l' as u64) << 48)
    | ((b'p' as u64) << 40)
    | ((b'r' as u64) << 32)
    | ((b'o' as u64) << 24)
    | ((b'f' as u64) << 16)
    | ((b'r' as u64) << 8)
    | 129;
/// The raw format version this reader knows (`INSTR_PROF_RAW_VERSION` of LLVM 19 to 22).
const VERSION: u64 = 10;
/// Sixteen `u64` header fields in version 10.
const HEADER_FIELDS: usize = 16;
/// `sizeof(__llvm_profile_data)` in version 10 on 64-bit targets.
const DATA_RECORD_SIZE: usize = 64;
/// `VARIANT_MASK_BYTE_COVERAGE`: one byte per counter, 0 meaning covered.
const BYTE_COVERAGE: u64 = 1 << 60;
/// `VARIANT_MASK_FUNCTION_ENTRY_ONLY`: only entry counters.
const FUNCTION_ENTRY_ONLY: u64 = 1 << 61;

/// Hashes keys that are already hashes (MD5 name hashes, structural hashes) by mixing their words.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(29) ^ n;
    }
}

pub(crate) type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;
pub(crate) type KeySet<K> = std::collections::HashSet<K, BuildHasherDefault<KeyHasher>>;

/// What a profile knows about a function, as llvm-cov asks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The counters of this (name, hash).
    Counts(&'a [u64]),
    /// The name has counters, but for another hash: llvm-cov leaves the function out.
    HashMismatch,
    /// The name has no counters that are not zero: llvm-cov counts everything zero.
    Unknown,
}

/// Counters of one or more raw profiles, merged: per name hash, per structural hash.
#[derive(Debug, Clone, Default)]
pub struct ProfileCounts {
    /// Every record's counters, one record after the other.
    counters: Vec<u64>,
    /// (name hash, structural hash) → start and length in `counters`, in the order first seen.
    records: KeyMap<(u64, u64), (usize, usize)>,
    /// The keys of `records` in the order first seen.
    order: Vec<(u64, u64)>,
    /// Name hash → whether any of its counters is not zero.
    names: KeyMap<u64, bool>,
}

impl ProfileCounts {
    /// Reads a raw profile; errors say what is wrong with it.
    pub fn parse(raw: &[u8]) -> Result<ProfileCounts, String> {
        let mut counts = ProfileCounts::default();
        counts.add(raw)?;
        Ok(counts)
    }

    /// Adds a raw profile's counters: those of a (name, hash) already present add up (saturating).
    pub fn add(&mut self, raw: &[u8]) -> Result<(), String> {
        self.add_names(raw, None)
    }

    /// Like [`ProfileCounts::add`], keeping only the functions whose name hash is in `names` (when
    /// given): what is not asked for is not copied.
    pub(crate) fn add_names(&mut self, raw: &[u8], names: Option<&KeySet<u64>>) -> Result<(), String> {
        let endian = match raw.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))) {
            Some(MAGIC_64) => Endian::Little,
            Some(m) if m.swap_bytes() == MAGIC_64 => Endian::Big,
            _ => return Err("not a 64-bit raw profile (bad magic)".to_string()),
        };
        let mut cursor = Cursor::new(raw, endian);
        let mut header = [0u64; HEADER_FIELDS];
        for field in header.iter_mut() {
            *field = cursor.u64("raw profile header")?;
        }
        let version = header[1] & 0xffff_ffff;
        if version != VERSION {
            return Err(format!("raw profile version {version}, this reader knows version {VERSION} (LLVM 19 to 22)"));
        }
        if header[1] & (BYTE_COVERAGE | FUNCTION_ENTRY_ONLY) != 0 {
            return Err("raw profile with single-byte or entry-only counters".to_string());
        }
        let layout = Layout::from_header(&header, raw.len())?;
        self.records.reserve(layout.records);
        for index in 0..layout.records {
            if names.is_some_and(|names| !names.contains(&layout.name_ref(raw, endian, index))) {
                continue;
            }
            let record = layout.record(raw, endian, index).map_err(|e| format!("raw profile record {index}: {e}"))?;
            self.insert(record, &raw[layout.counters_start..], endian);
        }
        Ok(())
    }

    fn insert(&mut self, record: RawRecord, counters: &[u8], endian: Endian) {
        let bytes = &counters[record.offset..record.offset + record.count * 8];
        let values = bytes.chunks_exact(8).map(|b| {
            let b: [u8; 8] = b.try_into().expect("chunks of 8");
            match endian {
                Endian::Little => u64::from_le_bytes(b),
                Endian::Big => u64::from_be_bytes(b),
            }
        });
        let mut any = false;
        match self.records.get(&(record.name_ref, record.hash)) {
            Some(&(start, len)) if len == record.count => {
                for (a, b) in self.counters[start..start + len].iter_mut().zip(values) {
                    *a = a.saturating_add(b);
                    any |= *a != 0;
                }
            }
            // llvm-profdata reports a counter-count mismatch and keeps the first record.
            Some(_) => {}
            None => {
                let start = self.counters.len();
                self.counters.extend(values);
                any = self.counters[start..].iter().any(|&c| c != 0);
                self.records.insert((record.name_ref, record.hash), (start, record.count));
                self.order.push((record.name_ref, record.hash));
            }
        }
        *self.names.entry(record.name_ref).or_insert(false) |= any;
    }

    /// What llvm-cov would find for the function `name_ref` with structural hash `hash` in the
    /// `-sparse` merge of these profiles.
    pub fn lookup(&self, name_ref: u64, hash: u64) -> Lookup<'_> {
        if self.names.get(&name_ref) != Some(&true) {
            return Lookup::Unknown;
        }
        match self.records.get(&(name_ref, hash)) {
            Some(&(start, len)) => Lookup::Counts(&self.counters[start..start + len]),
            None => Lookup::HashMismatch,
        }
    }

    /// A hash of the records and their counters: equal for profiles whose (kept) counters are equal,
    /// whatever else their bytes hold.
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for &(name_ref, hash) in &self.order {
            hasher.write_u64(name_ref);
            hasher.write_u64(hash);
            hasher.write_usize(self.records[&(name_ref, hash)].1);
        }
        std::hash::Hash::hash(self.counters.as_slice(), &mut hasher);
        hasher.finish()
    }

    /// Number of (name, hash) records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// A data record: whose counters, and where they are.
struct RawRecord {
    name_ref: u64,
    hash: u64,
    /// Byte offset in the counters section.
    offset: usize,
    count: usize,
}

/// Where a version 10 profile keeps its data records and counters.
struct Layout {
    records: usize,
    data_start: usize,
    counters_start: usize,
    counters_len: usize,
    counters_delta: u64,
}

impl Layout {
    /// Header fields: magic, version, binary ids size, data count, padding before counters, counter
    /// count, padding after counters, bitmap bytes, padding after bitmap, names size, counters delta,
    /// bitmap delta, names delta, virtual table count, virtual names size, last value kind.
    fn from_header(header: &[u64; HEADER_FIELDS], len: usize) -> Result<Layout, String> {
        let too_big = || "raw profile header gives sizes larger than the profile".to_string();
        let size = |v: u64, unit: usize| usize::try_from(v).ok().and_then(|v| v.checked_mul(unit)).ok_or_else(too_big);
        let data_start = (HEADER_FIELDS * 8).checked_add(size(header[2], 1)?).ok_or_else(too_big)?;
        let counters_start = data_start
            .checked_add(size(header[3], DATA_RECORD_SIZE)?)
            .and_then(|v| v.checked_add(size(header[4], 1).ok()?))
            .ok_or_else(too_big)?;
        let counters_len = size(header[5], 8)?;
        if counters_start.checked_add(counters_len).is_none_or(|end| end > len) {
            return Err(too_big());
        }
        Ok(Layout { records: header[3] as usize, data_start, counters_start, counters_len, counters_delta: header[10] })
    }

    /// The name hash of data record `index`.
    fn name_ref(&self, raw: &[u8], endian: Endian, index: usize) -> u64 {
        let at = self.data_start + index * DATA_RECORD_SIZE;
        let bytes: [u8; 8] = raw[at..at + 8].try_into().expect("records lie before the counters");
        match endian {
            Endian::Little => u64::from_le_bytes(bytes),
            Endian::Big => u64::from_be_bytes(bytes),
        }
    }

    /// Data record `index`: name hash @0, function hash @8, relative counter pointer @16, three more
    /// pointers, counter count @48 (u32), value site counts and bitmap size.
    fn record(&self, raw: &[u8], endian: Endian, index: usize) -> Result<RawRecord, String> {
        let at = self.data_start + index * DATA_RECORD_SIZE;
        let mut c = Cursor::new(&raw[at..at + DATA_RECORD_SIZE], endian);
        let name_ref = c.u64("name hash")?;
        let hash = c.u64("function hash")?;
        let counter_ptr = c.u64("counter pointer")?;
        c.take(24, "pointers")?;
        let count = c.u32("counter count")? as usize;
        // The pointer is relative to the record; the delta to the first record, moving back one record
        // size per record.
        let delta = self.counters_delta.wrapping_sub((index * DATA_RECORD_SIZE) as u64);
        let offset = counter_ptr.wrapping_sub(delta) as i64;
        let fits =
            |o: usize| o.is_multiple_of(8) && o.checked_add(count * 8).is_some_and(|end| end <= self.counters_len);
        match usize::try_from(offset) {
            Ok(offset) if fits(offset) => Ok(RawRecord { name_ref, hash, offset, count }),
            _ => Err(format!("counters at offset {offset} (x{count}) are outside the counters")),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A version 10 raw profile with these (name hash, hash, counters) records, counters laid out in
    /// reverse record order before the data (as a linker may place them), and some binary ids.
    pub(crate) fn raw_profile(records: &[(u64, u64, Vec<u64>)]) -> Vec<u8> {
        let counters: usize = records.iter().map(|r| r.2.len()).sum();
        let binary_ids = 16u64;
        // In memory: counters, then data. Counters of record i are placed from the end backwards.
        let mut offsets = Vec::new();
        let mut next = counters;
        for r in records {
            next -= r.2.len();
            offsets.push(next * 8);
        }
        let counters_delta = (counters as u64 * 8).wrapping_neg(); // counters begin - data begin
        let header = [
            MAGIC_64,
            VERSION,
            binary_ids,
            records.len() as u64,
            0,
            counters as u64,
            0,
            0,
            0,
            0,
            counters_delta,
            0,
            0,
            0,
            0,
            2,
        ];
        let mut out: Vec<u8> = header.iter().flat_map(|v| v.to_le_bytes()).collect();
        out.extend(vec![0xab; binary_ids as usize]);
        for (i, (name, hash, values)) in records.iter().enumerate() {
            let record_address = (i * DATA_RECORD_SIZE) as u64; // relative to data begin
            let counter_address = counters_delta.wrapping_add(offsets[i] as u64);
            let relative = counter_address.wrapping_sub(record_address);
            let mut rec = Vec::new();
            rec.extend(name.to_le_bytes());
            rec.extend(hash.to_le_bytes());
            rec.extend(relative.to_le_bytes());
            rec.extend([0u8; 24]);
            rec.extend((values.len() as u32).to_le_bytes());
            rec.extend([0u8; 12]);
            assert_eq!(rec.len(), DATA_RECORD_SIZE);
            out.extend(rec);
        }
        let mut counter_bytes = vec![0u8; counters * 8];
        for (i, (_, _, values)) in records.iter().enumerate() {
            for (j, v) in values.iter().enumerate() {
                let at = offsets[i] + j * 8;
                counter_bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
        }
        out.extend(counter_bytes);
        out
    }

    #[test]
    fn reads_each_records_counters_through_its_relative_pointer() {
        let raw = raw_profile(&[(1, 10, vec![5, 0, 2]), (2, 20, vec![7]), (3, 30, vec![0, 0])]);
        let counts = ProfileCounts::parse(&raw).expect("well-formed");
        assert_eq!(counts.len(), 3);
        assert_eq!(counts.lookup(1, 10), Lookup::Counts(&[5, 0, 2]));
        assert_eq!(counts.lookup(2, 20), Lookup::Counts(&[7]));
        assert_eq!(counts.lookup(2, 21), Lookup::HashMismatch);
        // All zero: a sparse merge leaves it out.
        assert_eq!(counts.lookup(3, 30), Lookup::Unknown);
        assert_eq!(counts.lookup(4, 40), Lookup::Unknown);
    }

    #[test]
    fn profiles_merge_by_adding_counters_of_the_same_function() {
        let mut counts = ProfileCounts::parse(&raw_profile(&[(1, 10, vec![1, 2]), (3, 30, vec![0])])).expect("one");
        let mut only_3 = counts.clone();
        counts.add(&raw_profile(&[(1, 10, vec![4, u64::MAX]), (3, 30, vec![9]), (1, 11, vec![1])])).expect("two");
        assert_eq!(counts.lookup(1, 10), Lookup::Counts(&[5, u64::MAX]));
        assert_eq!(counts.lookup(1, 11), Lookup::Counts(&[1]));
        assert_eq!(counts.lookup(3, 30), Lookup::Counts(&[9]));

        let names: KeySet<u64> = [3].into_iter().collect();
        only_3.add_names(&raw_profile(&[(1, 10, vec![4, 4]), (3, 30, vec![9])]), Some(&names)).expect("two");
        assert_eq!(only_3.lookup(1, 10), Lookup::Counts(&[1, 2]), "name 1 was not asked for");
        assert_eq!(only_3.lookup(3, 30), Lookup::Counts(&[9]));
    }

    #[test]
    fn fingerprints_differ_only_where_kept_counters_differ() {
        let names: KeySet<u64> = [1].into_iter().collect();
        let kept = |records: &[(u64, u64, Vec<u64>)]| {
            let mut counts = ProfileCounts::default();
            counts.add_names(&raw_profile(records), Some(&names)).expect("well-formed");
            counts.fingerprint()
        };
        let base = kept(&[(1, 10, vec![1, 2]), (2, 20, vec![5])]);
        assert_eq!(base, kept(&[(1, 10, vec![1, 2]), (2, 20, vec![6])]), "name 2 is not kept");
        assert_ne!(base, kept(&[(1, 10, vec![1, 3]), (2, 20, vec![5])]));
        assert_ne!(base, kept(&[(1, 11, vec![1, 2]), (2, 20, vec![5])]));
    }

    #[test]
    fn other_versions_and_broken_profiles_are_errors() {
        let mut raw = raw_profile(&[(1, 10, vec![1])]);
        assert!(ProfileCounts::parse(&raw[..100]).expect_err("short").contains("header"));
        raw[8] = 9;
        let err = ProfileCounts::parse(&raw).expect_err("version 9");
        assert!(err.contains("raw profile version 9"), "{err}");
        assert!(ProfileCounts::parse(b"not a profile at all").expect_err("magic").contains("bad magic"));

        let mut raw = raw_profile(&[(1, 10, vec![1])]);
        let counter_ptr = 16 * 8 + 16 + 16;
        raw[counter_ptr..counter_ptr + 8].copy_from_slice(&4096u64.to_le_bytes());
        let err = ProfileCounts::parse(&raw).expect_err("pointer out of range");
        assert!(err.starts_with("raw profile record 0: counters at offset"), "{err}");

        let mut huge = raw_profile(&[(1, 10, vec![1])]);
        huge[5 * 8..6 * 8].copy_from_slice(&1_000_000u64.to_le_bytes()); // more counters than bytes
        assert!(ProfileCounts::parse(&huge).expect_err("too big").contains("larger than the profile"));
    }
}
