//! Reading Server-Sent Events from a streamed body, as a browser's
//! `EventSource` does (WHATWG HTML, "Parsing an event stream"): bytes in
//! as they arrive, in pieces cut anywhere, events out. Sans-IO: feed it
//! [`BodyChunk::bytes`](crate::BodyChunk::bytes) from
//! [`HvHttpClient::on_chunk`](crate::HvHttpClient::on_chunk).
//!
//! `data` lines are joined with `\n`; `event` sets the type (default
//! `message`); `id` sets the last event id, which stays for later events
//! (an id with NUL is ignored); `retry` takes digits only; comments (`:`)
//! and unknown fields are skipped; a blank line dispatches; lines end in
//! CR LF, LF or CR; a leading BOM is dropped.

use std::collections::VecDeque;

/// The UTF-8 byte order mark, dropped at the start of a stream.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// Default cap on one line plus the data of the event being read.
pub const MAX_EVENT: usize = 1 << 20;

/// One event as read from the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseMessage {
    /// The event type (`message` unless an `event:` line said otherwise).
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last event id seen so far in the stream, if any.
    pub id: Option<String>,
    /// A `retry:` delay in milliseconds that came with this event.
    pub retry: Option<u64>,
}

/// The stream broke a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// A line, or one event's data, over the reader's cap: a stream that
    /// never ends its line. Stop reading it (cancel the request).
    #[error("event over {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: usize,
    },
}

/// Turns a streamed `text/event-stream` body into [`SseMessage`]s.
///
/// ```
/// use hvws::proto::sse_reader::SseReader;
/// let mut sse = SseReader::new();
/// sse.feed(b"event: score\nid: 7\ndata: {\"a\":").unwrap();
/// assert_eq!(sse.poll_event(), None, "not complete yet");
/// sse.feed(b"1}\ndata: second line\n\n: heartbeat\n\ndata: next\n\n").unwrap();
/// let first = sse.poll_event().unwrap();
/// assert_eq!((first.event.as_str(), first.data.as_str()), ("score", "{\"a\":1}\nsecond line"));
/// assert_eq!(first.id.as_deref(), Some("7"));
/// let next = sse.poll_event().unwrap();
/// assert_eq!((next.event.as_str(), next.data.as_str(), next.id.as_deref()), ("message", "next", Some("7")));
/// assert_eq!(sse.poll_event(), None);
/// ```
#[derive(Debug)]
pub struct SseReader {
    line: Vec<u8>,
    /// The last byte fed was a CR: an LF right after it ends nothing.
    after_cr: bool,
    /// How many bytes of a leading BOM were seen; `BOM.len()` once past
    /// the start (with or without one).
    bom: usize,
    event: Option<String>,
    data: String,
    /// A data line was read since the last dispatch (the data may be
    /// empty: `data:` alone is an event with empty data).
    has_data: bool,
    id: Option<String>,
    retry: Option<u64>,
    ready: VecDeque<SseMessage>,
    limit: usize,
}

impl Default for SseReader {
    fn default() -> Self {
        SseReader::new()
    }
}

impl SseReader {
    /// A reader at the start of a stream, with the [`MAX_EVENT`] cap.
    pub fn new() -> SseReader {
        SseReader::with_limit(MAX_EVENT)
    }

    /// A reader whose lines and events may hold `limit` bytes at most.
    pub fn with_limit(limit: usize) -> SseReader {
        SseReader {
            line: Vec::new(),
            after_cr: false,
            bom: 0,
            event: None,
            data: String::new(),
            has_data: false,
            id: None,
            retry: None,
            ready: VecDeque::new(),
            limit,
        }
    }

