//! Records sent straight from segment files (`sendfile(2)`), as Kafka sends
//! them: a fetch response's large record sets are never read into memory.
//!
//! The fetch handler plans its reads on the blocking pool as before, but
//! for a record set of [`MIN_REGION`] bytes or more it puts a placeholder
//! into the response (a `Bytes` of the right length over [`PLACEHOLDER`],
//! which is never read) and attaches the file region to the request's
//! [`FileRegions`], in response order. The connection encodes the response
//! with `encode_sharing`, which leaves those placeholders out of the
//! buffer, and sends each region from the page cache with `sendfile(2)`
//! where its placeholder was ([`RegionSender`]).
//!
//! Threading: `sendfile` may read the disk (a page-cache miss), so it runs
//! on the blocking pool, never on an async worker; the async side only
//! waits for the socket to have room.
//!
//! Profiling multi-partition fetch showed the broker spending about two
//! thirds of its time copying records: page cache to a user buffer (with
//! the buffer zeroed first) and that buffer to the socket.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::log::ReadSlice;

/// Record sets from this size on are sent from their files; smaller ones
/// are read into memory (a placeholder must never be copied into the
/// encoded buffer, so this is also the connection's `encode_sharing`
/// threshold).
pub const MIN_REGION: usize = 16 * 1024;

/// The largest record set sent from its file (larger ones, beyond any
/// default `max.partition.fetch.bytes`, are read into memory).
pub const MAX_REGION: usize = 32 << 20;

/// The memory placeholders point into: zeroes in `.bss`, never written and
/// never read (a placeholder is always left out of the encoded response),
/// so it costs address space only.
static PLACEHOLDER: [u8; MAX_REGION] = [0; MAX_REGION];

/// Whether a record set of `len` bytes is sent from its file.
pub fn sendable(len: usize) -> bool {
    (MIN_REGION..=MAX_REGION).contains(&len)
}

/// A placeholder of `len` bytes for a region sent from its file
/// (`sendable(len)` must hold).
pub fn placeholder(len: usize) -> Bytes {
    Bytes::from_static(&PLACEHOLDER[..len.min(MAX_REGION)])
}

/// Whether `b` is a placeholder made by [`placeholder`].
pub fn is_placeholder(b: &Bytes) -> bool {
    !b.is_empty() && std::ptr::eq(b.as_ptr(), PLACEHOLDER.as_ptr())
}

/// The file regions a handler's response refers to through placeholders,
/// in the order the placeholders appear in the encoded response.
#[derive(Debug, Clone, Default)]
pub struct FileRegions(Arc<Mutex<Vec<ReadSlice>>>);

impl FileRegions {
    /// Attaches the regions of the response being returned (replacing any
    /// attached before).
    pub fn attach(&self, regions: Vec<ReadSlice>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = regions;
    }

    /// Takes the attached regions.
    pub fn take(&self) -> Vec<ReadSlice> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One piece of a response being written: encoded bytes, or a file region.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Bytes from memory.
    Bytes(Bytes),
    /// A region of a segment file, sent with `sendfile`.
    Region(ReadSlice),
}

impl Piece {
    fn len(&self) -> usize {
        match self {
            Piece::Bytes(b) => b.len(),
            Piece::Region(r) => r.len,
        }
    }
}

/// How long a blocking-pool thread waits for room in the socket before it
/// hands the wait back to the async side (which holds no thread).
const BLOCKING_WAIT_MS: i64 = 10;

/// A response's pieces and how far they have been sent.
struct Progress {
    pieces: Vec<Piece>,
    index: usize,
    sent: usize,
}

/// Writes responses that carry file regions to one connection's socket.
#[derive(Debug, Default)]
pub struct RegionSender {
    /// The socket, duplicated for the blocking pool (the duplicate shares
    /// the socket's non-blocking mode); made at the first region.
    fd: Option<Arc<OwnedFd>>,
}

