//! The server over real loopback sockets: tungstenite's client as an
//! independent peer, raw TCP for byte-exact checks. The server is ticked on
//! the test thread; every wait ends after `util::TIMEOUT` with a message.
//!
//! One test binary, split by topic:
//!
//! - [`chat`]: the HV-06 tutorial's chat replayed; binary messages echoed.
//! - [`frames`]: fragmented sends, close codes and reasons both ways,
//!   protocol violations.
//! - [`handshake`]: rejecting, accepting and choosing a subprotocol; stale
//!   channel ids after a slot is reused.
//! - [`http`]: routes, keep-alive, pipelining and error answers.
//! - [`lifecycle`]: the cross-thread handle, idle ticks, `stop()`, peers
//!   that leave without a closing handshake, what `on_ws_close` sees.
//!
//! [`common`] holds the recording `Probe` handler and the waits built on it.

#[path = "../util/mod.rs"]
mod util;

mod common;

mod chat;
mod frames;
mod handshake;
mod http;
mod lifecycle;
mod shared;
