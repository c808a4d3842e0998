//! The server: its lifecycle and one tick; the per-connection steps are in
//! `dispatch`.

use std::fmt;
use std::mem;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use mio::{Events, Token};

use crate::channel::{Channel, ChannelInfo};
use crate::config::ServerConfig;
use crate::dispatch::Step;
use crate::driver::{Core, Reactor, LISTENER, WAKER};
use crate::error::{SendError, ServerError};
use crate::handle::ServerHandle;
use crate::handler::HvWebServer;
use crate::http::Routes;
use crate::proto::frame::Opcode;

/// What callbacks (and the loop between ticks) send through: the server's
/// channels, without the application's own state.
///
/// Sends only queue bytes; they leave in this tick's flush, in the order
/// they were queued per channel, all of one channel's in as few `write`
/// calls as the socket allows. They never block.
pub struct Context<'a> {
    pub(crate) core: &'a mut Core,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").field("channels", &self.core.ws_open).finish()
    }
}

impl Context<'_> {
    /// Queues a text message.
    pub fn send_text(&mut self, channel: Channel, text: &str) -> Result<(), SendError> {
        self.core.send_message(channel, Opcode::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, channel: Channel, data: &[u8]) -> Result<(), SendError> {
        self.core.send_message(channel, Opcode::Binary, data)
    }

    /// Queues one raw frame: the tutorial's `send(channel, msg, opcode, fin)`.
    ///
    /// With `fin == false` a fragmented message starts (opcode `Text` or
    /// `Binary`) or goes on; later fragments may pass `Continuation` or the
    /// message's own opcode, and the one with `fin == true` ends it. Whole
    /// messages sent meanwhile by other calls wait and follow it. `Ping` and
    /// `Pong` go out at once (control frames may interleave fragments);
    /// `Close` is refused: use [`Context::close`].
    ///
    /// Text fragments are not checked for UTF-8: together they must form
    /// valid UTF-8, or the peer will close with 1007.
    pub fn send(&mut self, channel: Channel, data: &[u8], opcode: Opcode, fin: bool) -> Result<(), SendError> {
        self.core.send(channel, opcode, data, fin)
    }

    /// Queues a ping; the peer's pong arrives in `on_ws_pong`.
    pub fn ping(&mut self, channel: Channel, payload: &[u8]) -> Result<(), SendError> {
        self.core.send(channel, Opcode::Ping, payload, true)
    }

    /// Starts the closing handshake: `code` any that may go on the wire
    /// (1000-1003, 1007-1014 such as 1008 policy violation or 1011 internal
    /// error, and the application range 3000-4999), `reason` at most 123
    /// bytes. `on_ws_close` runs when the peer answers (or after
    /// the close timeout); sends to the channel fail from now on.
    pub fn close(&mut self, channel: Channel, code: u16, reason: &str) -> Result<(), SendError> {
        self.core.close(channel, code, reason)
    }

    /// Sends a text message to every open channel except `except`, encoding
    /// the frame once. Returns how many channels it was queued for.
    pub fn broadcast_text(&mut self, text: &str, except: Option<Channel>) -> usize {
        self.core
            .broadcast_where(Opcode::Text, text.as_bytes(), |c| Some(c) != except)
    }

    /// Sends a binary message to every open channel except `except`.
    pub fn broadcast_binary(&mut self, data: &[u8], except: Option<Channel>) -> usize {
        self.core.broadcast_where(Opcode::Binary, data, |c| Some(c) != except)
    }

    /// Sends one message, encoded once, to each of `channels` that is open
    /// (a room, a team). `opcode` must be `Text` or `Binary`.
    pub fn broadcast_to(
        &mut self,
        channels: impl IntoIterator<Item = Channel>,
        opcode: Opcode,
        data: &[u8],
    ) -> Result<usize, SendError> {
        if !matches!(opcode, Opcode::Text | Opcode::Binary) {
            return Err(SendError::InvalidOpcode(opcode));
        }
        Ok(self.core.broadcast_to(channels, opcode, data))
    }

    /// Whether `channel` is open: connected, and no close sent.
    pub fn is_open(&self, channel: Channel) -> bool {
        self.core.is_open(channel)
    }

    /// The handshake details of a channel (path, query, headers, peer
    /// address, subprotocol), while it is connected.
    pub fn info(&self, channel: Channel) -> Option<&ChannelInfo> {
        self.core.info(channel)
    }

    /// Every open channel.
    pub fn channels(&self) -> impl Iterator<Item = Channel> + '_ {
        self.core.open_channels()
    }

    /// How many WebSocket connections exist (open or closing).
    pub fn channel_count(&self) -> usize {
        self.core.ws_open
    }

    /// Bytes queued for `channel` and not yet written to its socket.
    pub fn buffered_amount(&self, channel: Channel) -> usize {
        self.core.buffered_amount(channel)
    }

    /// Asks the server to stop, as [`ServerHandle::stop`] does.
    pub fn stop(&mut self) {
        self.core.stop_requested = true;
    }

    /// A handle for other threads.
    pub fn handle(&self) -> Option<ServerHandle> {
        self.core.handle.clone()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    Initialized,
    Running,
    Stopping { deadline: Instant },
    Stopped,
}

