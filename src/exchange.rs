//! HTTP answers that outlive their route handler: deferred responses
//! (answered on a later tick, or from another thread), streamed bodies
//! (Server-Sent Events, chunked responses) and file bodies read from disk
//! as the socket drains. Each is an [`Exchange`] kept in its connection's
//! slot and named by a [`ResponseId`].

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Instant;

use crate::proto::http::{Body, HttpRequest, HttpResponse};
use crate::proto::sse::SseEvent;
use crate::proto::SendStatus;
use crate::table::{Core, Slot};
use slab::Slab;

/// Names one HTTP request whose answer is given after its route handler
/// returned: from [`Context::defer`](crate::Context::defer), used with
/// [`Context::respond`](crate::Context::respond), the stream calls, or the
/// same calls on a [`ServerHandle`](crate::ServerHandle).
///
/// An id is `Copy` and cheap to keep in the game's state. Once its answer
/// is complete, or its client went away (reported by
/// [`HvWebServer::on_response_abandoned`](crate::HvWebServer::on_response_abandoned)),
/// the id is stale: calls with it do nothing and return
/// [`SendStatus::Closed`], and it never reaches a later request on the
/// same connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResponseId {
    pub(crate) index: u32,
    pub(crate) gen: u32,
    pub(crate) seq: u32,
}

impl fmt::Display for ResponseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "response#{}.{}.{}", self.index, self.gen, self.seq)
    }
}

/// What an exchange is waiting for.
#[derive(Debug)]
pub(crate) enum Kind {
    /// The application's answer.
    Deferred,
    /// The application's next piece of a streamed body, or its end.
    Stream,
    /// The socket to drain, to read the next piece of `file`.
    File { file: Arc<File>, pos: u64, left: u64 },
    /// The rest of a streamed request body (an upload), read before the
    /// route runs.
    Upload(Box<crate::upload::Upload>),
}

/// A request whose answer outlives its handler.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub seq: u32,
    /// The request's head (its body dropped), for the response chain and
    /// the access log when the answer is given.
    pub req: Option<Box<HttpRequest>>,
    pub started: Instant,
    pub kind: Kind,
    /// What the route handler itself did with its id before returning:
    /// the response chain needs the request, which the dispatcher holds
    /// until then, so it is replayed by [`Core::adopt`].
    pub early: Option<Box<Early>>,
}

/// Calls made with an id inside its own route handler.
#[derive(Debug, Default)]
pub(crate) struct Early {
    answer: Option<HttpResponse>,
    head: Option<HttpResponse>,
    body: Vec<u8>,
    ended: bool,
}

/// Runs the response chain on an answer given outside a route handler (a
/// late one, a refusal of a body). An after-middleware that
/// panics costs its own headers, not the tick (a handle's command runs
/// inside it).
pub(crate) fn finish(
    chain: &crate::http::ResponseChain,
    req: &HttpRequest,
    resp: &mut HttpResponse,
    elapsed: std::time::Duration,
) {
    let run = std::panic::AssertUnwindSafe(|| chain.apply(req, resp, || elapsed));
    if std::panic::catch_unwind(run).is_err() {
        log::error!(
            "after-middleware panicked on the answer to {} {}",
            req.method(),
            req.path()
        );
    }
}

/// Bytes of a file read per piece.
const FILE_PIECE: usize = 64 << 10;
/// A file body is read on only while less than this waits unwritten, so a
/// download holds at most this plus one piece in memory however large the
/// file, and the slow-consumer cap is never reached by it.
const FILE_LOW_WATER: usize = 64 << 10;

/// The slot holding `id`'s exchange, if it is still waiting.
fn exchange(conns: &mut Slab<Slot>, id: ResponseId) -> Option<&mut Slot> {
    conns
        .get_mut(id.index as usize)
        .filter(|s| s.gen == id.gen && s.http.as_ref().is_some_and(|x| x.seq == id.seq))
}

impl Core {
    /// The running route handler's request waits for a later answer.
    pub fn defer(&mut self) -> Option<ResponseId> {
        let id = self.current?;
        let slot = self.conns.get_mut(id.index as usize)?;
        if slot.http.is_none() {
            slot.http = Some(Box::new(Exchange {
                seq: id.seq,
                req: None,
                started: self.now,
                kind: Kind::Deferred,
                early: None,
            }));
            // From now on an id names this connection: its slot's next
            // user must not be reachable with it.
            slot.had_channel = true;
        }
        Some(id)
    }

