//! A bounds-checked cursor over the bytes of LLVM's binary coverage formats: fixed-width integers in
//! either byte order and ULEB128 numbers. Every read fails instead of panicking on short input, with a
//! message saying what was being read. Pure: no I/O.

/// Byte order of the binary or profile being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endian {
    Little,
    Big,
}

/// Reads forward through a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    endian: Endian,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8], endian: Endian) -> Cursor<'a> {
        Cursor { data, pos: 0, endian }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Offset of the next byte from the start of the slice.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!("{what}: needs {n} bytes, {} left", self.remaining()));
        }
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    /// Skips to the next multiple of `align` from the start of the slice (or to its end).
    pub(crate) fn align(&mut self, align: usize) {
        let next = self.pos.div_ceil(align) * align;
        self.pos = next.min(self.data.len());
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, String> {
        let bytes: [u8; 4] = self.take(4, what)?.try_into().expect("take returned 4 bytes");
        Ok(match self.endian {
            Endian::Little => u32::from_le_bytes(bytes),
            Endian::Big => u32::from_be_bytes(bytes),
        })
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, String> {
        let bytes: [u8; 8] = self.take(8, what)?.try_into().expect("take returned 8 bytes");
        Ok(match self.endian {
            Endian::Little => u64::from_le_bytes(bytes),
            Endian::Big => u64::from_be_bytes(bytes),
        })
    }

    /// An unsigned LEB128 number of at most 64 bits.
    pub(crate) fn uleb128(&mut self, what: &str) -> Result<u64, String> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let byte = *self.data.get(self.pos).ok_or_else(|| format!("{what}: LEB128 number runs past the end"))?;
            self.pos += 1;
            if shift >= 64 || (shift == 63 && byte & 0x7e != 0) {
                return Err(format!("{what}: LEB128 number does not fit in 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// A LEB128 number below `limit`.
    pub(crate) fn uleb128_below(&mut self, limit: u64, what: &str) -> Result<u64, String> {
        let value = self.uleb128(what)?;
        if value >= limit {
            return Err(format!("{what}: {value} is not below {limit}"));
        }
        Ok(value)
    }

    /// A LEB128 count of items that each take at least one byte: larger than what is left is an error.
    pub(crate) fn uleb128_size(&mut self, what: &str) -> Result<usize, String> {
        let value = self.uleb128(what)?;
        usize::try_from(value)
            .ok()
            .filter(|&v| v <= self.remaining())
            .ok_or_else(|| format!("{what}: {value} is more than the {} bytes left", self.remaining()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_leb128_and_fixed_width_numbers_in_both_byte_orders() {
        let mut c = Cursor::new(&[0xe5, 0x8e, 0x26, 0x7f, 0x00], Endian::Little);
        assert_eq!(c.uleb128("a").expect("three bytes"), 624_485);
        assert_eq!(c.uleb128("b").expect("one byte"), 127);
        assert_eq!(c.uleb128("c").expect("zero"), 0);
        assert!(c.is_empty());

        let bytes = [1, 0, 0, 0, 0, 0, 0, 2];
        assert_eq!(Cursor::new(&bytes, Endian::Little).u64("x").expect("8 bytes"), 0x0200_0000_0000_0001);
        assert_eq!(Cursor::new(&bytes, Endian::Big).u64("x").expect("8 bytes"), 0x0100_0000_0000_0002);
        assert_eq!(Cursor::new(&bytes, Endian::Big).u32("x").expect("4 bytes"), 0x0100_0000);
    }

    #[test]
    fn short_or_oversized_input_is_an_error_naming_what_was_read() {
        let err = Cursor::new(&[0x80, 0x80], Endian::Little).uleb128("region count").expect_err("unterminated");
        assert!(err.starts_with("region count: "), "{err}");
        let err = Cursor::new(&[1, 2], Endian::Little).u32("header").expect_err("short");
        assert_eq!(err, "header: needs 4 bytes, 2 left");
        let eleven = [0xff; 10].iter().copied().chain([0x01]).collect::<Vec<u8>>();
        assert!(Cursor::new(&eleven, Endian::Little).uleb128("big").is_err());
        assert!(Cursor::new(&[5, 0], Endian::Little).uleb128_size("n").is_err());
        assert_eq!(Cursor::new(&[1, 0], Endian::Little).uleb128_size("n").expect("fits"), 1);
        assert!(Cursor::new(&[9], Endian::Little).uleb128_below(9, "id").is_err());
    }

    #[test]
    fn align_moves_to_the_next_multiple_from_the_start() {
        let data = [0u8; 20];
        let mut c = Cursor::new(&data, Endian::Little);
        c.take(3, "x").expect("3 bytes");
        c.align(8);
        assert_eq!(c.position(), 8);
        c.align(8);
        assert_eq!(c.position(), 8);
        c.take(9, "y").expect("9 bytes");
        c.align(8);
        assert_eq!(c.position(), 20, "clamped to the end");
    }
}
