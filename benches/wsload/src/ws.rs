//! The little of WebSocket a load generator needs: a fixed upgrade request,
//! masked client frames, server frame lengths, and opening many connections
//! at once on a mio poller (plain or TLS, see [`crate::sock`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::sock::{Sock, Tls};

/// The masking key of every frame we send; servers must unmask whatever it is.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Text frame opcode byte with FIN.
pub const TEXT: u8 = 0x81;
/// Binary frame opcode byte with FIN.
pub const BINARY: u8 = 0x82;
/// Close frame opcode byte with FIN.
pub const CLOSE: u8 = 0x88;

/// The upgrade request for `path` (the key is the RFC's sample; the server
/// only has to answer it), offering the extensions in `offer` if any.
pub fn upgrade_request(path: &str, offer: Option<&str>) -> Vec<u8> {
    let ext = offer.map_or(String::new(), |o| format!("Sec-WebSocket-Extensions: {o}\r\n"));
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
    )
    .into_bytes()
}

/// Length of a frame header for a payload of `len` bytes (`masked`: with key).
pub fn header_len(len: usize, masked: bool) -> usize {
    let base = match len {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    };
    base + if masked { 4 } else { 0 }
}

/// Appends a masked client frame (FIN set) with opcode byte `b0` to `out`.
pub fn masked_frame(out: &mut Vec<u8>, b0: u8, payload: &[u8]) {
    let len = payload.len();
    out.push(b0);
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=65535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
}

/// Position of the end of an HTTP head (`\r\n\r\n`) in `buf`, past it.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Checks a complete response head is a `101 Switching Protocols`.
pub fn check_101(head: &[u8]) -> Result<(), String> {
    if head.starts_with(b"HTTP/1.1 101") {
        Ok(())
    } else {
        let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
        Err(format!("upgrade refused: {}", String::from_utf8_lossy(line)))
    }
}

enum Opening {
    Connecting,
    Reading(Vec<u8>),
    Open,
}

/// Opens `n` WebSocket connections to `path` (under TLS if `tls` says so),
/// at most `parallel` handshakes at a time, registered with `poll` under
/// tokens `first_token..`. Returns them open and drained, in token order.
pub fn open_many(
    poll: &mut Poll,
    addr: SocketAddr,
    tls: &Tls,
    path: &str,
    n: usize,
    first_token: usize,
    parallel: usize,
) -> Result<Vec<Sock>, String> {
    let opened = open_many_ext(poll, addr, tls, path, None, n, first_token, parallel)?;
    Ok(opened.into_iter().map(|(s, _)| s).collect())
}

/// [`open_many`] offering the extensions in `offer`: each connection comes
/// with the server's `Sec-WebSocket-Extensions` answer, if any.
#[allow(clippy::too_many_arguments)]
pub fn open_many_ext(
    poll: &mut Poll,
    addr: SocketAddr,
    tls: &Tls,
    path: &str,
    offer: Option<&str>,
    n: usize,
    first_token: usize,
    parallel: usize,
) -> Result<Vec<(Sock, Option<String>)>, String> {
    open_many_paths(poll, addr, tls, &|_| path.to_string(), offer, n, first_token, parallel)
}

/// [`open_many_ext`] with a path per connection: connection `i` (token
/// `first_token + i`) asks for `path_of(i)`.
#[allow(clippy::too_many_arguments)]
pub fn open_many_paths(
    poll: &mut Poll,
    addr: SocketAddr,
    tls: &Tls,
    path_of: &dyn Fn(usize) -> String,
    offer: Option<&str>,
    n: usize,
    first_token: usize,
    parallel: usize,
) -> Result<Vec<(Sock, Option<String>)>, String> {
    let opened = open_inner(poll, addr, tls, path_of, offer, n, first_token, parallel, false)?;
    Ok(opened.into_iter().map(|(s, ext, _)| (s, ext)).collect())
}