    /// Whether `id` still waits for an answer or the rest of its stream.
    pub fn is_pending(&self, id: ResponseId) -> bool {
        self.conns.get(id.index as usize).is_some_and(|s| {
            s.gen == id.gen
                && s.http
                    .as_ref()
                    .is_some_and(|x| x.seq == id.seq && matches!(x.kind, Kind::Deferred | Kind::Stream))
        })
    }

    /// Gives a deferred request its answer.
    pub fn respond(&mut self, id: ResponseId, mut resp: HttpResponse) -> SendStatus {
        let (now, key) = (self.now, id.index as usize);
        let Some(slot) = exchange(&mut self.conns, id) else {
            return SendStatus::Closed;
        };
        let Some(x) = slot.http.as_mut().filter(|x| matches!(x.kind, Kind::Deferred)) else {
            return SendStatus::Closed;
        };
        if resp.is_deferred() {
            return SendStatus::Queued;
        }
        let Some(req) = &x.req else {
            x.early.get_or_insert_with(Default::default).answer = Some(resp);
            return SendStatus::Queued;
        };
        finish(&self.chain, req, &mut resp, now.saturating_duration_since(x.started));
        slot.conn.respond(&resp, now, &self.limits);
        match resp.body {
            Body::File { file, offset, len } if slot.conn.is_sending() => {
                x.kind = Kind::File {
                    file,
                    pos: offset,
                    left: len,
                };
            }
            _ => slot.http = None,
        }
        self.answered(key);
        SendStatus::Queued
    }

    /// Answers a deferred request with `head` and a body streamed later.
    pub fn start_stream(&mut self, id: ResponseId, mut head: HttpResponse) -> SendStatus {
        let (now, key) = (self.now, id.index as usize);
        let Some(slot) = exchange(&mut self.conns, id) else {
            return SendStatus::Closed;
        };
        let Some(x) = slot.http.as_mut().filter(|x| matches!(x.kind, Kind::Deferred)) else {
            return SendStatus::Closed;
        };
        let Some(req) = &x.req else {
            x.early.get_or_insert_with(Default::default).head = Some(head);
            x.kind = Kind::Stream;
            return SendStatus::Queued;
        };
        finish(&self.chain, req, &mut head, now.saturating_duration_since(x.started));
        if slot.conn.start_stream(&head, now, &self.limits) {
            x.kind = Kind::Stream;
        } else {
            // A HEAD request: the head was all it asked for.
            slot.http = None;
        }
        self.answered(key);
        SendStatus::Queued
    }

    /// Queues the next piece of a streamed body.
    pub fn write_stream(&mut self, id: ResponseId, data: &[u8]) -> SendStatus {
        let (now, key) = (self.now, id.index as usize);
        let Some(slot) = exchange(&mut self.conns, id) else {
            return SendStatus::Closed;
        };
        let Some(x) = slot.http.as_mut().filter(|x| matches!(x.kind, Kind::Stream)) else {
            return SendStatus::Closed;
        };
        if let Some(early) = x.early.as_mut().filter(|e| e.head.is_some()) {
            early.body.extend_from_slice(data);
            return SendStatus::Queued;
        }
        let status = slot.conn.write_body(data, now, &self.limits);
        self.answered(key);
        status
    }

    /// Queues one Server-Sent Event on a stream.
    pub fn send_event(&mut self, id: ResponseId, event: &SseEvent) -> SendStatus {
        let mut buf = std::mem::take(&mut self.event_buf);
        buf.clear();
        event.encode(&mut buf);
        let status = self.write_stream(id, &buf);
        self.event_buf = buf;
        status
    }

    /// Ends a streamed body.
    pub fn end_stream(&mut self, id: ResponseId) -> SendStatus {
        let (now, key) = (self.now, id.index as usize);
        let Some(slot) = exchange(&mut self.conns, id) else {
            return SendStatus::Closed;
        };
        let Some(x) = slot.http.as_mut().filter(|x| matches!(x.kind, Kind::Stream)) else {
            return SendStatus::Closed;
        };
        if let Some(early) = x.early.as_mut().filter(|e| e.head.is_some()) {
            early.ended = true;
            return SendStatus::Queued;
        }
        slot.conn.finish_body(now, &self.limits);
        slot.http = None;
        self.answered(key);
        SendStatus::Queued
    }

