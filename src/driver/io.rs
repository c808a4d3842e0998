//! One read, one flush: the two syscall loops every socket goes through.

use std::io::{self, IoSlice, Read, Write};

use mio::net::TcpStream;

use crate::proto::outbox::MAX_IOV;
use crate::proto::Outbox;

/// What one read attempt produced.
#[derive(Debug)]
pub(crate) enum ReadResult {
    Data(usize),
    Eof,
    WouldBlock,
    Failed(io::Error),
}

pub(crate) fn read_into(sock: &mut TcpStream, buf: &mut [u8]) -> ReadResult {
    loop {
        return match sock.read(buf) {
            Ok(0) => ReadResult::Eof,
            Ok(n) => ReadResult::Data(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadResult::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => ReadResult::Failed(e),
        };
    }
}

/// What a flush attempt left.
#[derive(Debug)]
pub(crate) enum FlushResult {
    /// Everything queued is written.
    Done,
    /// The socket is full; the rest waits for a writable edge.
    Blocked,
    Failed(io::Error),
}

/// Writes as much of `out` as the socket takes, in one `write` when it
/// takes all (the common case), and keeps the unwritten rest in `out`.
pub(crate) fn write_from(sock: &mut TcpStream, out: &mut Vec<u8>) -> FlushResult {
    write_plain(sock, out)
}

/// [`write_from`] on any writer.
#[inline]
fn write_plain<W: Write>(sock: &mut W, out: &mut Vec<u8>) -> FlushResult {
    let mut written = 0;
    let result = loop {
        if written == out.len() {
            break FlushResult::Done;
        }
        match sock.write(&out[written..]) {
            Ok(0) => break FlushResult::Failed(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break FlushResult::Blocked,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break FlushResult::Failed(e),
        }
    };
    match result {
        FlushResult::Done => out.clear(),
        _ => {
            out.drain(..written);
        }
    }
    result
}

/// Writes as much of a connection's queue as `sock` takes: with no shared
/// payload queued, `buf` alone as [`write_from`] does (one `write`);
/// otherwise the inline runs and the shared payloads in order, by
/// `writev`, up to [`MAX_IOV`] slices a call. What was written is
/// consumed from the queue; the rest stays for the next flush.
pub(crate) fn write_outbox<W: Write>(sock: &mut W, out: &mut Outbox) -> FlushResult {
    if !out.has_shared() {
        return write_plain(sock, &mut out.buf);
    }
    loop {
        if out.is_empty() {
            return FlushResult::Done;
        }
        let written = {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = out.io_slices(&mut iov);
            sock.write_vectored(&iov[..n])
        };
        match written {
            Ok(0) => return FlushResult::Failed(io::ErrorKind::WriteZero.into()),
            Ok(written) => out.consume(written),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return FlushResult::Blocked,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return FlushResult::Failed(e),
        }
    }
}