/// A WebSocket + HTTP server driven by the caller's loop.
///
/// `init` binds and registers routes, `start` begins accepting, each
/// `tick` does the network work that is ready and returns, `stop` closes
/// every channel with 1001 and the listener.
///
/// ```no_run
/// use hvws::{Channel, Context, HvWebServer, Server};
///
/// struct Echo;
/// impl HvWebServer for Echo {
///     fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
///         let _ = ctx.send_text(ch, msg);
///     }
/// }
///
/// let mut server = Server::new(Echo);
/// server.init(8080)?;
/// server.start()?;
/// loop {
///     server.tick()?;
///     // ... the game's frame ...
///     # break;
/// }
/// server.stop()?;
/// # Ok::<(), hvws::ServerError>(())
/// ```
pub struct Server<H: HvWebServer> {
    handler: H,
    routes: Routes<H>,
    core: Core,
    reactor: Option<Reactor>,
    state: State,
}

impl<H: HvWebServer + fmt::Debug> fmt::Debug for Server<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("handler", &self.handler)
            .field("state", &self.state)
            .field("connections", &self.core.conns.len())
            .finish()
    }
}

impl<H: HvWebServer> Server<H> {
    /// A server running `handler` with the default [`ServerConfig`].
    pub fn new(handler: H) -> Server<H> {
        Server::with_config(handler, ServerConfig::default())
    }

    /// A server running `handler` with `config`.
    pub fn with_config(handler: H, config: ServerConfig) -> Server<H> {
        Server {
            handler,
            routes: Routes::default(),
            core: Core::new(config),
            reactor: None,
            state: State::New,
        }
    }

    /// Calls `on_init` and binds to `port` on every interface (`0.0.0.0`);
    /// port 0 lets the OS choose (see [`Server::local_addr`]).
    pub fn init(&mut self, port: u16) -> Result<(), ServerError> {
        self.init_addr(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
    }

    /// Calls `on_init` and binds to `addr` (`127.0.0.1:0` in tests).
    pub fn init_addr(&mut self, addr: SocketAddr) -> Result<(), ServerError> {
        if self.state != State::New {
            return Err(ServerError::AlreadyInitialized);
        }
        let reactor = Reactor::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
        self.core.handle = Some(ServerHandle {
            tx: reactor.tx.clone(),
            waker: reactor.waker.clone(),
        });
        self.reactor = Some(reactor);
        self.handler.on_init(&mut self.routes);
        self.state = State::Initialized;
        Ok(())
    }

    /// Begins accepting connections.
    pub fn start(&mut self) -> Result<(), ServerError> {
        match (self.state, self.reactor.as_mut()) {
            (State::Initialized, Some(r)) => {
                r.listen().map_err(ServerError::Poll)?;
                self.state = State::Running;
                log::info!("hvws listening on {}", r.local_addr);
                Ok(())
            }
            (State::New, _) => Err(ServerError::NotInitialized),
            _ => Err(ServerError::NotRunning),
        }
    }

    /// The address the server listens on, once initialized.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.reactor.as_ref().map(|r| r.local_addr)
    }

    /// Does all the network work that is ready, runs the callbacks, flushes
    /// what they sent, and returns without waiting.
    ///
    /// Its cost grows with the ready work, not with the number of open
    /// connections. Work per tick is bounded: at most 1024 readiness
    /// events, 256 accepts, and `read_budget_per_tick` bytes per
    /// connection; what is left is taken up by the next tick.
    pub fn tick(&mut self) -> Result<(), ServerError> {
        self.tick_timeout(Duration::ZERO)
    }