impl RegionSender {
    /// Writes `pieces` in order to `stream`, whose buffered writes must have
    /// been flushed. The writing runs on the blocking pool (a `sendfile` may
    /// read the disk), one task for the whole response while the socket
    /// keeps taking bytes; when it stays full the wait moves to the async
    /// side. An error leaves the response half-written: the connection
    /// must close.
    pub async fn send(&mut self, stream: &TcpStream, pieces: Vec<Piece>) -> io::Result<()> {
        let fd = match &self.fd {
            Some(fd) => fd.clone(),
            None => {
                let fd = Arc::new(stream.as_fd().try_clone_to_owned()?);
                self.fd = Some(fd.clone());
                fd
            }
        };
        let mut progress = Progress {
            pieces,
            index: 0,
            sent: 0,
        };
        loop {
            let sock = fd.clone();
            progress = tokio::task::spawn_blocking(move || {
                send_some(&sock, &mut progress).map(|()| progress)
            })
            .await
            .map_err(io::Error::other)??;
            if progress.index >= progress.pieces.len() {
                return Ok(());
            }
            loop {
                stream.writable().await?;
                // The readiness may be stale: check the socket itself, so
                // that tokio forgets it only when there really is no room.
                match stream.try_io(Interest::WRITABLE, || has_room(&fd, 0)) {
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// Whether the socket can take bytes (or has failed, which the next write
/// reports), waiting up to `wait_ms`. With no wait, "no room" is
/// `WouldBlock`, for `try_io`.
fn has_room(fd: &OwnedFd, wait_ms: i64) -> io::Result<bool> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(fd, PollFlags::OUT)];
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: wait_ms * 1_000_000,
    };
    loop {
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !fds[0].revents().is_empty() {
        Ok(true)
    } else if wait_ms == 0 {
        Err(io::ErrorKind::WouldBlock.into())
    } else {
        Ok(false)
    }
}

/// Sends pieces until all are sent or the socket stays full for
/// [`BLOCKING_WAIT_MS`] (blocking: a `sendfile` may read the disk).
fn send_some(sock: &OwnedFd, p: &mut Progress) -> io::Result<()> {
    use rustix::io::Errno;
    while let Some(piece) = p.pieces.get(p.index) {
        let left = piece.len() - p.sent;
        if left == 0 {
            p.index += 1;
            p.sent = 0;
            continue;
        }
        let r = match piece {
            Piece::Bytes(b) => rustix::io::write(sock, &b[p.sent..]),
            Piece::Region(r) => {
                let mut pos = r.position + p.sent as u64;
                match rustix::fs::sendfile(sock, &*r.file, Some(&mut pos), left) {
                    // The file ended before the planned region: it was
                    // truncated after the read was planned, and the frame
                    // cannot be completed.
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "segment file ended inside a planned fetch region",
                        ))
                    }
                    r => r,
                }
            }
        };
        match r {
            Ok(n) => p.sent += n,
            Err(Errno::AGAIN) => {
                if !has_room(sock, BLOCKING_WAIT_MS)? {
                    return Ok(());
                }
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tokio::io::AsyncReadExt;

    fn region(bytes: &[u8], position: u64, len: usize) -> (tempfile::NamedTempFile, ReadSlice) {
        let mut f = tempfile::NamedTempFile::new().expect("test setup");
        f.write_all(bytes).expect("test setup");
        let file = Arc::new(std::fs::File::open(f.path()).expect("test setup"));
        (
            f,
            ReadSlice {
                file,
                position,
                len,
            },
        )
    }

    async fn pair() -> (TcpStream, TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("test setup");
        let a = TcpStream::connect(l.local_addr().expect("test setup"))
            .await
            .expect("test setup");
        let (b, _) = l.accept().await.expect("test setup");
        (a, b)
    }

    #[test]
    fn placeholders_are_recognised_and_sized() {
        let p = placeholder(MIN_REGION);
        assert_eq!(p.len(), MIN_REGION);
        assert!(is_placeholder(&p));
        assert!(!is_placeholder(&Bytes::from(vec![0u8; MIN_REGION])));
        assert!(!sendable(MIN_REGION - 1) && sendable(MIN_REGION) && !sendable(MAX_REGION + 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_region_larger_than_the_socket_buffer_arrives_whole() {
        // 8 MiB through a socket whose peer reads slowly: the sender waits
        // for room many times and resumes where it stopped.
        let data: Vec<u8> = (0..(8 << 20) + 123).map(|i| (i % 251) as u8).collect();
        let (_f, r) = region(&data, 77, data.len() - 77 - 11);
        let (a, mut b) = pair().await;
        let want = data[77..data.len() - 11].to_vec();
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; want.len()];
            let mut at = 0;
            while at < got.len() {
                let n = b
                    .read(&mut got[at..(at + 4096).min(want.len())])
                    .await
                    .expect("test setup");
                assert!(n > 0);
                at += n;
                if at % (1 << 20) < 4096 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
            assert!(got == want, "bytes differ");
        });
        RegionSender::default()
            .send(&a, vec![Piece::Region(r)])
            .await
            .expect("test setup");
        reader.await.expect("test setup");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_and_regions_arrive_in_order() {
        let data: Vec<u8> = (0..300_000).map(|i| (i % 253) as u8).collect();
        let (_f, r) = region(&data, 1000, 200_000);
        let (a, mut b) = pair().await;
        let pieces = vec![
            Piece::Bytes(Bytes::from_static(b"head")),
            Piece::Region(r.clone()),
            Piece::Bytes(Bytes::from_static(b"")),
            Piece::Bytes(Bytes::from_static(b"mid")),
            Piece::Region(r),
            Piece::Bytes(Bytes::from_static(b"tail")),
        ];
        let mut want = b"head".to_vec();
        want.extend_from_slice(&data[1000..201_000]);
        want.extend_from_slice(b"mid");
        want.extend_from_slice(&data[1000..201_000]);
        want.extend_from_slice(b"tail");
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; want.len()];
            b.read_exact(&mut got).await.expect("test setup");
            assert!(got == want, "bytes differ");
        });
        RegionSender::default()
            .send(&a, pieces)
            .await
            .expect("test setup");
        reader.await.expect("test setup");
    }

    #[tokio::test]
    async fn a_region_past_the_end_of_its_file_is_an_error() {
        let (_f, r) = region(&[1u8; 100], 0, MIN_REGION);
        let (a, _b) = pair().await;
        let e = RegionSender::default()
            .send(&a, vec![Piece::Region(r)])
            .await
            .expect_err("an error");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
