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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// A socket that takes at most `step` bytes a call, `budget` in all,
    /// then says `WouldBlock`; an `Interrupted` before every other call.
    struct Trickle {
        wire: Vec<u8>,
        step: usize,
        budget: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls % 2 == 1 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut took = 0;
            for b in bufs {
                let k = b.len().min(self.step - took).min(self.budget);
                self.wire.extend_from_slice(&b[..k]);
                took += k;
                self.budget -= k;
                if took == self.step || self.budget == 0 {
                    break;
                }
            }
            Ok(took)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn queue() -> (Outbox, Vec<u8>) {
        let mut out = Outbox::default();
        let big = Bytes::from((0..40_000u32).map(|i| (i % 253) as u8).collect::<Vec<u8>>());
        out.buf.extend_from_slice(b"head");
        out.push_shared(big.clone());
        out.buf.extend_from_slice(b"mid");
        out.push_shared(big.slice(5..20_005));
        out.buf.extend_from_slice(b"tail");
        let want = [&b"head"[..], &big, b"mid", &big[5..20_005], b"tail"].concat();
        (out, want)
    }

    #[test]
    fn a_queue_with_shared_payloads_goes_out_whole_through_a_trickling_socket() {
        for step in [1, 7, 4_096, 39_999, 1 << 20] {
            let (mut out, want) = queue();
            let mut sock = Trickle {
                wire: Vec::new(),
                step,
                budget: usize::MAX,
                calls: 0,
            };
            assert!(matches!(write_outbox(&mut sock, &mut out), FlushResult::Done), "{step}");
            assert!(sock.wire == want, "{step} bytes a write: the wire differs");
            assert!(out.is_empty());
        }
    }

    #[test]
    fn a_full_socket_leaves_the_rest_queued_in_order() {
        let (mut out, want) = queue();
        let mut sock = Trickle {
            wire: Vec::new(),
            step: 10_000,
            budget: 25_000,
            calls: 0,
        };
        assert!(matches!(write_outbox(&mut sock, &mut out), FlushResult::Blocked));
        assert_eq!(sock.wire.len(), 25_000);
        assert_eq!(out.len(), want.len() - 25_000, "the rest, shared bytes included");
        // The socket drains: the next flush sends the rest.
        sock.budget = usize::MAX;
        assert!(matches!(write_outbox(&mut sock, &mut out), FlushResult::Done));
        assert!(sock.wire == want, "the wire differs");
    }

    #[test]
    fn a_socket_that_takes_nothing_is_an_error_not_a_spin() {
        struct Zero;
        impl Write for Zero {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Ok(0)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (mut out, _) = queue();
        assert!(matches!(write_outbox(&mut Zero, &mut out), FlushResult::Failed(_)));
        let mut plain = Outbox::default();
        plain.buf.extend_from_slice(b"x");
        assert!(matches!(write_outbox(&mut Zero, &mut plain), FlushResult::Failed(_)));
    }
}
