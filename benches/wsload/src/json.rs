//! What the JSON workloads (`echo --json`, `broadcast --json`, `idle
//! --active`) share: game-state snapshots ([`crate::snapshot`]) as text
//! messages, compressed with permessage-deflate when `--deflate` offered it
//! and the server agreed, and every reply checked against what was sent.
//!
//! Checking is exact: every message received is inflated (if compressed)
//! and compared byte for byte with the message it answers. When the server
//! keeps no context between messages, a message compresses to the same
//! bytes for every connection; once one copy has inflated to the right
//! text, a byte-identical copy of the same compressed message is known to
//! as well, and is compared in its compressed form instead of inflated
//! again (which keeps the load generator's cost per delivery low enough not
//! to limit the server). A server that keeps its context gets its own
//! decompressor per connection, and every message is inflated.

use crate::pmd::{self, Compressor, Inflater, Params};
use crate::ws::{masked_frame, Message, TEXT};

/// Largest message we accept, inflated.
const MAX_MESSAGE: usize = 1 << 20;

/// A text frame with RSV1 (compressed) and FIN.
const TEXT_COMPRESSED: u8 = TEXT | 0x40;

/// How a JSON workload deals with permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pmd {
    /// Not offered.
    Off,
    /// Offered (as every browser does) and expected to be declined: a
    /// server with compression off, measured with the same handshake.
    Declined,
    /// Offered and required.
    On,
}

impl Pmd {
    /// From the `--offer` and `--deflate` flags.
    pub fn from_flags(offer: bool, deflate: bool) -> Pmd {
        match (offer, deflate) {
            (_, true) => Pmd::On,
            (true, false) => Pmd::Declined,
            (false, false) => Pmd::Off,
        }
    }

    /// The offer to send, if any.
    pub fn offer(self) -> Option<&'static str> {
        (self != Pmd::Off).then_some(pmd::OFFER)
    }
}

/// What the server agreed to on every connection (the same on all):
/// `Some` under [`Pmd::On`], where it must have been accepted, else `None`.
pub fn agree(answers: &[Option<String>], mode: Pmd) -> Result<Option<Params>, String> {
    let mut agreed: Option<Option<Params>> = None;
    for a in answers {
        let p = pmd::parse_answer(a.as_deref())?;
        match (mode, p) {
            (Pmd::On, None) => return Err("the server declined permessage-deflate".into()),
            (Pmd::Declined, Some(_)) => {
                return Err("the server accepted permessage-deflate (use --deflate to measure it)".into())
            }
            (Pmd::Off, Some(_)) => return Err("the server answered an extension that was not offered".into()),
            _ => {}
        }
        match agreed {
            None => agreed = Some(p),
            Some(q) if q != p => return Err(format!("connections agreed differently: {q:?} and {p:?}")),
            Some(_) => {}
        }
    }
    Ok(agreed.flatten())
}

/// Makes client frames of messages: masked text, compressed when agreed.
pub struct Framer(Option<Compressor>);

impl Framer {
    /// For what was agreed.
    pub fn new(params: Option<Params>) -> Framer {
        Framer(params.map(|p| Compressor::new(p.client_max_window_bits)))
    }

    /// Appends `msg` as one frame to `out`.
    pub fn frame(&mut self, out: &mut Vec<u8>, msg: &[u8]) {
        match self.0.as_mut() {
            Some(c) => masked_frame(out, TEXT_COMPRESSED, &c.compress(msg)),
            None => masked_frame(out, TEXT, msg),
        }
    }
}

/// Opens received messages: checks their form and inflates them.
pub struct Opener {
    params: Option<Params>,
    /// For servers that keep no context: one for all connections.
    shared: Inflater,
    buf: Vec<u8>,
}

/// A received message's text: as it came, or inflated.
pub enum Opened<'a> {
    /// Not compressed: the payload itself.
    Plain(&'a [u8]),
    /// Inflated (into the opener's buffer).
    Inflated(&'a [u8]),
}

impl Opened<'_> {
    /// The message's text.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Opened::Plain(b) | Opened::Inflated(b) => b,
        }
    }
}

impl Opener {
    /// For what was agreed.
    pub fn new(params: Option<Params>) -> Opener {
        Opener {
            params,
            shared: Inflater::default(),
            buf: Vec::new(),
        }
    }

    /// Whether the same message compresses to the same bytes on every
    /// connection (the server keeps no context).
    pub fn shareable(&self) -> bool {
        self.params.is_some_and(|p| p.server_no_context_takeover)
    }

