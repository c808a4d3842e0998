//! The connection table: every connection's protocol state by key, with a
//! generation per slot, and the sends that callbacks make through the
//! [`Context`](crate::Context). Queuing never does I/O; the tick's flush
//! does, for the connections listed dirty here.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use slab::Slab;

use crate::channel::Channel;
use crate::config::ServerConfig;
use crate::driver::{ReadRegion, Schedule, Wakeup};
use crate::handle::ServerHandle;
use crate::pool::BufPool;
use crate::proto::frame::Opcode;
use crate::proto::info::ChannelInfo;
use crate::proto::outbox::SHARE_MIN;
use crate::proto::{Limits, SendError, SendStatus, ServerConn};

/// One connection and its place in the tick.
#[derive(Debug)]
pub(crate) struct Slot {
    pub conn: ServerConn,
    pub gen: u32,
    /// Listed in `Core::dirty`.
    pub dirty: bool,
    /// Became a WebSocket: a `Channel` names it, so its slot's next user
    /// needs a new generation. (Plain HTTP connections leave it as it is,
    /// so generations, and channel ids, grow only with WebSockets.)
    pub had_channel: bool,
    /// The HTTP request whose answer outlives its handler, if any.
    pub http: Option<Box<crate::exchange::Exchange>>,
    /// HTTP requests handed out on this connection: the next one's
    /// sequence number in its `ResponseId`.
    pub requests: u32,
    /// The tick's budget ran out in this connection's input: what is left
    /// of it (kept as its tail) is handed out before it is read again.
    pub held: bool,
    /// The wakeup this connection waits for on the schedule, as
    /// `Schedule::coarse` (0: none). A deadline that moves later than it
    /// is not pushed until it comes due (an idle WebSocket's keepalive
    /// waits behind the request timer it was accepted with), so each
    /// connection has one heap entry rather than one per move. In the
    /// slot's padding.
    pub armed: u32,
}

impl Slot {
    /// Whether a wakeup for this slot's key is still wanted (for the
    /// schedule's compaction; `coarse` is its instant as
    /// `Schedule::coarse`): the one it waits for, or one at its deadline.
    pub fn wants(&self, w: &Wakeup, coarse: u32) -> bool {
        // Past 49 days every instant's `coarse` is `u32::MAX`, so `armed`
        // no longer names one wakeup: only the deadline itself does then
        // (else every moved deadline's stale entry would be kept).
        let awaited = self.armed == coarse && coarse != u32::MAX;
        self.gen == w.gen && (awaited || self.conn.poll_timeout() == Some(w.at))
    }
}

/// What this tick has done against `ServerConfig::tick_budget`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TickWork {
    /// Messages handed to the application.
    pub messages: usize,
    /// Bytes read from the sockets.
    pub bytes: usize,
}

