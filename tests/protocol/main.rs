//! The protocol of one connection, on the in-memory [`pair::Pair`]: hvws's
//! server core and client core exchanging bytes with no socket in between,
//! on a clock the tests advance. Deterministic and instant: the timers
//! (pings, idle, request and close timeouts, the client's keepalive) are
//! tested here rather than over loopback with sleeps.

mod pair;

mod bodies;
mod cuts;
#[cfg(feature = "deflate")]
mod deflate;
mod http;
mod rtt;
mod shared;
mod timers;
mod websocket;

#[cfg(feature = "tls")]
#[path = "../util/certs.rs"]
mod certs;
#[cfg(feature = "tls")]
mod tls;