    /// The text of `m`, inflated if compressed, with the connection's own
    /// decompressor `own` if the server keeps its context.
    pub fn open<'a>(&'a mut self, m: &Message<'a>, own: &mut Option<Inflater>) -> Result<Opened<'a>, String> {
        if m.opcode != 1 {
            return Err(format!("a reply of opcode {}, not text", m.opcode));
        }
        if !m.compressed {
            return Ok(Opened::Plain(m.payload));
        }
        let Some(p) = self.params else {
            return Err("a compressed message without permessage-deflate".into());
        };
        if p.server_no_context_takeover {
            let r = self.shared.inflate(m.payload, &mut self.buf, MAX_MESSAGE);
            self.shared.reset();
            r?;
        } else {
            own.get_or_insert_with(Inflater::default)
                .inflate(m.payload, &mut self.buf, MAX_MESSAGE)?;
        }
        Ok(Opened::Inflated(&self.buf))
    }
}

/// Counts of what came over the wire, for the bytes-per-message metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct WireCount {
    /// Messages.
    pub msgs: u64,
    /// Of them compressed.
    pub compressed: u64,
    /// Bytes of their frames, headers included.
    pub wire: u64,
    /// Bytes of their text.
    pub text: u64,
}

impl WireCount {
    /// Counts one message.
    pub fn add(&mut self, m: &Message<'_>, text_len: usize) {
        self.msgs += 1;
        self.compressed += u64::from(m.compressed);
        self.wire += m.wire as u64;
        self.text += text_len as u64;
    }

    /// Pushes wire_bytes_per_msg, text_bytes_per_msg and compressed_share.
    pub fn push(&self, m: &mut crate::Metrics) {
        let n = self.msgs.max(1) as f64;
        m.push("wire_bytes_per_msg", self.wire as f64 / n);
        m.push("text_bytes_per_msg", self.text as f64 / n);
        m.push("compressed_share", self.compressed as f64 / n);
    }
}

/// Connections with a snapshot in flight at once in [`exchange_one`].
const EXCHANGE_BATCH: usize = 16;

/// Sends one snapshot on each of `socks` (open on `/echo`, registered under
/// tokens `first_token..`) and waits until every reply is in and checked:
/// what makes an idle connection an active one (its compressor and
/// decompressor used once).
pub fn exchange_one(
    poll: &mut mio::Poll,
    socks: &mut [crate::sock::Sock],
    first_token: usize,
    params: Option<Params>,
) -> Result<(), String> {
    use std::time::{Duration, Instant};
    let ticks = crate::snapshot::ticks(socks.len().min(64));
    let mut framer = Framer::new(params);
    // A reply is the first message of its connection's context: a fresh
    // decompressor takes it, whether or not the server keeps the context.
    let mut opener = Opener::new(params.map(|p| Params {
        server_no_context_takeover: true,
        ..p
    }));
    let frames: Vec<Vec<u8>> = ticks
        .iter()
        .map(|t| {
            let mut f = Vec::new();
            framer.frame(&mut f, t);
            f
        })
        .collect();
    let mut readers: Vec<Option<crate::ws::FrameReader>> = (0..socks.len()).map(|_| None).collect();
    let (mut sent, mut left) = (0, 0);
    let mut events = mio::Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 << 10];
    let deadline = Instant::now() + Duration::from_secs(60 + socks.len() as u64 / 100);
    while sent < socks.len() || left > 0 {
        // A few at a time, as in the warm-up: the server's buffer pools
        // then grow no more than they did there, and what the RSS shows is
        // what each connection keeps.
        while left < EXCHANGE_BATCH && sent < socks.len() {
            let frame = &frames[sent % frames.len()];
            if socks[sent].write_some(frame).map_err(|e| format!("write: {e}"))? != frame.len() {
                return Err("a snapshot did not fit the socket".into());
            }
            readers[sent] = Some(crate::ws::FrameReader::default());
            sent += 1;
            left += 1;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} of {} replies missing",
                left + socks.len() - sent,
                socks.len()
            ));
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .map_err(|e| format!("poll: {e}"))?;
        for ev in events.iter() {
            let Some(i) = ev.token().0.checked_sub(first_token).filter(|&i| i < socks.len()) else {
                continue;
            };
            let Some(reader) = readers[i].as_mut() else { continue };
            let expected = &ticks[i % ticks.len()];
            let mut done = false;
            let mut err = None;
            let alive = socks[i]
                .read_chunks(&mut buf, |chunk| {
                    let r = reader.feed(chunk, |m| {
                        if done || opener.open(&m, &mut None)?.bytes() != expected {
                            return Err("a reply is not the snapshot sent".into());
                        }
                        done = true;
                        Ok(())
                    });
                    if let Err(e) = r {
                        err.get_or_insert(e);
                    }
                })
                .map_err(|e| format!("read: {e}"))?;
            if let Some(e) = err {
                return Err(e);
            }
            if !alive {
                return Err("server closed a connection".into());
            }
            if done {
                readers[i] = None;
                left -= 1;
            }
        }
    }
    Ok(())
}