/// The connection table and what goes with it.
#[derive(Debug)]
pub(crate) struct Core {
    pub conns: Slab<Slot>,
    /// Generation per slab slot, bumped when a connection leaves it.
    gens: Vec<u32>,
    /// Connections to flush (or to close), first listed first: those a
    /// flush's write budget did not reach stay at the front for the next.
    pub dirty: VecDeque<usize>,
    pub pool: BufPool,
    /// One encoded frame, shared by every receiver of a broadcast.
    frame: Vec<u8>,
    pub schedule: Schedule,
    pub config: ServerConfig,
    pub limits: Limits,
    pub now: Instant,
    /// WebSockets opened and not yet reported closed.
    pub live: usize,
    pub stop_requested: bool,
    pub handle: ServerHandle,
    /// Connections that a send closed (slow consumers), to report.
    pub attention: Vec<(usize, u32)>,
    /// Scratch list of broadcast targets, kept to reuse its allocation.
    targets: Vec<Channel>,
    /// The request whose route handler is running (what `defer` defers).
    pub current: Option<crate::ResponseId>,
    /// After-middleware, CORS and the access log, for answers given late.
    pub chain: crate::http::ResponseChain,
    /// Connections that answered with a pipelined request already read:
    /// the tick reads it, since no new bytes will announce it.
    pub resume: Vec<usize>,
    /// Connections whose file body wants more once this flush is over.
    pub owed_pieces: Vec<usize>,
    /// Scratch buffers: a file piece, an encoded event.
    pub file_buf: Vec<u8>,
    pub event_buf: Vec<u8>,
    /// The second `limits.date` was made for.
    date_secs: u64,
    /// Topics and their subscribers.
    pub topics: crate::topics::Topics,
    /// The other reactors and processes this server's topics span, if it
    /// joined a [`Hub`](crate::Hub).
    pub hub: Option<crate::hub::HubLink>,
    /// What an operator watches (`stats.rs`).
    pub stats: crate::stats::Counters,
    /// This tick's work so far, against `config.tick_budget`.
    pub work: TickWork,
    /// An answered request, lent to the next request read to be built in
    /// (`Input::lend_request`): one box and head buffer for the server.
    pub spare_request: Option<Box<crate::HttpRequest>>,
    /// The read being handed out, while it is: a large send of bytes in
    /// it queues a placeholder instead of a copy (`driver/readbuf.rs`).
    pub read_region: Option<ReadRegion>,
    /// A send referred to the current read: the driver keeps its bytes.
    pub read_kept: bool,
    /// Connections with placeholders to resolve before the flush.
    pub pending_reads: Vec<usize>,
    /// Connections whose placeholders became slices of a frozen read
    /// buffer since the last flush ended (`Core::unpin_unwritten`).
    pub pinned_reads: Vec<usize>,
}

impl Core {
    pub fn new(config: ServerConfig, handle: ServerHandle) -> Core {
        let now = Instant::now();
        Core {
            conns: Slab::new(),
            gens: Vec::new(),
            dirty: VecDeque::new(),
            pool: BufPool::default(),
            frame: Vec::new(),
            schedule: Schedule::new(now),
            limits: config.limits(),
            config,
            now,
            live: 0,
            stop_requested: false,
            handle,
            attention: Vec::new(),
            targets: Vec::new(),
            current: None,
            chain: Default::default(),
            resume: Vec::new(),
            owed_pieces: Vec::new(),
            file_buf: Vec::new(),
            event_buf: Vec::new(),
            date_secs: 0,
            topics: Default::default(),
            hub: None,
            stats: Default::default(),
            work: TickWork::default(),
            spare_request: None,
            read_region: None,
            read_kept: false,
            pending_reads: Vec::new(),
            pinned_reads: Vec::new(),
        }
    }

    /// Keeps `req`, answered and no longer needed, for the next request to
    /// be built in. Its body and the rest that can be large go now; a head
    /// buffer far larger than a usual head is not kept either.
    pub fn recycle(&mut self, mut req: Box<crate::HttpRequest>) {
        req.clear_for_reuse();
        self.spare_request = Some(req);
    }

    /// Whether this tick has used up `config.tick_budget`: no more reads,
    /// no more messages handed out, until the next tick.
    #[inline]
    pub fn budget_spent(&self) -> bool {
        let budget = &self.config.tick_budget;
        self.work.messages >= budget.messages || self.work.bytes >= budget.bytes
    }

    /// Brings the `Date` answers carry up to the wall clock's second (one
    /// clock read per tick, one formatting per second).
    pub fn refresh_date(&mut self) {
        let now = std::time::SystemTime::now();
        let secs = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if secs != self.date_secs {
            self.date_secs = secs;
            self.limits.date = httpdate::fmt_http_date(now);
        }
    }

    /// The key the next connection will get.
    pub fn vacant_key(&self) -> usize {
        self.conns.vacant_key()
    }

    /// Adds an accepted connection (its request timer running).
    pub fn insert(&mut self, peer: std::net::SocketAddr) -> usize {
        let key = self.conns.vacant_key();
        if self.gens.len() <= key {
            self.gens.resize(key + 1, 0);
        }
        let conn = ServerConn::new(peer, self.now, &self.limits);
        let key = self.conns.insert(Slot {
            conn,
            gen: self.gens[key],
            dirty: false,
            had_channel: false,
            http: None,
            requests: 0,
            held: false,
            armed: 0,
        });
        self.reschedule(key);
        key
    }

