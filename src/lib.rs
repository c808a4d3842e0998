//! # hvws
//!
//! A WebSocket + HTTP server and a WebSocket client for programs that own
//! their main loop: game servers, simulations, live dashboards. Once a frame
//! the program calls [`Server::tick`]; hvws does the network work that is
//! ready (accepts, HTTP requests, handshakes, frames, pings, closes), runs
//! the application's [`HvWebServer`] callbacks, flushes what they sent and
//! returns. No async runtime, no hidden threads: one mio reactor.
//!
//! ```no_run
//! use hvws::{Channel, CloseInfo, Context, HttpResponse, HvWebServer, Routes, Server};
//! use std::collections::HashMap;
//!
//! #[derive(Default)]
//! struct Chat {
//!     names: HashMap<Channel, String>,
//!     next_id: u32,
//! }
//!
//! impl HvWebServer for Chat {
//!     fn on_init(&mut self, routes: &mut Routes<Self>) {
//!         routes.get("/clients", |chat: &mut Chat, _, _| HttpResponse::text(chat.names.len().to_string()));
//!     }
//!     fn on_ws_open(&mut self, ctx: &mut Context<'_>, ch: Channel, _url: &str) {
//!         self.next_id += 1;
//!         let name = format!("user_{}", self.next_id);
//!         ctx.send_text(ch, &format!("welcome {name}"));
//!         ctx.broadcast_text(&format!("{name} joined"), Some(ch));
//!         self.names.insert(ch, name);
//!     }
//!     fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
//!         ctx.send_text(ch, &format!("echo: {msg}"));
//!         ctx.broadcast_text(&format!("{}: {msg}", self.names[&ch]), Some(ch));
//!     }
//!     fn on_ws_close(&mut self, ctx: &mut Context<'_>, ch: Channel, _close: &CloseInfo) {
//!         if let Some(name) = self.names.remove(&ch) {
//!             ctx.broadcast_text(&format!("{name} left"), None);
//!         }
//!     }
//! }
//!
//! let mut server = Server::new(Chat::default());
//! server.init(8080)?;
//! server.start()?;
//! while server.is_running() {
//!     server.tick()?;
//!     std::thread::sleep(std::time::Duration::from_millis(10)); // the game's frame
//! }
//! # Ok::<(), hvws::ServerError>(())
//! ```

#[cfg(feature = "redis")]
mod bridge;
mod channel;
mod client;
mod config;
mod context;
mod driver;
mod error;
mod events;
mod exchange;
mod group;
mod handle;
mod handler;
pub mod http;
mod http_client;
mod hub;
mod pacer;
mod pool;
mod server;
mod stats;
mod steps;
mod table;
#[cfg(feature = "tls")]
mod tls;
mod topics;
mod upload;

pub mod proto;

/// The [`cookie`](https://docs.rs/cookie) crate, whose [`Cookie`] builder
/// sets a cookie's attributes for [`HttpResponse::with_cookie`];
/// `cookie::time::Duration` is its max-age.
pub use cookie;
pub use cookie::{Cookie, SameSite};

/// A started bridge with a recording sink, for `tests/redis_bridge.rs`
/// until the hub drives the bridge.
#[cfg(feature = "redis")]
#[doc(hidden)]
pub use bridge::{BridgeProbe, ProbeEvent};
#[cfg(feature = "redis")]
pub use bridge::{BridgeState, BridgeStats, RedisBridge, RedisBridgeError};
/// Shared, reference-counted bytes (the `bytes` crate's), for payloads
/// queued by reference: [`Context::send_shared`],
/// [`Context::broadcast_shared`], [`Context::publish_shared`].
pub use bytes::Bytes;
pub use channel::Channel;
pub use client::{ClientContext, HvWebSocketClient, Proxy, ReadyState, WebSocketClient};
pub use config::{ClientConfig, HttpClientConfig, ServerConfig, SlowConsumer, TickBudget};
pub use context::Context;
pub use error::{ClientError, HttpClientError, ServerError, WsError};
pub use exchange::ResponseId;
pub use group::ServerGroup;
pub use handle::ServerHandle;
pub use handler::{Handshake, HvWebServer};
/// The router's and the multipart parser's fuzz entry points; the
/// protocol core's are in `proto::fuzzing`.
#[doc(hidden)]
pub use http::fuzzing as http_fuzzing;
pub use http::static_files::{serve_dir, serve_dir_with, serve_file, serve_file_with, StaticOptions};
pub use http::{Cors, RouteError, RouteHandler, Routes};
pub use http::{Form, FormError, FormFile, FormLimits, MultipartParser, UploadError};
pub use http_client::{BodyChunk, ClientRequest, ClientResponse, HttpClient, HvHttpClient, RequestId};
pub use hub::Hub;
pub use pacer::FramePacer;
pub use proto::client::Reconnect;
pub use proto::close::{CloseInfo, CloseInitiator};
#[cfg(feature = "deflate")]
pub use proto::deflate::{DeflateConfig, DeflateParams};
pub use proto::error::{SendError, SendStatus};
pub use proto::frame::Opcode;
pub use proto::handshake::offered_protocols;
#[cfg(feature = "json")]
pub use proto::http::JsonBodyError;
pub use proto::http::{HttpRequest, HttpResponse, Method, RequestBuilder};
pub use proto::http_client::{CookieJar, ResponseHead, StoredCookie};
pub use proto::info::TlsInfo;
pub use proto::info::{ChannelInfo, KeepHeaders};
pub use proto::limits::IdleActivity;
pub use proto::sse::SseEvent;
pub use proto::sse_reader::{SseError, SseMessage, SseReader};
#[cfg(feature = "tls")]
pub use proto::tls::TlsFailure;
pub use server::Server;
pub use stats::Stats;
#[cfg(feature = "tls")]
pub use tls::{ClientTls, ServerTls, TlsError};

/// The README's examples, compiled as doc-tests so they cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
