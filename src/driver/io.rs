//! One read, one flush: the two syscall loops every socket goes through.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

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