    /// Removes a finished connection; its slot's next user gets a new
    /// generation, so stale `Channel`s cannot reach it.
    pub fn remove(&mut self, key: usize) {
        if let Some(mut slot) = self.conns.try_remove(key) {
            if slot.had_channel {
                self.gens[key] = self.gens[key].wrapping_add(1);
            }
            if slot.conn.is_websocket() {
                self.live -= 1;
            }
            // Normally done when the channel was reported closed; this
            // covers every other way out.
            self.topics.unsubscribe_all(key as u32);
            self.stats.backlog_moved(slot.conn.backlog(), 0);
            self.pool.put(slot.conn.transmit().take_buf());
        }
    }

    /// Puts a connection's deadline on the schedule if it moved earlier
    /// than the wakeup it waits for, or if it waits for none (the one it
    /// waited for came due). A later one waits: its wakeup finds the
    /// deadline not due and comes back here.
    #[inline]
    pub fn reschedule(&mut self, key: usize) {
        let Some(slot) = self.conns.get_mut(key) else {
            return;
        };
        let moved = slot.conn.take_moved_timeout().is_some();
        if !moved && slot.armed != 0 {
            return;
        }
        let Some(at) = slot.conn.poll_timeout() else {
            return;
        };
        let coarse = self.schedule.coarse(at);
        if slot.armed != 0 && slot.armed < coarse {
            // The wakeup waited for comes first (a millisecond or more).
            return;
        }
        self.schedule.push(Wakeup { at, key, gen: slot.gen });
        slot.armed = coarse;
    }

    /// A wakeup came due: whether its connection is still there (the
    /// slot then no longer waits for it, if it was the one it waited for).
    #[inline]
    pub fn wake(&mut self, w: Wakeup) -> bool {
        let coarse = self.schedule.coarse(w.at);
        let Some(slot) = self.conns.get_mut(w.key).filter(|s| s.gen == w.gen) else {
            return false;
        };
        if slot.armed == coarse {
            slot.armed = 0;
        }
        true
    }

    #[inline]
    pub fn channel(&self, key: usize) -> Channel {
        Channel {
            index: key as u32,
            gen: self.conns[key].gen,
        }
    }

