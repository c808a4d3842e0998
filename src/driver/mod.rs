//! The only code that touches sockets: the server's reactor (poller,
//! listener, waker, every accepted socket by connection key, the shared read
//! buffer, the reads owed to the next tick), the WebSocket client's I/O
//! (connect, read, write, shut down), the HTTP client's (the same, for
//! several sockets under one poller), and the server-wide schedule of deadlines.
//!
//! Readiness is a hint (mio's "spurious events"): every read and write
//! tolerates `WouldBlock`. Sockets are registered once for READABLE |
//! WRITABLE, edge-triggered, and never re-registered: a writable edge only
//! arrives after a write hit `WouldBlock`, so it costs nothing otherwise.
//! What the bytes mean is `proto`'s business; this module never parses.

mod client;
mod io;
mod listen;
mod multi;
mod reactor;
mod readbuf;
mod schedule;
mod stream;

pub(crate) use client::{ClientIo, ClientReady};
pub(crate) use io::{FlushResult, ReadResult};
pub(crate) use multi::MultiIo;
pub(crate) use reactor::{Accepted, Reactor, Ready, ACCEPTS_PER_TICK};
pub(crate) use readbuf::{ReadRegion, MIN_ROOM};
pub(crate) use schedule::{Schedule, Wakeup};
