//! The server: its lifecycle and one tick. The tick reads top to bottom:
//! the driver's turn (readiness in), reads and the callbacks they trigger,
//! accepts, commands from other threads, deadlines, then one flush (bytes
//! out). The driver-facing steps are in `steps.rs`, the per-connection
//! ones in `events.rs`, the protocol in
//! `proto/`, the sockets in `driver/`.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::config::ServerConfig;
use crate::context::Context;
use crate::driver::{Reactor, Ready};
use crate::error::ServerError;
use crate::events::Dispatch;
use crate::handle::{Command, ServerHandle};
use crate::handler::HvWebServer;
use crate::http::Routes;
use crate::proto::ServerConn;
use crate::stats::Stats;
use crate::steps::{accept, flush, read_all};
use crate::table::{Core, TickWork};

/// Connections refused with 503 that may linger at once, past
/// `max_connections`, while their answer is written; beyond this, refused
/// connections are dropped without one.
pub(crate) const REFUSAL_SLOTS: usize = 64;

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
///         ctx.send_text(ch, msg);
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
    /// Where the handles' commands arrive; dropped when the server stops,
    /// so their calls fail from then on.
    commands: Option<Receiver<Command>>,
    /// This tick's readiness, kept for its allocation.
    ready: Vec<Ready>,
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
        let (handle, commands) = ServerHandle::new();
        Server {
            handler,
            routes: Routes::default(),
            core: Core::new(config, handle),
            reactor: None,
            commands: Some(commands),
            ready: Vec::new(),
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
        self.init_with(|rx| rx.bind(addr).map_err(|source| ServerError::Bind { addr, source }))
    }

    /// Calls `on_init` and binds an https/wss listener to `port` on every
    /// interface: HTTP and WebSocket over TLS, with the certificate of
    /// `tls` (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn init_tls(&mut self, port: u16, tls: crate::ServerTls) -> Result<(), ServerError> {
        self.init_tls_addr(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)), tls)
    }

    /// Calls `on_init` and binds an https/wss listener to `addr`.
    #[cfg(feature = "tls")]
    pub fn init_tls_addr(&mut self, addr: SocketAddr, tls: crate::ServerTls) -> Result<(), ServerError> {
        self.init_with(|rx| {
            rx.bind_tls(addr, tls.rustls())
                .map_err(|source| ServerError::Bind { addr, source })
        })
    }

    /// Calls `on_init` and listens on two ports at once, as dasHV's
    /// `init_wss(port, httpsPort)`: plain http/ws on `port`, https/wss on
    /// `https_port`, with the same routes and one channel table.
    #[cfg(feature = "tls")]
    pub fn init_wss(&mut self, port: u16, https_port: u16, tls: crate::ServerTls) -> Result<(), ServerError> {
        self.init(port)?;
        self.listen_tls_addr(SocketAddr::from((Ipv4Addr::UNSPECIFIED, https_port)), tls)
    }

    /// Adds an https/wss listener on `addr` to an initialized server (before
    /// or after `start`), beside the listener `init` bound.
    #[cfg(feature = "tls")]
    pub fn listen_tls_addr(&mut self, addr: SocketAddr, tls: crate::ServerTls) -> Result<(), ServerError> {
        let rx = match (self.state, self.reactor.as_mut()) {
            (State::Initialized | State::Running, Some(rx)) => rx,
            (State::New, _) => return Err(ServerError::NotInitialized),
            _ => return Err(ServerError::NotRunning),
        };
        rx.bind_tls(addr, tls.rustls())
            .map_err(|source| ServerError::Bind { addr, source })?;
        Ok(())
    }

    /// New connections to the TLS listeners use `tls` from now on: a renewed
    /// certificate without a restart. Open connections keep theirs. From
    /// another thread, [`ServerHandle::set_tls`] does the same.
    ///
    /// Fails with [`ServerError::NoTlsListener`] on a server without a TLS
    /// listener (nothing would use the certificate), and before `init`.
    #[cfg(feature = "tls")]
    pub fn set_tls(&mut self, tls: crate::ServerTls) -> Result<(), ServerError> {
        let rx = match (self.state, self.reactor.as_mut()) {
            (State::New, _) => return Err(ServerError::NotInitialized),
            (_, Some(rx)) => rx,
            (_, None) => return Err(ServerError::NotRunning),
        };
        match rx.set_tls(tls.rustls()) {
            0 => Err(ServerError::NoTlsListener),
            _ => Ok(()),
        }
    }

    /// The address of the first https/wss listener, once initialized.
    #[cfg(feature = "tls")]
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.reactor.as_ref().and_then(Reactor::tls_addr)
    }

    fn init_with(
        &mut self,
        bind: impl FnOnce(&mut Reactor) -> Result<SocketAddr, ServerError>,
    ) -> Result<(), ServerError> {
        if self.state != State::New {
            return Err(ServerError::AlreadyInitialized);
        }
        let most = self.core.config.max_connections.saturating_add(REFUSAL_SLOTS);
        if most >= 1 << crate::channel::INDEX_BITS {
            return Err(ServerError::InvalidConfig(format!(
                "max_connections {} is over what channel ids hold (16,777,150)",
                self.core.config.max_connections
            )));
        }
        let budget = self.core.config.tick_budget;
        if budget.messages == 0 || budget.bytes == 0 || budget.writes == 0 {
            return Err(ServerError::InvalidConfig(format!(
                "tick_budget {budget:?} would never let a tick read or write: use at least 1 of each"
            )));
        }
        let code = self.core.config.idle_close_code;
        if ServerConn::check_close_code(code).is_err() {
            return Err(ServerError::InvalidConfig(format!(
                "idle_close_code {code} cannot be sent: use 1000-1003, 1007-1011 or 3000-4999"
            )));
        }
        let mut reactor = Reactor::new().map_err(ServerError::Poll)?;
        // rustls holds at most this much unsent, so a slow TLS reader's
        // backlog builds up in the connection's queue, where the write cap
        // and the slow-consumer policy apply, as for a plain one.
        #[cfg(feature = "tls")]
        reactor.set_tls_buffer_limit(self.core.config.max_write_buffer.clamp(16 << 10, 64 << 10));
        reactor.set_reuse_port(self.core.config.reuse_port);
        bind(&mut reactor)?;
        self.core.handle.set_waker(reactor.waker());
        self.reactor = Some(reactor);
        self.handler.on_init(&mut self.routes);
        if let Err(e) = self.routes.check() {
            // Unbind, so nothing answers with a broken table.
            self.reactor = None;
            self.routes = Routes::default();
            return Err(ServerError::InvalidRoute(e));
        }
        // Late answers (deferred, streamed) get the same CORS headers,
        // after-middleware and access log line as immediate ones.
        self.core.chain = self.routes.response_chain();
        self.state = State::Initialized;
        Ok(())
    }

    /// Joins `hub`, so that topics span this server and every other one
    /// that joined it (each on its own thread, usually): a publish here
    /// reaches their subscribers too, after this tick, and theirs reach
    /// this server's. A server joins one hub, once; joining again moves
    /// it. It leaves when it stops.
    ///
    /// ```no_run
    /// use hvws::{Hub, HvWebServer, Server, ServerConfig};
    /// # #[derive(Default)] struct Game;
    /// # impl HvWebServer for Game {}
    /// // Two threads of one's own, one port (SO_REUSEPORT), one hub.
    /// let (hub, config) = (Hub::new(), ServerConfig { reuse_port: true, ..Default::default() });
    /// for _ in 0..2 {
    ///     let (hub, config) = (hub.clone(), config.clone());
    ///     std::thread::spawn(move || -> Result<(), hvws::ServerError> {
    ///         let mut server = Server::with_config(Game::default(), config);
    ///         server.join_hub(&hub);
    ///         server.init(8080)?;
    ///         server.start()?;
    ///         server.run()
    ///     });
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    /// ([`ServerGroup`](crate::ServerGroup) does this for you, and checks
    /// that nothing else holds the port.)
    pub fn join_hub(&mut self, hub: &crate::Hub) {
        self.core.hub = Some(hub.join(self.core.handle.clone()));
    }

    /// The hub this server joined, if any.
    pub fn hub(&self) -> Option<crate::Hub> {
        self.core.hub.as_ref().map(crate::hub::HubLink::hub)
    }

    /// Ticks until the server stops, sleeping in the poller between
    /// network events: the whole loop of a thread that only serves the
    /// network (a [`ServerGroup`](crate::ServerGroup)'s default).
    /// Other threads reach it through its [`ServerHandle`].
    pub fn run(&mut self) -> Result<(), ServerError> {
        while self.is_running() {
            self.tick_timeout(Duration::from_secs(60))?;
        }
        Ok(())
    }

    /// Begins accepting connections.
    pub fn start(&mut self) -> Result<(), ServerError> {
        match (self.state, self.reactor.as_mut()) {
            (State::Initialized, Some(r)) => {
                r.listen().map_err(ServerError::Poll)?;
                self.state = State::Running;
                log::info!("hvws listening: {r:?}");
                Ok(())
            }
            (State::New, _) => Err(ServerError::NotInitialized),
            _ => Err(ServerError::NotRunning),
        }
    }

    /// The address the server listens on (the first listener's), once
    /// initialized.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.reactor.as_ref().and_then(Reactor::local_addr)
    }

    /// Does all the network work that is ready, runs the callbacks, flushes
    /// what they sent, and returns without waiting.
    ///
    /// In order: the poller's readiness; reads, each followed at once by the
    /// callbacks for what it completed (a message is handed to the callback
    /// where it was read, before the next read reuses the buffer); accepts;
    /// commands from [`ServerHandle`]s; deadlines (pings, timeouts); then
    /// one flush, so everything queued during the tick, by callbacks or by
    /// the loop since the last tick, leaves in one `write` per connection.
    ///
    /// So a tick reads before it flushes: a game frame that calls `tick()`
    /// first sees this frame's inputs in its callbacks, can step its
    /// simulation on them, queue the snapshot through
    /// [`Server::context`], and send it at once with [`Server::flush`]
    /// rather than at the next tick ([`FramePacer`](crate::FramePacer)
    /// runs that loop at a fixed rate).
    ///
    /// Its cost grows with the ready work, not with the number of open
    /// connections. Work per tick is bounded, so a flood cannot keep a
    /// frame from ending: one readiness event per connection, 256 accepts,
    /// `read_budget_per_tick` bytes per connection, the
    /// [`ServerConfig::tick_budget`] (messages handed to the application
    /// and bytes read, all connections together; off by default), and the
    /// commands queued when the tick began; what is left is taken up by
    /// the next tick, the connections the budget did not reach first
    /// (round-robin: see [`TickBudget`](crate::TickBudget) for the bound on
    /// any client's wait).
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

    /// Writes what is queued now (sends made since the last tick, from the
    /// loop), without reading or waiting: the end of a game frame that
    /// queued its snapshot after its `tick()`. A connection found not
    /// reading may be closed by it (the slow-consumer policy), with its
    /// `on_ws_error` and `on_ws_close`.
    pub fn flush(&mut self) -> Result<(), ServerError> {
        if !self.is_running() {
            return Err(ServerError::NotRunning);
        }
        let Server {
            handler,
            routes,
            core,
            reactor,
            ..
        } = self;
        let rx = reactor.as_mut().ok_or(ServerError::NotRunning)?;
        core.now = Instant::now();
        core.refresh_date();
        let mut d = Dispatch { handler, routes, core };
        d.report_sends();
        d.report_topics();
        if let Some(hub) = &mut d.core.hub {
            hub.forward();
        }
        flush(rx, &mut d);
        Ok(())
    }

    /// Ticks until `deadline`, sleeping in the poller between network
    /// events (never spinning, never sleeping past it), and returns at it:
    /// the wait between two game frames, spent serving the network.
    pub fn tick_until(&mut self, deadline: Instant) -> Result<(), ServerError> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return self.tick();
            }
            self.tick_timeout(deadline - now)?;
            if !self.is_running() {
                return Ok(());
            }
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
                self.commands = None;
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

    /// A `Send + Clone` handle for other threads. Commands made through it
    /// before the server runs wait for its first tick.
    pub fn handle(&self) -> ServerHandle {
        self.core.handle.clone()
    }

    /// How many WebSocket channels the application knows of (opened, close
    /// not yet reported), as [`Context::channel_count`].
    pub fn channel_count(&self) -> usize {
        self.core.live
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

    /// What the server has done and holds now: connections, handshakes,
    /// closes by code, messages and bytes, slow consumers (see [`Stats`]).
    /// A copy; [`ServerHandle::stats`] gives the same from other threads,
    /// as of the last tick.
    ///
    /// ```
    /// # use hvws::{HvWebServer, Server};
    /// # struct App;
    /// # impl HvWebServer for App {}
    /// let server = Server::new(App);
    /// let stats = server.stats();
    /// assert_eq!((stats.connections, stats.closes_total()), (0, 0));
    /// ```
    pub fn stats(&self) -> Stats {
        self.core.stats()
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
            commands,
            ready,
            state,
        } = self;
        let rx = reactor.as_mut().ok_or(ServerError::NotRunning)?;
        let queued = commands.as_ref().map_or(0, Receiver::len);

        // 1. The driver's turn: wait (unless work is left over) for
        //    readiness or the next deadline.
        let busy = !core.dirty.is_empty()
            || !core.attention.is_empty()
            || !core.resume.is_empty()
            || !core.owed_pieces.is_empty()
            || rx.has_pending_work()
            || queued > 0;
        let mut wait = if busy { Duration::ZERO } else { timeout };
        for at in [core.schedule.next_deadline(), rx.accept_retry_at()]
            .into_iter()
            .flatten()
        {
            wait = wait.min(at.saturating_duration_since(Instant::now()));
        }
        let owed = rx.turn(wait, ready).map_err(ServerError::Poll)?;
        core.now = Instant::now();
        core.refresh_date();
        rx.retry_accepts(core.now);
        let mut d = Dispatch { handler, routes, core };
        // File bodies that used their share of the last flush go on.
        for key in std::mem::take(&mut d.core.owed_pieces) {
            d.core.mark_dirty(key);
        }

        // 2. Reads, each with the callbacks for what it completed: those
        //    left over from last tick first, then the new readiness, until
        //    the tick's budget is spent.
        d.core.work = TickWork::default();
        read_all(rx, &mut d, &owed, ready);
        rx.return_owed(owed);

        // 3. New connections.
        accept(rx, &mut d);

        // 4. Commands from other threads: only those queued when the tick
        //    began, so a busy sender cannot keep the tick from returning.
        if let Some(commands) = commands.as_ref() {
            for _ in 0..queued {
                let Ok(cmd) = commands.try_recv() else { break };
                #[cfg(feature = "tls")]
                if let crate::handle::Command::SetTls(tls) = &cmd {
                    if rx.set_tls(tls.rustls()) == 0 {
                        log::warn!("set_tls: the server has no TLS listener");
                    }
                    continue;
                }
                d.command(cmd);
            }
        }

        // Pipelined requests that waited behind a late answer: read them
        // now (no new bytes will announce them).
        for key in std::mem::take(&mut d.core.resume) {
            if d.input(key, &mut []) {
                rx.owe(key);
            }
        }

        // 5. Deadlines, and the closes that sends caused (slow consumers).
        let live = d.core.conns.len();
        let conns = &d.core.conns;
        d.core
            .schedule
            .compact(live, |w, coarse| conns.get(w.key).is_some_and(|s| s.wants(w, coarse)));
        while let Some(w) = d.core.schedule.pop_due(d.core.now) {
            d.timeout(w);
        }
        d.report_sends();
        d.report_topics();
        // This tick's publishes, to the other servers of the hub.
        if let Some(hub) = &mut d.core.hub {
            hub.forward();
        }

        // 6. One flush: bytes out.
        flush(rx, &mut d);

        if d.core.stop_requested && *state == State::Running {
            // Take what the kernel already queued before closing: closing a
            // listener resets its queued connections (with SO_REUSEPORT
            // they are not handed to the port's other listeners either),
            // whereas accepted ones get the goodbye below, a clean close.
            for _ in 0..8 {
                rx.mark_accept_pending();
                accept(rx, &mut d);
                if !rx.accept_pending() {
                    break;
                }
            }
            rx.close_listener();
            d.begin_stop();
            flush(rx, &mut d);
            *state = State::Stopping {
                deadline: d.core.now + d.core.config.shutdown_timeout,
            };
        }
        if let State::Stopping { deadline } = *state {
            if d.core.conns.is_empty() || d.core.now >= deadline {
                for key in d.finish_stop() {
                    rx.close(key);
                    d.core.remove(key);
                }
                d.core.schedule.clear();
                *reactor = None;
                *commands = None;
                *state = State::Stopped;
                // Publishes stop coming here.
                d.core.hub = None;
            }
        }
        d.core.end_tick();
        Ok(())
    }
}
