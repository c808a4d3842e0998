//! The steps of a tick that touch the driver: reads (with the callbacks
//! they trigger), accepts, and the flush. `server.rs` runs them in order.

use crate::driver::{Accepted, FlushResult, Reactor, ReadRegion, ReadResult, Ready, ACCEPTS_PER_TICK, MIN_ROOM};
use crate::events::Dispatch;
use crate::handler::HvWebServer;
use crate::proto::http::HttpResponse;
use crate::proto::Flushed;
use crate::server::REFUSAL_SLOTS;

/// The tick's reads: first the connections owed one (`owed`, in the
/// order they were left), then those the poller found readable, each
/// served in turn until the tick's budget (`ServerConfig::tick_budget`) is
/// spent. The rest are owed a read next tick, ahead of those served: that
/// is what makes it round-robin (see `TickBudget`).
pub(crate) fn read_all<H: HvWebServer>(rx: &mut Reactor, d: &mut Dispatch<'_, H>, owed: &[usize], ready: &[Ready]) {
    // Owed connections read on to the end: no edge is coming for what is
    // left in them (maybe an EOF).
    let mut turns = owed
        .iter()
        .map(|&key| (key, true))
        .chain(ready.iter().filter(|r| r.readable).map(|r| (r.key, r.closed)));
    while let Some((key, drain)) = turns.next() {
        if d.core.budget_spent() {
            rx.owe_first(std::iter::once(key).chain(turns.map(|(key, _)| key)));
            break;
        }
        read(rx, d, key, drain);
    }
    for r in ready {
        if r.writable && (rx.holds_output(r.key) || d.core.conns.get(r.key).is_some_and(|s| s.conn.has_output())) {
            d.core.mark_dirty(r.key);
        }
    }
}

/// Reads what `key`'s socket has, up to the per-connection budget and
/// what is left of the tick's, handing each read to its connection before
/// the next read reuses the buffer. A short read means the socket is
/// drained for now: the next data raises a new edge. When the peer has
/// closed (`drain`), read on to EOF, since no further edge will come.
/// Input a spent budget left undelivered is handed out before anything
/// new is read.
fn read<H: HvWebServer>(rx: &mut Reactor, d: &mut Dispatch<'_, H>, key: usize, drain: bool) {
    if !rx.begin_read(key) {
        return;
    }
    if d.core.conns.get(key).is_some_and(|s| s.held) && d.input(key, &mut []) {
        rx.owe(key);
        return;
    }
    let budget = d.core.config.read_budget_per_tick;
    let mut total = 0;
    loop {
        if d.core.budget_spent() {
            rx.owe(key);
            break;
        }
        // No more than the tick's budget has left.
        let room = (d.core.config.tick_budget.bytes - d.core.work.bytes).min(rx.scratch.room());
        match rx.read(key, room) {
            ReadResult::Data(n) => {
                #[cfg(feature = "tls")]
                if let Some(info) = rx.take_tls_info(key) {
                    if let Some(slot) = d.core.conns.get_mut(key) {
                        slot.conn.set_tls(info);
                    }
                }
                total += n;
                d.core.stats.bytes_read += n as u64;
                d.core.work.bytes += n;
                let held = input_read(rx, d, key, n);
                if held || total >= budget {
                    rx.owe(key);
                    break;
                }
                if n < room && !drain && !rx.at_end(key) {
                    break;
                }
            }
            ReadResult::Eof => return d.eof(key),
            ReadResult::WouldBlock => break,
            ReadResult::Failed(e) => {
                if rx.is_tls(key) {
                    log::debug!("closing {key}: TLS: {e}");
                }
                return d.lost(key, e);
            }
        }
    }
    // Under TLS, what a connection queued before its handshake finished
    // may wait in it for the read that finished the handshake, and what TLS
    // says after its handshake (session tickets) waits for this flush.
    if rx.is_tls(key) && (rx.holds_output(key) || d.core.conns.get(key).is_some_and(|s| s.conn.has_output())) {
        d.core.mark_dirty(key);
    }
}

/// Hands a read of `n` bytes (in the shared buffer) to `key`'s connection.
/// A large send of bytes in it queues a placeholder (`driver/readbuf.rs`):
/// the read's bytes are then kept until the flush, and once the buffer is
/// short of room it is frozen and the placeholders resolved now.
fn input_read<H: HvWebServer>(rx: &mut Reactor, d: &mut Dispatch<'_, H>, key: usize, n: usize) -> bool {
    let offset = rx.scratch.pos();
    let data = rx.scratch.area(n);
    d.core.read_region = Some(ReadRegion {
        addr: data.as_ptr() as usize,
        len: data.len(),
        offset,
    });
    let held = d.input(key, data);
    d.core.read_region = None;
    if std::mem::take(&mut d.core.read_kept) {
        rx.scratch.keep(n);
        if rx.scratch.room() < MIN_ROOM {
            resolve_reads(rx, d);
        }
    }
    held
}