    /// Lists a connection for this tick's flush.
    #[inline]
    pub fn mark_dirty(&mut self, key: usize) {
        if let Some(slot) = self.conns.get_mut(key) {
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push_back(key);
            }
        }
    }

    /// Queues a whole message on a channel.
    pub fn send_message(&mut self, ch: Channel, opcode: Opcode, payload: &[u8]) -> SendStatus {
        self.send_message_with(ch, opcode, payload, true)
    }

    pub fn send_message_with(&mut self, ch: Channel, opcode: Opcode, payload: &[u8], compress: bool) -> SendStatus {
        if payload.len() >= SHARE_MIN {
            if let Some(off) = self.read_region.and_then(|r| r.offset_of(payload)) {
                return self.send_from_read(ch, opcode, payload, off, compress);
            }
        }
        let Some((key, slot)) = open_slot(&mut self.conns, &mut self.pool, ch) else {
            return SendStatus::Closed;
        };
        let status = slot.conn.send_message_with(opcode, payload, compress, &self.limits);
        self.stats.sent(status, 1, payload.len());
        after_send(&mut self.dirty, &mut self.attention, key, slot, status)
    }

    /// A received message echoed or relayed (`payload` lies at `off` in the
    /// read being handed out): queued by reference. Out of line, so the
    /// small-message path above stays as short as it was.
    #[inline(never)]
    fn send_from_read(
        &mut self,
        ch: Channel,
        opcode: Opcode,
        payload: &[u8],
        off: usize,
        compress: bool,
    ) -> SendStatus {
        let Some((key, slot)) = open_slot(&mut self.conns, &mut self.pool, ch) else {
            return SendStatus::Closed;
        };
        if slot.conn.backlog() > 0 {
            // A peer behind in reading would pin a whole read buffer per
            // message it holds: it gets a copy instead.
            let status = slot.conn.send_message_with(opcode, payload, compress, &self.limits);
            self.stats.sent(status, 1, payload.len());
            return after_send(&mut self.dirty, &mut self.attention, key, slot, status);
        }
        let listed = slot.conn.has_reads();
        let status = slot.conn.send_from_read(opcode, payload, off, compress, &self.limits);
        if slot.conn.has_reads() {
            self.read_kept = true;
            if !listed {
                self.pending_reads.push(key);
            }
        }
        self.stats.sent(status, 1, payload.len());
        after_send(&mut self.dirty, &mut self.attention, key, slot, status)
    }

    /// Queues one raw frame on a channel.
    pub fn send_raw(
        &mut self,
        ch: Channel,
        opcode: Opcode,
        payload: &[u8],
        fin: bool,
    ) -> Result<SendStatus, SendError> {
        let Some((key, slot)) = open_slot(&mut self.conns, &mut self.pool, ch) else {
            // The frame's rules hold whether or not the channel is open.
            crate::proto::outgoing::Fragmenter::check_alone(opcode, payload.len(), fin)?;
            return Ok(SendStatus::Closed);
        };
        let status = slot.conn.send_raw(opcode, payload, fin, &self.limits)?;
        // A message counts at its last fragment; pings carry no message.
        let data = !opcode.is_control();
        self.stats
            .sent(status, u64::from(data && fin), if data { payload.len() } else { 0 });
        Ok(after_send(&mut self.dirty, &mut self.attention, key, slot, status))
    }

    /// Makes every placeholder queued this tick a slice of the read
    /// buffer, frozen now (`driver/readbuf.rs`). Before every flush, and
    /// when the buffer runs short of room.
    pub fn resolve_reads(&mut self, frozen: &Bytes) {
        for key in self.pending_reads.drain(..) {
            if let Some(slot) = self.conns.get_mut(key) {
                slot.conn.resolve_reads(frozen);
                self.pinned_reads.push(key);
            }
        }
    }

    /// After a flush: connections whose queue still holds slices of a read
    /// buffer (the peer is behind, or the write budget left them) copy
    /// them out, so they do not keep a whole read buffer alive.
    pub fn unpin_unwritten(&mut self) {
        for &key in &self.pinned_reads {
            if let Some(slot) = self.conns.get_mut(key) {
                if slot.dirty || slot.conn.backlog() > 0 {
                    slot.conn.unpin_reads();
                }
            }
        }
        self.pinned_reads.clear();
    }

    /// Queues a whole message held as shared bytes on a channel: a large
    /// one by reference.
    pub fn send_shared(&mut self, ch: Channel, opcode: Opcode, payload: Bytes) -> SendStatus {
        let Some((key, slot)) = open_slot(&mut self.conns, &mut self.pool, ch) else {
            return SendStatus::Closed;
        };
        let len = payload.len();
        let status = slot.conn.send_shared(opcode, payload, true, &self.limits);
        self.stats.sent(status, 1, len);
        after_send(&mut self.dirty, &mut self.attention, key, slot, status)
    }

    /// Starts a channel's closing handshake with an application's code.
    pub fn close(&mut self, ch: Channel, code: u16, reason: &str) -> Result<(), SendError> {
        let (now, key) = (self.now, ch.index as usize);
        match self.conns.get_mut(key).filter(|s| s.gen == ch.gen) {
            Some(slot) => slot.conn.close(code, reason, now, &self.limits)?,
            // A stale id: the slot may hold a newer connection, which this
            // call must not touch.
            None => return ServerConn::check_close_code(code),
        }
        self.mark_dirty(key);
        self.reschedule(key);
        Ok(())
    }

    pub fn is_open(&self, ch: Channel) -> bool {
        matches!(self.conns.get(ch.index as usize), Some(s) if s.gen == ch.gen && s.conn.is_open())
    }

    pub fn info(&self, ch: Channel) -> Option<&ChannelInfo> {
        self.conns
            .get(ch.index as usize)
            .filter(|s| s.gen == ch.gen)
            .and_then(|s| s.conn.info())
    }

    pub fn last_message_at(&self, ch: Channel) -> Option<std::time::Instant> {
        self.conns
            .get(ch.index as usize)
            .filter(|s| s.gen == ch.gen)
            .and_then(|s| s.conn.last_message_at(self.now))
    }

    /// Channels opened and not yet reported closed (a closing one still
    /// counts: the application has not heard of its end).
    pub fn channels(&self) -> impl Iterator<Item = Channel> + '_ {
        self.conns
            .iter()
            .filter(|(_, s)| s.conn.is_websocket())
            .map(|(key, s)| Channel {
                index: key as u32,
                gen: s.gen,
            })
    }

    /// Open channels: those a send can reach.
    pub fn open_channels(&self) -> impl Iterator<Item = Channel> + '_ {
        self.conns
            .iter()
            .filter(|(_, s)| s.conn.is_open())
            .map(|(key, s)| Channel {
                index: key as u32,
                gen: s.gen,
            })
    }

    pub fn buffered_amount(&self, ch: Channel) -> usize {
        match self.conns.get(ch.index as usize) {
            Some(s) if s.gen == ch.gen => s.conn.buffered(),
            _ => 0,
        }
    }
}

