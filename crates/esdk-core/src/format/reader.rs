//! A bounds-checked cursor over a byte slice. Every read either succeeds within the slice or
//! reports how many more bytes were needed; nothing here allocates.

/// Not enough bytes: the read needed this many more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Short {
    /// How many bytes past the end the read wanted (a lower bound).
    pub needed: usize,
}

/// A cursor over borrowed bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// A reader at offset `pos` of `bytes` (clamped to the end); positions stay absolute.
    pub fn at(bytes: &'a [u8], pos: usize) -> Self {
        Self {
            bytes,
            pos: pos.min(bytes.len()),
        }
    }

    /// The next byte, if any, without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Whether everything was consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Take `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        if n > self.remaining() {
            return Err(Short {
                needed: n - self.remaining(),
            });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Take a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, Short> {
        Ok(self.array::<1>()?[0])
    }

    /// Big-endian u16.
    pub fn u16(&mut self) -> Result<u16, Short> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Big-endian u32.
    pub fn u32(&mut self) -> Result<u32, Short> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Big-endian u64.
    pub fn u64(&mut self) -> Result<u64, Short> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A field preceded by its u16 length.
    pub fn u16_prefixed(&mut self) -> Result<&'a [u8], Short> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_reports_shortfall() {
        let mut r = Reader::new(&[0, 2, 0xaa, 0xbb, 1]);
        assert_eq!(r.u16_prefixed().unwrap(), &[0xaa, 0xbb]);
        assert_eq!(r.u32(), Err(Short { needed: 3 }));
        assert_eq!(r.u8().unwrap(), 1);
        assert!(r.is_empty());
        let mut r = Reader::new(&[0xff, 0xff]);
        assert_eq!(r.u16_prefixed(), Err(Short { needed: 65535 }));
    }
}