    /// Reads the next bytes of the stream; the events they complete wait
    /// in [`SseReader::poll_event`].
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), SseError> {
        // A leading BOM is dropped, even one cut between two pieces.
        while self.bom < BOM.len() {
            let Some((&b, rest)) = bytes.split_first() else {
                return Ok(());
            };
            if b == BOM[self.bom] {
                self.bom += 1;
                bytes = rest;
            } else {
                // Not a BOM after all: what was held of it is text.
                let held = self.bom;
                self.bom = BOM.len();
                self.feed(&BOM[..held])?;
            }
        }
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.end_line(&line);
                    self.line = line;
                    self.line.clear();
                    // The data so far ends in the `\n` a dispatch drops;
                    // invalid UTF-8 became U+FFFD, three bytes for one.
                    if self.data.len() > self.limit + 1 {
                        return Err(SseError::TooLarge { limit: self.limit });
                    }
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(b);
                    if self.line.len() + self.data.len() > self.limit {
                        return Err(SseError::TooLarge { limit: self.limit });
                    }
                }
            }
        }
        Ok(())
    }

    /// The next complete event, oldest first.
    pub fn poll_event(&mut self) -> Option<SseMessage> {
        self.ready.pop_front()
    }

    /// The last event id seen (what to send as `Last-Event-ID` when
    /// reconnecting).
    pub fn last_event_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    fn end_line(&mut self, line: &[u8]) {
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        let event = self.event.take();
        let retry = self.retry.take();
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the last line's \n
        self.ready.push_back(SseMessage {
            event: event.filter(|e| !e.is_empty()).unwrap_or_else(|| "message".to_owned()),
            data,
            id: self.id.clone(),
            retry,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::sse::SseEvent;

    fn read_all(wire: &[u8], piece: usize) -> Vec<SseMessage> {
        let mut r = SseReader::new();
        let mut out = Vec::new();
        for p in wire.chunks(piece) {
            r.feed(p).unwrap();
            while let Some(e) = r.poll_event() {
                out.push(e);
            }
        }
        out
    }

    fn msg(event: &str, data: &str, id: Option<&str>, retry: Option<u64>) -> SseMessage {
        SseMessage {
            event: event.into(),
            data: data.into(),
            id: id.map(Into::into),
            retry,
        }
    }

    #[test]
    fn any_split_and_any_line_ending_read_the_same() {
        let wire = "\u{feff}: hello\r\nevent: a\rdata: 1\r\ndata:  two spaces\n\nid: x\ndata\nretry: 3000\n\nretry: 1x\ndata: y\n\n";
        let want = vec![
            msg("a", "1\n two spaces", None, None),
            msg("message", "", Some("x"), Some(3000)),
            msg("message", "y", Some("x"), None),
        ];
        for piece in 1..=wire.len() {
            assert_eq!(read_all(wire.as_bytes(), piece), want, "{piece}");
        }
    }

    #[test]
    fn what_hvws_server_writes_reads_back() {
        let events = [
            SseEvent::new("line one\nline two").event("tick").id("7"),
            SseEvent::comment("heartbeat"),
            SseEvent::new("{\"score\":1}"),
        ];
        let wire: String = events.iter().map(ToString::to_string).collect();
        assert_eq!(
            read_all(wire.as_bytes(), 5),
            vec![
                msg("tick", "line one\nline two", Some("7"), None),
                msg("message", "{\"score\":1}", Some("7"), None)
            ]
        );
    }

    #[test]
    fn no_data_no_event_and_an_unfinished_event_waits() {
        assert!(read_all(b"event: x\nid: 1\n\n", 3).is_empty());
        let mut r = SseReader::new();
        r.feed(b"data: half").unwrap();
        assert_eq!(r.poll_event(), None);
        r.feed(b"\n").unwrap();
        assert_eq!(r.poll_event(), None, "needs the blank line");
        assert_eq!(r.last_event_id(), None);
        r.feed(b"\nid: a\0b\n").unwrap();
        assert_eq!(r.poll_event(), Some(msg("message", "half", None, None)));
        assert_eq!(r.last_event_id(), None, "an id with NUL is ignored");
    }

    #[test]
    fn a_bom_cut_anywhere_is_dropped_and_half_a_bom_is_text() {
        let wire = "\u{feff}data: x\n\n";
        for piece in 1..=4 {
            assert_eq!(
                read_all(wire.as_bytes(), piece),
                vec![msg("message", "x", None, None)],
                "{piece}"
            );
        }
        // Two bytes of a BOM, then a field: the bytes stay in the line (and
        // make its field name unknown).
        let mut wire = vec![0xef, 0xbb];
        wire.extend_from_slice(b"data: y\n\ndata: z\n\n");
        for piece in 1..=3 {
            let got: Vec<String> = read_all(&wire, piece).into_iter().map(|m| m.data).collect();
            assert_eq!(got, ["z"], "{piece}");
        }
    }

    #[test]
    fn invalid_utf8_cannot_grow_the_data_past_the_cap() {
        // Each invalid byte becomes U+FFFD, three bytes.
        let mut r = SseReader::with_limit(30);
        let mut wire = b"data: ".to_vec();
        wire.extend_from_slice(&[0xff; 20]);
        wire.push(b'\n');
        assert_eq!(r.feed(&wire), Err(SseError::TooLarge { limit: 30 }));
    }

    #[test]
    fn an_endless_line_hits_the_cap() {
        let mut r = SseReader::with_limit(100);
        r.feed(b"data: ").unwrap();
        assert_eq!(r.feed(&[b'a'; 200]), Err(SseError::TooLarge { limit: 100 }));
    }
}
