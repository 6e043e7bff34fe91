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
const DATA_RECORD_SIZE: u64 = 64;
/// `VARIANT_MASK_BYTE_COVERAGE`: one byte per counter, 0 meaning covered.
const BYTE_COVERAGE: u64 = 1 << 60;
/// `VARIANT_MASK_FUNCTION_ENTRY_ONLY`: only entry counters.
const FUNCTION_ENTRY_ONLY: u64 = 1 << 61;

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileCounts {
    functions: HashMap<u64, Vec<(u64, Vec<u64>)>>,
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
        let endian = match raw.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))) {
            Some(MAGIC_64) => Endian::Little,
            Some(m) if m.swap_bytes() == MAGIC_64 => Endian::Big,
            _ => return Err("not a 64-bit raw profile (bad magic)".to_string()),
        };
        let mut cursor = Cursor::new(raw, endian);
        let mut header = [0u64; HEADER_FIELDS];
        for (index, field) in header.iter_mut().enumerate() {
            *field = cursor.u64(&format!("raw profile header field {index}"))?;
        }
        let version = header[1] & 0xffff_ffff;
        if version != VERSION {
            return Err(format!("raw profile version {version}, this reader knows version {VERSION} (LLVM 19 to 22)"));
        }
        if header[1] & (BYTE_COVERAGE | FUNCTION_ENTRY_ONLY) != 0 {
            return Err("raw profile with single-byte or entry-only counters".to_string());
        }
        let layout = Layout::from_header(&header, raw.len())?;
        for index in 0..layout.records {
            let (name_ref, hash, counters) = layout.record(raw, endian, index)?;
            self.insert(name_ref, hash, counters);
        }
        Ok(())
    }

    fn insert(&mut self, name_ref: u64, hash: u64, counters: Vec<u64>) {
        let records = self.functions.entry(name_ref).or_default();
        match records.iter_mut().find(|(h, _)| *h == hash) {
            Some((_, existing)) if existing.len() == counters.len() => {
                for (a, b) in existing.iter_mut().zip(counters) {
                    *a = a.saturating_add(b);
                }
            }
            // llvm-profdata reports a counter-count mismatch and keeps the first record.
            Some(_) => {}
            None => records.push((hash, counters)),
        }
    }

    /// What llvm-cov would find for the function `name_ref` with structural hash `hash` in the
    /// `-sparse` merge of these profiles.
    pub fn lookup(&self, name_ref: u64, hash: u64) -> Lookup<'_> {
        let Some(records) = self.functions.get(&name_ref) else { return Lookup::Unknown };
        if records.iter().all(|(_, counters)| counters.iter().all(|&c| c == 0)) {
            return Lookup::Unknown;
        }
        match records.iter().find(|(h, _)| *h == hash) {
            Some((_, counters)) => Lookup::Counts(counters),
            None => Lookup::HashMismatch,
        }
    }

    /// Number of (name, hash) records.
    pub fn len(&self) -> usize {
        self.functions.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a version 10 profile keeps its data records and counters.
struct Layout {
    records: u64,
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
        let to_usize = |v: u64| usize::try_from(v).map_err(|_| too_big());
        let data_start = (HEADER_FIELDS * 8).checked_add(to_usize(header[2])?).ok_or_else(too_big)?;
        let data_len = to_usize(header[3].checked_mul(DATA_RECORD_SIZE).ok_or_else(too_big)?)?;
        let counters_start = data_start
            .checked_add(data_len)
            .and_then(|v| v.checked_add(to_usize(header[4]).ok()?))
            .ok_or_else(too_big)?;
        let counters_len = to_usize(header[5].checked_mul(8).ok_or_else(too_big)?)?;
        if counters_start.checked_add(counters_len).is_none_or(|end| end > len) {
            return Err(too_big());
        }
        Ok(Layout { records: header[3], data_start, counters_start, counters_len, counters_delta: header[10] })
    }

    /// The name hash, structural hash and counters of data record `index`.
    fn record(&self, raw: &[u8], endian: Endian, index: u64) -> Result<(u64, u64, Vec<u64>), String> {
        let at = self.data_start + (index * DATA_RECORD_SIZE) as usize;
        let mut c = Cursor::new(&raw[at..at + DATA_RECORD_SIZE as usize], endian);
        let what = |field: &str| format!("raw profile record {index}: {field}");
        let name_ref = c.u64(&what("name hash"))?;
        let hash = c.u64(&what("function hash"))?;
        let counter_ptr = c.u64(&what("counter pointer"))?;
        c.take(24, &what("bitmap, function and values pointers"))?;
        let count = c.u32(&what("counter count"))? as usize;
        // The pointer is relative to the record; the delta to the first record, moving back one record
        // size per record.
        let delta = self.counters_delta.wrapping_sub(index.wrapping_mul(DATA_RECORD_SIZE));
        let offset = counter_ptr.wrapping_sub(delta) as i64;
        let offset = usize::try_from(offset)
            .ok()
            .filter(|&o| {
                o % 8 == 0
                    && count.checked_mul(8).and_then(|n| n.checked_add(o)).is_some_and(|end| end <= self.counters_len)
            })
            .ok_or_else(|| what(&format!("counters at offset {offset} (x{count}) are outside the counters")))?;
        let mut counters = Cursor::new(&raw[self.counters_start + offset..], endian);
        let values = (0..count).map(|i| counters.u64(&what(&format!("counter {i}")))).collect::<Result<_, _>>()?;
        Ok((name_ref, hash, values))
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
            let record_address = i as u64 * DATA_RECORD_SIZE; // relative to data begin
            let counter_address = counters_delta.wrapping_add(offsets[i] as u64);
            let relative = counter_address.wrapping_sub(record_address);
            let mut rec = Vec::new();
            rec.extend(name.to_le_bytes());
            rec.extend(hash.to_le_bytes());
            rec.extend(relative.to_le_bytes());
            rec.extend([0u8; 24]);
            rec.extend((values.len() as u32).to_le_bytes());
            rec.extend([0u8; 12]);
            assert_eq!(rec.len(), DATA_RECORD_SIZE as usize);
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
        counts.add(&raw_profile(&[(1, 10, vec![4, u64::MAX]), (3, 30, vec![9]), (1, 11, vec![1])])).expect("two");
        assert_eq!(counts.lookup(1, 10), Lookup::Counts(&[5, u64::MAX]));
        assert_eq!(counts.lookup(1, 11), Lookup::Counts(&[1]));
        assert_eq!(counts.lookup(3, 30), Lookup::Counts(&[9]));
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

        let mut swapped = raw_profile(&[(1, 10, vec![1])]);
        swapped[1] = 0; // a counter count larger than the file
        swapped[5 * 8..6 * 8].copy_from_slice(&1_000_000u64.to_le_bytes());
        assert!(ProfileCounts::parse(&swapped).is_err());
    }
}