    /// The route handler that deferred `key`'s request returned: the
    /// exchange keeps the request's head (for the response chain), and
    /// what the handler already did with its id is carried out now.
    pub fn adopt(&mut self, key: usize, mut req: Box<HttpRequest>) {
        let now = self.now;
        let Some(slot) = self.conns.get_mut(key) else { return };
        let gen = slot.gen;
        let Some(x) = slot.http.as_mut() else { return };
        // Keep the head for the response chain; the body can go.
        req.body = Vec::new();
        x.req = Some(req);
        x.started = now;
        let Some(early) = x.early.take() else { return };
        let id = ResponseId {
            index: key as u32,
            gen,
            seq: x.seq,
        };
        if let Some(answer) = early.answer {
            self.respond(id, answer);
        } else if let Some(head) = early.head {
            x.kind = Kind::Deferred;
            self.start_stream(id, head);
            self.write_stream(id, &early.body);
            if early.ended {
                self.end_stream(id);
            }
        }
    }

    /// After an answer (or a piece of one) was queued on `key`: flush it,
    /// and if the connection reads again with a pipelined request already
    /// received, have the tick read it (no new bytes will announce it).
    fn answered(&mut self, key: usize) {
        self.mark_dirty(key);
        self.reschedule(key);
        let Some(slot) = self.conns.get(key) else { return };
        if slot.conn.has_tail() && slot.conn.wants_input() && !slot.conn.owes_response() {
            self.resume.push(key);
        }
    }

    /// Whether `key` is writing a file body that wants another piece.
    pub fn wants_file_piece(&self, key: usize) -> bool {
        self.conns.get(key).is_some_and(|s| {
            s.http.as_ref().is_some_and(|x| matches!(x.kind, Kind::File { .. })) && s.conn.buffered() < FILE_LOW_WATER
        })
    }

    /// Reads the next piece of `key`'s file body into its output. Returns
    /// whether the file has more to give.
    pub fn file_piece(&mut self, key: usize) -> bool {
        let (now, limits) = (self.now, &self.limits);
        let Some(slot) = self.conns.get_mut(key) else {
            return false;
        };
        let Some(Exchange {
            kind: Kind::File { file, pos, left },
            ..
        }) = slot.http.as_deref_mut()
        else {
            return false;
        };
        let want = (*left).min(FILE_PIECE as u64) as usize;
        self.file_buf.resize(want, 0);
        let read = (&**file)
            .seek(SeekFrom::Start(*pos))
            .and_then(|_| (&**file).read(&mut self.file_buf[..want]));
        match read {
            Ok(n) if n > 0 => {
                *pos += n as u64;
                *left -= n as u64;
                slot.conn.write_body(&self.file_buf[..n], now, limits);
                if *left > 0 {
                    return true;
                }
                slot.conn.finish_body(now, limits);
            }
            // The file shrank or failed under us: the promised length
            // cannot be kept, so the connection closes (finish_body sees
            // the shortfall).
            Ok(_) | Err(_) => {
                log::warn!("{}: file body ended early; closing", slot.conn.peer());
                slot.conn.finish_body(now, limits);
            }
        }
        slot.http = None;
        self.answered(key);
        false
    }

    /// An exchange whose connection stopped owing its answer (the client
    /// went away, a timeout, the server stopping) is over. Returns its id
    /// if the application was waiting on it, to be told.
    pub fn settle(&mut self, key: usize) -> Option<ResponseId> {
        let slot = self.conns.get_mut(key)?;
        let x = slot.http.as_ref()?;
        let alive = match x.kind {
            Kind::Upload(_) => slot.conn.reads_body(),
            _ => slot.conn.owes_response(),
        };
        if alive {
            return None;
        }
        let x = slot.http.take()?;
        matches!(x.kind, Kind::Deferred | Kind::Stream).then_some(ResponseId {
            index: key as u32,
            gen: slot.gen,
            seq: x.seq,
        })
    }
}