/// After a send: list the connection for the flush if it queued anything
/// (a slow consumer's close included), and for a report if a slow consumer
/// was closed.
#[inline]
fn after_send(
    dirty: &mut VecDeque<usize>,
    attention: &mut Vec<(usize, u32)>,
    key: usize,
    slot: &mut Slot,
    status: SendStatus,
) -> SendStatus {
    if status == SendStatus::Dropped {
        attention.push((key, slot.gen));
    }
    if status != SendStatus::Closed && !slot.dirty {
        slot.dirty = true;
        dirty.push_back(key);
    }
    status
}

/// Gives a connection in its HTTP phase a buffer from the pool to answer
/// in (a 101, a response); the flush hands it back. Fresh ones were kept by
/// the pool after their flush, up to its 16 Ki buffers: about 230 bytes per
/// idle connection after 10,000 handshakes (benches/README.md, "Memory per
/// connection with real handshakes").
#[inline]
pub(crate) fn lend_for_answer(slot: &mut Slot, pool: &mut BufPool) {
    if !slot.conn.is_websocket() && slot.conn.needs_buffer() {
        if let Some(unused) = slot.conn.give_buffer(pool.take()) {
            pool.put(unused);
        }
    }
}

/// After the input it was lent for: the buffer back to the pool if no
/// answer went into it, so connections that wait (a slow request, a
/// deferred answer, a slowloris) hold none.
#[inline]
pub(crate) fn return_unused(slot: &mut Slot, pool: &mut BufPool) {
    if !slot.conn.is_websocket() {
        if let Some(buf) = slot.conn.take_unused_buffer() {
            pool.put(buf);
        }
    }
}

/// The slot of an open channel, given an output buffer from the pool if it
/// has none; `None` if the channel is not open.
#[inline]
fn open_slot<'a>(conns: &'a mut Slab<Slot>, pool: &mut BufPool, ch: Channel) -> Option<(usize, &'a mut Slot)> {
    let key = ch.index as usize;
    let slot = conns.get_mut(key).filter(|s| s.gen == ch.gen && s.conn.is_open())?;
    if slot.conn.needs_buffer() {
        if let Some(unused) = slot.conn.give_buffer(pool.take()) {
            pool.put(unused);
        }
    }
    Some((key, slot))
}

#[cfg(test)]
mod sizes {
    /// A connection's slot in the table, measured on x86_64 Linux: the
    /// `ServerConn` (96, 104 with `deflate`) and the slot's own 24 bytes
    /// (`armed` in what was padding). The heap entries of the schedule
    /// (16 bytes each, one per idle connection: `Slot::armed`) are pinned
    /// in `driver::schedule`, the reactor's socket entry in
    /// `driver::reactor`. See benches/README.md ("Memory per connection with
    /// real handshakes").
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_slot_stays_this_small() {
        let size = std::mem::size_of::<slab::Slab<super::Slot>>();
        assert!(size <= 40, "{size}");
        let deflate = if cfg!(feature = "deflate") { 8 } else { 0 };
        let slot = std::mem::size_of::<super::Slot>();
        assert!(slot <= 120 + deflate, "{slot}");
    }
}

mod fanout;

#[cfg(test)]
mod lending;
#[cfg(test)]
mod wakeups;
