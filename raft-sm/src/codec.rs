//! Little-endian byte helpers shared by the binary encodings of the key-value
//! state machine (`kv`) and of messages and log entries (`wire`).

/// Appends `value` as 8 little-endian bytes.
pub(crate) fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends `bytes` after a 4-byte length.
pub(crate) fn put_bytes_u32_len(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("field longer than 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends `bytes` after an 8-byte length.
pub(crate) fn put_bytes_u64_len(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Streams an image to a sink in chunks of about [`ImageWriter::CHUNK_BYTES`]:
/// records are encoded into a small buffer that is written out whenever it
/// fills, so an image is never held whole in memory (nor regrown, copied and
/// zeroed page by page as one large `Vec` would be).
pub(crate) struct ImageWriter<'a> {
    buf: Vec<u8>,
    sink: &'a mut dyn std::io::Write,
}

impl<'a> ImageWriter<'a> {
    /// The buffer size at which records are written out.
    pub(crate) const CHUNK_BYTES: usize = 64 << 10;

    pub(crate) fn new(sink: &'a mut dyn std::io::Write) -> ImageWriter<'a> {
        ImageWriter { buf: Vec::with_capacity(Self::CHUNK_BYTES + 4096), sink }
    }

    /// Where the next record is encoded.
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Ends a record: writes the buffer out once it is full.
    pub(crate) fn record_done(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= Self::CHUNK_BYTES {
            self.sink.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes what is left.
    pub(crate) fn finish(self) -> std::io::Result<()> {
        self.sink.write_all(&self.buf)
    }
}

/// Reads what the `put_*` helpers wrote; errors say what was wrong.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], &'static str> {
        let end = self.at.checked_add(len).ok_or("length overflow")?;
        let slice = self.bytes.get(self.at..end).ok_or("truncated")?;
        self.at = end;
        Ok(slice)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn bool(&mut self) -> Result<bool, &'static str> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err("bad boolean"),
        }
    }

    pub(crate) fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    pub(crate) fn bytes_u32_len(&mut self) -> Result<&'a [u8], &'static str> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize;
        self.take(len)
    }

    pub(crate) fn bytes_u64_len(&mut self) -> Result<&'a [u8], &'static str> {
        let len = usize::try_from(self.u64()?).map_err(|_| "length overflow")?;
        self.take(len)
    }

    pub(crate) fn string_u32_len(&mut self) -> Result<String, &'static str> {
        let bytes = self.bytes_u32_len()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "string is not UTF-8")
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.at..];
        self.at = self.bytes.len();
        rest
    }

    pub(crate) fn is_done(&self) -> bool {
        self.at == self.bytes.len()
    }
}