/// Freezes the read buffer if placeholders refer to it, and makes them
/// slices of it.
fn resolve_reads<H: HvWebServer>(rx: &mut Reactor, d: &mut Dispatch<'_, H>) {
    if rx.scratch.holds_kept() {
        let frozen = rx.scratch.freeze();
        d.core.resolve_reads(&frozen);
    }
}

/// Accepts up to [`ACCEPTS_PER_TICK`] connections. Past `max_connections`
/// they are answered 503 (so the client learns why) and closed.
pub(crate) fn accept<H: HvWebServer>(rx: &mut Reactor, d: &mut Dispatch<'_, H>) {
    if !rx.accept_pending() {
        return;
    }
    for _ in 0..ACCEPTS_PER_TICK {
        let key = d.core.vacant_key();
        let peer = match rx.accept(key, d.core.now) {
            Accepted::Conn(peer) => peer,
            Accepted::Dropped => continue,
            Accepted::None | Accepted::Failed => return,
        };
        let open = d.core.conns.len();
        let limit = d.core.config.max_connections;
        if open >= limit + REFUSAL_SLOTS {
            log::warn!("dropping {peer}: {open} connections open");
            rx.close(key);
            continue;
        }
        let key = d.core.insert(peer);
        d.core.stats.connections_accepted += 1;
        if open >= limit {
            log::warn!("refusing {peer} with 503: {open} connections open");
            let (now, limits) = (d.core.now, &d.core.limits);
            d.core.conns[key]
                .conn
                .respond_and_close(&HttpResponse::error(503), now, limits);
            d.after(key);
        }
    }
}

/// File pieces one connection may read and write per flush: 1 MiB, so one
/// download cannot hold a tick for long; the rest goes on next tick.
const PIECES_PER_FLUSH: usize = 16;

/// Writes every connection that has output, once each, in the order they
/// were listed; sockets that fill up wait for their writable edge. A file
/// body is read in pieces while its socket takes them. Connections that
/// are done are closed. When the tick's write budget
/// (`TickBudget::writes`) is spent, the connections not reached stay
/// listed, first in line for the next flush.
pub(crate) fn flush<H: HvWebServer>(rx: &mut Reactor, d: &mut Dispatch<'_, H>) {
    resolve_reads(rx, d);
    rx.scratch.end_tick();
    let budget = d.core.config.tick_budget.writes;
    let mut writes = 0usize;
    while let Some(key) = d.core.dirty.pop_front() {
        // An entry whose slot is not listed is stale: its connection was
        // removed while listed (the key maybe reused since, and listed
        // again further back) or an earlier entry already flushed it.
        let Some(slot) = d.core.conns.get_mut(key).filter(|s| s.dirty) else {
            continue;
        };
        if writes >= budget && (slot.conn.has_output() || rx.holds_output(key)) {
            d.core.dirty.push_front(key);
            break;
        }
        slot.dirty = false;
        for piece in 0..=PIECES_PER_FLUSH {
            if d.core.wants_file_piece(key) {
                if piece == PIECES_PER_FLUSH || writes >= budget {
                    d.core.owed_pieces.push(key);
                    break;
                }
                d.core.file_piece(key);
            }
            let Some(slot) = d.core.conns.get_mut(key) else {
                break;
            };
            if !(slot.conn.has_output() || rx.holds_output(key)) {
                break;
            }
            if writes >= budget {
                // A file body's next piece waits for the next flush.
                d.core.owed_pieces.push(key);
                break;
            }
            let queued = slot.conn.transmit().len();
            let result = rx.write(key, slot.conn.transmit());
            writes += 1;
            d.core.stats.writes += 1;
            d.core.stats.bytes_written += (queued - slot.conn.transmit().len()) as u64;
            match result {
                FlushResult::Done => {}
                FlushResult::Blocked => break,
                FlushResult::Failed(e) => {
                    d.lost(key, e);
                    break;
                }
            }
            if !d.core.wants_file_piece(key) {
                break;
            }
        }
        let Some(slot) = d.core.conns.get_mut(key) else {
            continue;
        };
        let before = slot.conn.backlog();
        let (action, spare) = slot.conn.handle_flushed();
        d.core.stats.backlog_moved(before, slot.conn.backlog());
        if let Some(buf) = spare {
            d.core.pool.put(buf);
        }
        match action {
            Flushed::ShutdownWrite => rx.shutdown_write(key),
            Flushed::Close | Flushed::Keep => {}
        }
        if d.core.conns[key].conn.is_finished() {
            d.settle(key);
            rx.finish(key);
            d.core.remove(key);
        }
    }
    // What stays queued (the peer is behind, or the budget left it) lets
    // go of the read buffers it echoes from: a copy of its own instead.
    d.core.unpin_unwritten();
}
