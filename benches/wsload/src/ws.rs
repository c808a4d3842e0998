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
/// only has to answer it).
pub fn upgrade_request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
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
#[allow(clippy::too_many_arguments)]
pub fn open_many(
    poll: &mut Poll,
    addr: SocketAddr,
    tls: &Tls,
    path: &str,
    n: usize,
    first_token: usize,
    parallel: usize,
) -> Result<Vec<Sock>, String> {
    let request = upgrade_request(path);
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
                        return Err("server sent data right after the 101".into());
                    }
                    states[i] = Opening::Open;
                    open += 1;
                } else if !alive {
                    return Err("server closed during the handshake".into());
                }
            }
        }
    }
    Ok(socks)
}
