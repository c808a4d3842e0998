//! `--browser-headers` for `idle`: connections open with the upgrade request
//! Chromium sends for `new WebSocket(url)` (13 headers, about 700 bytes,
//! [`upgrade_request`]) instead of the minimal one, so the server's memory
//! per connection is measured with what a browser really hands it. As a
//! browser does, it always offers permessage-deflate.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::json::Pmd;
use crate::sock::{Sock, Tls};
use crate::ws::{check_101, head_end};

/// What to expect of the server's answer: a browser offers
/// permessage-deflate even where `--offer`/`--deflate` were not given, so
/// without them it must be declined.
pub fn expected(browser: bool, pmd: Pmd) -> Pmd {
    match pmd {
        Pmd::Off if browser => Pmd::Declined,
        other => other,
    }
}

/// Chromium 131's upgrade request for `ws://{host}{path}` from a page on
/// `http://{host}`, with a modest first-party cookie (the key is the RFC's
/// sample: the server only has to answer it).
pub fn upgrade_request(path: &str, host: SocketAddr) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\n\
         Host: {host}\r\n\
         Connection: Upgrade\r\n\
         Pragma: no-cache\r\n\
         Cache-Control: no-cache\r\n\
         User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
         Upgrade: websocket\r\n\
         Origin: http://{host}\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Accept-Encoding: gzip, deflate, br, zstd\r\n\
         Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n\
         Cookie: _ga=GA1.1.1873502213.1732104432; _gid=GA1.2.2093857261.1732104432; lang=en-US; session=9f8e7d6c5b4a39281706f5e4d3c2b1a0; theme=dark; consent=analytics%3Dfalse%26ads%3Dfalse\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Extensions: {}\r\n\
         \r\n",
        crate::pmd::OFFER
    )
    .into_bytes()
}

/// Opens `n` WebSocket connections to `path` with [`upgrade_request`], at
/// most `parallel` handshakes at a time, registered with `poll` under
/// tokens `first_token..`; as `ws::open_many_ext`, each with the server's
/// `Sec-WebSocket-Extensions` answer, if any.
#[allow(clippy::too_many_arguments)]
pub fn open_many(
    poll: &mut Poll,
    addr: SocketAddr,
    tls: &Tls,
    path: &str,
    n: usize,
    first_token: usize,
    parallel: usize,
) -> Result<Vec<(Sock, Option<String>)>, String> {
    let request = upgrade_request(path, addr);
    let mut answers: Vec<Option<String>> = vec![None; n];
    let mut socks: Vec<Sock> = Vec::with_capacity(n);
    // `None`: connecting; `Some(head)`: reading the answer; taken: open.
    let mut heads: Vec<Option<Option<Vec<u8>>>> = Vec::with_capacity(n);
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
            heads.push(Some(None));
        }
        if Instant::now() > deadline {
            return Err(format!("opened only {open} of {n} connections to {path} in time"));
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .map_err(|e| format!("poll: {e}"))?;
        for ev in events.iter() {
            let Some(i) = ev.token().0.checked_sub(first_token).filter(|&i| i < socks.len()) else {
                continue;
            };
            let sock = &mut socks[i];
            if let Some(None) = heads[i] {
                if !sock.connected().map_err(|e| format!("connect {addr}: {e}"))? {
                    continue;
                }
                sock.set_nodelay();
                if sock.write_some(&request).map_err(|e| format!("write: {e}"))? != request.len() {
                    return Err("upgrade request did not fit the socket".into());
                }
                heads[i] = Some(Some(Vec::new()));
            }
            if ev.is_writable() {
                sock.flush().map_err(|e| format!("write: {e}"))?;
            }
            if let Some(Some(head)) = &mut heads[i] {
                let alive = sock
                    .read_chunks(&mut buf, |c| head.extend_from_slice(c))
                    .map_err(|e| format!("read: {e}"))?;
                if let Some(end) = head_end(head) {
                    check_101(head)?;
                    if end != head.len() {
                        return Err("server sent data right after the 101".into());
                    }
                    answers[i] = crate::pmd::extensions_header(head);
                    heads[i] = None;
                    open += 1;
                } else if !alive {
                    return Err("server closed during the handshake".into());
                }
            }
        }
    }
    Ok(socks.into_iter().zip(answers).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_request_is_browser_sized() {
        let req = super::upgrade_request("/echo", "127.0.0.1:9001".parse().unwrap());
        let text = String::from_utf8(req).unwrap();
        let headers = text.trim_end().lines().count() - 1;
        assert_eq!(headers, 13);
        assert!((650..800).contains(&text.len()), "{} bytes", text.len());
    }
}
