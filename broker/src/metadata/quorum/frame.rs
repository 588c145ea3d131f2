//! On-disk framing shared by the log, vote and snapshot files, and atomic
//! file replacement.
//!
//! A frame is `[len: u32 LE][crc32c(payload): u32 LE][payload: len bytes]`.
//! Payloads are JSON.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Bytes of a frame header.
pub const HEADER_LEN: usize = 8;
/// The largest payload accepted when reading; anything larger is corruption.
pub const MAX_PAYLOAD: usize = 256 * 1024 * 1024;

/// Encodes one frame around `payload`.
pub fn encode(payload: &[u8]) -> io::Result<Vec<u8>> {
    if payload.len() > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame payload too large",
        ));
    }
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame payload too large"))?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Decodes the frame starting at `buf[0]`. Returns the payload and the total
/// frame length, or `None` if the bytes do not hold a whole, valid frame (a
/// torn or corrupt tail).
pub fn decode(buf: &[u8]) -> Option<(&[u8], usize)> {
    let len_bytes: [u8; 4] = buf.get(0..4)?.try_into().ok()?;
    let crc_bytes: [u8; 4] = buf.get(4..8)?.try_into().ok()?;
    let len = usize::try_from(u32::from_le_bytes(len_bytes)).ok()?;
    if len > MAX_PAYLOAD {
        return None;
    }
    let end = HEADER_LEN.checked_add(len)?;
    let payload = buf.get(HEADER_LEN..end)?;
    if crc32c::crc32c(payload) != u32::from_le_bytes(crc_bytes) {
        return None;
    }
    Some((payload, end))
}

/// Reads a file holding exactly one frame. `Ok(None)` if the file is absent;
/// an error if it is present but not one valid frame.
pub fn read_single(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let buf = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match decode(&buf) {
        Some((payload, n)) if n == buf.len() => Ok(Some(payload.to_vec())),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is corrupt", path.display()),
        )),
    }
}

/// Atomically replaces `path` with `bytes`: write a temp file, optionally
/// fsync it, rename it over `path`, and optionally fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    // A unique temp name per write: concurrent writers of the same file
    // must not rename each other's temp file away.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{n}"));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
    }
    fs::rename(&tmp, path)?;
    if durable {
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
    }
    Ok(())
}

/// Fsyncs a directory, making renames and creations in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_torn() {
        let f = encode(b"hello").expect("encode");
        assert_eq!(decode(&f), Some((&b"hello"[..], f.len())));
        assert_eq!(decode(&f[..f.len() - 1]), None);
        let mut bad = f.clone();
        bad[HEADER_LEN] ^= 1;
        assert_eq!(decode(&bad), None);
        assert_eq!(decode(&[1, 2, 3]), None);
    }
}