/// [`open_many`] for a server that may send as soon as the connection is
/// open: each connection comes with the bytes that followed the 101 in
/// the reads of the handshake (its first frames), instead of that being
/// an error.
pub fn open_many_keep(
    poll: &mut Poll,
    addr: SocketAddr,
    tls: &Tls,
    path: &str,
    n: usize,
    first_token: usize,
    parallel: usize,
) -> Result<Vec<(Sock, Vec<u8>)>, String> {
    let opened = open_inner(
        poll,
        addr,
        tls,
        &|_| path.to_string(),
        None,
        n,
        first_token,
        parallel,
        true,
    )?;
    Ok(opened.into_iter().map(|(s, _, rest)| (s, rest)).collect())
}

#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn open_inner(
    poll: &mut Poll,
    addr: SocketAddr,
    tls: &Tls,
    path_of: &dyn Fn(usize) -> String,
    offer: Option<&str>,
    n: usize,
    first_token: usize,
    parallel: usize,
    keep: bool,
) -> Result<Vec<(Sock, Option<String>, Vec<u8>)>, String> {
    let path = path_of(0);
    let mut rest: Vec<Vec<u8>> = vec![Vec::new(); n];
    let mut answers: Vec<Option<String>> = vec![None; n];
    let mut socks: Vec<Sock> = Vec::with_capacity(n);
    let mut states: Vec<Opening> = Vec::with_capacity(n);
    let mut events = Events::with_capacity(1024);
    let mut open = 0;
    let mut buf = vec![0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(60 + n as u64 / 100);
    while open < n {
        while socks.len() < n && socks.len() - open < parallel {
            let mut s = Sock::connect(addr, tls).map_err(|e| format!("connect {addr}: {e}"))?;
            let token = Token(first_token + socks.len());
            poll.registry()
                .register(&mut s.tcp, token, Interest::READABLE | Interest::WRITABLE)
                .map_err(|e| format!("register: {e}"))?;
            socks.push(s);
            states.push(Opening::Connecting);
        }
        if Instant::now() > deadline {
            return Err(format!("opened only {open} of {n} connections to {path} in time"));
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .map_err(|e| format!("poll: {e}"))?;
        for ev in events.iter() {
            // Connections opened earlier on the same poller (idle's warm-up
            // ones) may still get events, e.g. a server's late TLS session
            // tickets: not ours to handle here.
            let Some(i) = ev.token().0.checked_sub(first_token).filter(|&i| i < socks.len()) else {
                continue;
            };
            let sock = &mut socks[i];
            if let Opening::Connecting = states[i] {
                if !sock.connected().map_err(|e| format!("connect {addr}: {e}"))? {
                    continue;
                }
                sock.set_nodelay();
                let request = upgrade_request(&path_of(i), offer);
                if sock.write_some(&request).map_err(|e| format!("write: {e}"))? != request.len() {
                    return Err("upgrade request did not fit the socket".into());
                }
                states[i] = Opening::Reading(Vec::new());
            }
            if ev.is_writable() {
                sock.flush().map_err(|e| format!("write: {e}"))?;
            }
            if let Opening::Reading(head) = &mut states[i] {
                let alive = sock
                    .read_chunks(&mut buf, |c| head.extend_from_slice(c))
                    .map_err(|e| format!("read: {e}"))?;
                if let Some(end) = head_end(head) {
                    check_101(head)?;
                    if end != head.len() {
                        if !keep {
                            return Err("server sent data right after the 101".into());
                        }
                        rest[i] = head[end..].to_vec();
                    }
                    answers[i] = crate::pmd::extensions_header(head);
                    states[i] = Opening::Open;
                    open += 1;
                } else if !alive {
                    return Err("server closed during the handshake".into());
                }
            }
        }
    }
    Ok(socks
        .into_iter()
        .zip(answers)
        .zip(rest)
        .map(|((s, a), r)| (s, a, r))
        .collect())
}

/// A data message as it came off the wire.
#[derive(Debug)]
pub struct Message<'a> {
    /// Text (1) or binary (2).
    pub opcode: u8,
    /// RSV1 on its first frame: compressed (permessage-deflate).
    pub compressed: bool,
    /// Its payload (all frames' together), as sent.
    pub payload: &'a [u8],
    /// Bytes of frames (headers included) it took on the wire.
    pub wire: usize,
}

/// Splits a server's byte stream into data messages (frames unmasked, any
/// length, fragmented or not). Control frames are skipped, except a close,
/// which is an error here: the workloads never expect one.
#[derive(Debug, Default)]
pub struct FrameReader {
    /// Bytes of an incomplete frame.
    buf: Vec<u8>,
    /// The message being fragmented: opcode, RSV1, payload so far, wire bytes.
    frag: Option<(u8, bool, Vec<u8>, usize)>,
}

impl FrameReader {
    /// Feeds received bytes; calls `f` for every complete data message.
    pub fn feed(&mut self, chunk: &[u8], mut f: impl FnMut(Message<'_>) -> Result<(), String>) -> Result<(), String> {
        if self.buf.is_empty() {
            let used = parse(chunk, &mut self.frag, &mut f)?;
            self.buf.extend_from_slice(&chunk[used..]);
        } else {
            self.buf.extend_from_slice(chunk);
            let used = parse(&self.buf, &mut self.frag, &mut f)?;
            self.buf.drain(..used);
        }
        Ok(())
    }
}

/// Parses whole frames from `data`; returns the bytes used.
fn parse(
    data: &[u8],
    frag: &mut Option<(u8, bool, Vec<u8>, usize)>,
    f: &mut impl FnMut(Message<'_>) -> Result<(), String>,
) -> Result<usize, String> {
    let mut pos = 0;
    loop {
        let d = &data[pos..];
        if d.len() < 2 {
            return Ok(pos);
        }
        if d[1] & 0x80 != 0 {
            return Err("the server sent a masked frame".into());
        }
        let (len, hlen) = match d[1] & 0x7f {
            126 if d.len() >= 4 => (u16::from_be_bytes([d[2], d[3]]) as usize, 4),
            127 if d.len() >= 10 => (u64::from_be_bytes(d[2..10].try_into().expect("8 bytes")) as usize, 10),
            126 | 127 => return Ok(pos),
            n => (n as usize, 2),
        };
        if d.len() < hlen + len {
            return Ok(pos);
        }
        let (fin, rsv1, opcode) = (d[0] & 0x80 != 0, d[0] & 0x40 != 0, d[0] & 0x0f);
        let payload = &d[hlen..hlen + len];
        let wire = hlen + len;
        pos += wire;
        match opcode {
            8 => return Err("the server closed the connection".into()),
            9 | 10 => {}
            0 => {
                let Some((_, _, buf, w)) = frag.as_mut() else {
                    return Err("a continuation frame with no message".into());
                };
                buf.extend_from_slice(payload);
                *w += wire;
                if fin {
                    let (opcode, compressed, buf, wire) = frag.take().expect("checked");
                    f(Message {
                        opcode,
                        compressed,
                        payload: &buf,
                        wire,
                    })?;
                }
            }
            1 | 2 if frag.is_some() => return Err("a new message inside a fragmented one".into()),
            1 | 2 if fin => f(Message {
                opcode,
                compressed: rsv1,
                payload,
                wire,
            })?,
            1 | 2 => *frag = Some((opcode, rsv1, payload.to_vec(), wire)),
            _ => return Err(format!("unexpected opcode {opcode}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_in_pieces_and_fragments() {
        // A short text, a compressed 300-byte binary with a 16-bit length,
        // a ping, and a text in two fragments.
        let mut wire = vec![0x81, 3, b'a', b'b', b'c', 0xc2, 126, 1, 44];
        wire.extend(std::iter::repeat_n(7u8, 300));
        wire.extend([0x89, 0, 0x01, 2, b'h', b'e', 0x80, 1, b'y']);
        for step in [1, 2, 5, wire.len()] {
            let mut r = FrameReader::default();
            let mut got = Vec::new();
            for c in wire.chunks(step) {
                r.feed(c, |m| {
                    got.push((m.opcode, m.compressed, m.payload.to_vec(), m.wire));
                    Ok(())
                })
                .unwrap();
            }
            assert_eq!(got.len(), 3, "step {step}");
            assert_eq!(got[0], (1, false, b"abc".to_vec(), 5));
            assert_eq!((got[1].0, got[1].1, got[1].2.len(), got[1].3), (2, true, 300, 304));
            assert_eq!(got[2], (1, false, b"hey".to_vec(), 7));
        }
    }
}