    /// Like [`Server::tick`], but first waits up to `timeout` for something
    /// to do: for a network thread of its own that should not spin.
    pub fn tick_timeout(&mut self, timeout: Duration) -> Result<(), ServerError> {
        match self.state {
            State::Running | State::Stopping { .. } => self.run_once(timeout),
            _ => Err(ServerError::NotRunning),
        }
    }

    /// Closes every channel with 1001 (after what was queued for it),
    /// closes the listener, and waits up to `shutdown_timeout` for the peers
    /// to answer; channels still open then are dropped. `on_ws_close` runs
    /// for every channel.
    pub fn stop(&mut self) -> Result<(), ServerError> {
        match self.state {
            State::New | State::Initialized => {
                self.reactor = None;
                self.state = State::Stopped;
                return Ok(());
            }
            State::Stopped => return Ok(()),
            State::Running | State::Stopping { .. } => self.core.stop_requested = true,
        }
        while self.is_running() {
            self.run_once(Duration::from_millis(20))?;
        }
        Ok(())
    }

    /// True from `start` until a stop has finished.
    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running | State::Stopping { .. })
    }

    /// A `Send + Clone` handle for other threads, once initialized.
    pub fn handle(&self) -> Result<ServerHandle, ServerError> {
        self.core.handle.clone().ok_or(ServerError::NotInitialized)
    }

    /// The application.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The application, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// A context to send through between ticks (from the game loop); what
    /// it queues leaves in the next tick.
    pub fn context(&mut self) -> Context<'_> {
        Context { core: &mut self.core }
    }

    /// Runs `f` with the application and a context, e.g. to push a state
    /// snapshot computed from the game's state.
    pub fn with_context<R>(&mut self, f: impl FnOnce(&mut H, &mut Context<'_>) -> R) -> R {
        f(&mut self.handler, &mut Context { core: &mut self.core })
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.core.config
    }

    fn run_once(&mut self, timeout: Duration) -> Result<(), ServerError> {
        let Server {
            handler,
            routes,
            core,
            reactor,
            state,
        } = self;
        let rx = reactor.as_mut().ok_or(ServerError::NotRunning)?;
        let busy = !core.dirty.is_empty() || !core.read_pending.is_empty() || rx.accept_pending || !rx.rx.is_empty();
        let mut wait = if busy { Duration::ZERO } else { timeout };
        for at in [core.timers.next_deadline(), rx.accept_retry_at].into_iter().flatten() {
            wait = wait.min(at.saturating_duration_since(Instant::now()));
        }
        match rx.poll.poll(&mut rx.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ServerError::Poll(e)),
        }
        core.now = Instant::now();
        core.tick += 1;
        // Connections whose read budget ran out last tick; what this tick's
        // reads leave owed goes to the next one.
        let mut owed = mem::take(&mut core.read_owed);
        mem::swap(&mut owed, &mut core.read_pending);
        if rx.accept_retry_at.is_some_and(|at| at <= core.now) {
            rx.accept_retry_at = None;
            rx.accept_pending = true;
        }
        let mut step = Step { handler, routes, core };
        let events = mem::replace(&mut rx.events, Events::with_capacity(0));
        for ev in events.iter() {
            match ev.token() {
                LISTENER => rx.accept_pending = true,
                WAKER => {}
                Token(key) => {
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        step.read(key, &mut rx.scratch, ev.is_read_closed() || ev.is_error());
                    }
                    if ev.is_writable() {
                        step.writable(key);
                    }
                }
            }
        }
        rx.events = events;
        for &key in &owed {
            // No edge is coming for what is left in these sockets (maybe an
            // EOF), so read until the kernel says there is no more.
            step.read(key, &mut rx.scratch, true);
        }
        owed.clear();
        step.core.read_owed = owed;
        if rx.accept_pending {
            step.accept(rx);
        }
        // Only what was queued when the tick began, so a busy sender on
        // another thread cannot keep the tick from returning.
        for _ in 0..rx.rx.len() {
            let Ok(cmd) = rx.rx.try_recv() else { break };
            step.command(cmd);
        }
        step.expire_timers();
        step.report_slow_consumers();
        step.flush();
        if step.core.stop_requested && *state == State::Running {
            step.begin_stop(rx);
            *state = State::Stopping {
                deadline: step.core.now + step.core.config.shutdown_timeout,
            };
        }
        if let State::Stopping { deadline } = *state {
            if step.core.conns.is_empty() || step.core.now >= deadline {
                step.finish_stop();
                *reactor = None;
                *state = State::Stopped;
                step.core.handle = None;
            }
        }
        Ok(())
    }
}
