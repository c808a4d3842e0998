//! Several servers on one port, one per thread: the thread plumbing a
//! program on every core would otherwise write itself.
//!
//! Each thread owns a [`Server`] (its reactor, its handler, its loop); the
//! listeners share the port with `SO_REUSEPORT`, so the kernel spreads new
//! connections over them, and the servers join one [`Hub`], so topics span
//! them.
//!
//! Stopping: [`ServerGroup::stop`] asks every server at once. Linux does not
//! move the connections queued on a closing `SO_REUSEPORT` listener to the
//! port's other listeners (unless `net.ipv4.tcp_migrate_req` is set): it
//! resets them. So each server, before closing its listener, accepts what
//! its queue holds and closes those connections cleanly with the rest
//! (1001 for WebSockets); connections that arrive after every listener
//! closed are refused by the kernel, as for a single server.

use std::fmt;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::handle::ServerHandle;
use crate::handler::HvWebServer;
use crate::hub::Hub;
use crate::server::Server;

/// N servers, one per thread, sharing one port and one [`Hub`].
///
/// ```no_run
/// use hvws::{Channel, Context, HvWebServer, ServerConfig, ServerGroup};
///
/// struct Echo;
/// impl HvWebServer for Echo {
///     fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
///         ctx.send_text(ch, msg);
///     }
/// }
///
/// let addr = "0.0.0.0:8080".parse()?;
/// // Each thread makes its own handler and runs the default loop.
/// let group = ServerGroup::spawn(addr, 4, ServerConfig::default(), |_thread| Echo, |server, _thread| server.run())?;
/// println!("listening on {}", group.local_addr());
/// group.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ServerGroup {
    addr: SocketAddr,
    hub: Hub,
    handles: Vec<ServerHandle>,
    threads: Vec<JoinHandle<Result<(), ServerError>>>,
}

impl fmt::Debug for ServerGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerGroup")
            .field("addr", &self.addr)
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl ServerGroup {
    /// Starts `threads` servers on `addr` (port 0: the first picks a port,
    /// the others share it), each on its own thread with
    /// `config` (plus `reuse_port`) and a handler from `make(thread)`,
    /// then runs `run(server, thread)` on each: its loop, which returns
    /// when the server stopped ([`Server::run`] is the plain one; a game
    /// thread ticks its simulation there too).
    ///
    /// Returns once every server listens, so a client may connect at once;
    /// fails (stopping those that started) if any of them could not start,
    /// or if something already listens on `addr`'s port, another group
    /// included (the port is shared only among this group's servers).
    pub fn spawn<H, M, R>(
        addr: SocketAddr,
        threads: usize,
        config: ServerConfig,
        make: M,
        run: R,
    ) -> Result<ServerGroup, ServerError>
    where
        H: HvWebServer + 'static,
        M: Fn(usize) -> H + Send + Sync + 'static,
        R: Fn(&mut Server<H>, usize) -> Result<(), ServerError> + Send + Sync + 'static,
    {
        ServerGroup::spawn_with_hub(addr, threads, config, Hub::new(), make, run)
    }

    /// [`ServerGroup::spawn`] with servers joining `hub` (one with a
    /// Redis bridge, say, or shared with servers on other ports).
    ///
    /// ```no_run
    /// use hvws::{FramePacer, Hub, HvWebServer, ServerConfig, ServerGroup};
    /// # #[derive(Default)] struct Game;
    /// # impl HvWebServer for Game {}
    /// let hub = Hub::new();
    /// let group = ServerGroup::spawn_with_hub(
    ///     "0.0.0.0:8080".parse()?,
    ///     2,
    ///     ServerConfig::default(),
    ///     hub.clone(),
    ///     |_thread| Game::default(),
    ///     // Each thread runs a 30 Hz frame loop of its own.
    ///     |server, _thread| {
    ///         let mut pacer = FramePacer::new(30);
    ///         while server.is_running() {
    ///             pacer.wait(server)?;
    ///         }
    ///         Ok(())
    ///     },
    /// )?;
    /// hub.publish_text("lobby", "welcome to every thread's lobby");
    /// group.stop();
    /// group.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_with_hub<H, M, R>(
        addr: SocketAddr,
        threads: usize,
        config: ServerConfig,
        hub: Hub,
        make: M,
        run: R,
    ) -> Result<ServerGroup, ServerError>
    where
        H: HvWebServer + 'static,
        M: Fn(usize) -> H + Send + Sync + 'static,
        R: Fn(&mut Server<H>, usize) -> Result<(), ServerError> + Send + Sync + 'static,
    {
        if threads == 0 {
            return Err(ServerError::InvalidConfig(
                "a server group needs at least one thread".into(),
            ));
        }
        // SO_REUSEPORT would let this group share the port with a copy of
        // the program already running (a restart script, a double start)
        // and split the clients and the rooms between them without a word.
        // A plain bind first fails if anything listens there.
        if addr.port() != 0 {
            if let Err(source) = std::net::TcpListener::bind(addr) {
                return Err(ServerError::Bind { addr, source });
            }
        }
        let make = Arc::new(make);
        let run = Arc::new(run);
        let config = ServerConfig {
            reuse_port: true,
            ..config
        };
        let mut group = ServerGroup {
            addr,
            hub: hub.clone(),
            handles: Vec::new(),
            threads: Vec::new(),
        };
        let mut go = Vec::new();
        // One at a time: the first binds (and may pick the port), the
        // others bind to the port it got.
        for i in 0..threads {
            let (ready_tx, ready_rx) = mpsc::channel();
            let (go_tx, go_rx) = mpsc::channel::<bool>();
            let (make, run, hub, config) = (make.clone(), run.clone(), hub.clone(), config.clone());
            let bind_to = group.addr;
            let thread = std::thread::Builder::new()
                .name(format!("hvws-{i}"))
                .spawn(move || -> Result<(), ServerError> {
                    let mut server = Server::with_config(make(i), config);
                    server.join_hub(&hub);
                    let started = server.init_addr(bind_to).and_then(|()| {
                        let addr = server.local_addr().ok_or(ServerError::NotInitialized)?;
                        Ok((addr, server.handle()))
                    });
                    let ok = started.is_ok();
                    let _ = ready_tx.send(started);
                    // Every server binds before any accepts: a failure
                    // stops them all before a client is let in.
                    if !ok || go_rx.recv() != Ok(true) {
                        return Ok(());
                    }
                    server.start()?;
                    run(&mut server, i)
                })
                .map_err(ServerError::Poll)?;
            group.threads.push(thread);
            go.push(go_tx);
            match ready_rx.recv() {
                Ok(Ok((local, handle))) => {
                    group.addr = local;
                    group.handles.push(handle);
                }
                Ok(Err(e)) => {
                    group.abort(go);
                    return Err(e);
                }
                Err(_) => {
                    group.abort(go);
                    return Err(ServerError::ThreadPanicked(i));
                }
            }
        }
        for tx in go {
            let _ = tx.send(true);
        }
        Ok(group)
    }

    /// Tells the started threads to give up, and waits for them.
    fn abort(&mut self, go: Vec<mpsc::Sender<bool>>) {
        for tx in go {
            let _ = tx.send(false);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// The port the servers share.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Each server's handle, by thread.
    pub fn handles(&self) -> &[ServerHandle] {
        &self.handles
    }

    /// The hub the servers joined: publish to all of them from any thread.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Every server's figures added up, each as of its last tick.
    pub fn stats(&self) -> crate::Stats {
        self.hub.stats()
    }

    /// How many threads the group runs.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Asks every server to stop (as [`ServerHandle::stop`]); their loops
    /// then wind down. [`ServerGroup::join`] waits for that.
    pub fn stop(&self) {
        for h in &self.handles {
            let _ = h.stop();
        }
    }

    /// Waits for every thread's loop to return; the first error (or a
    /// panicked thread) is returned, after all have ended.
    pub fn join(self) -> Result<(), ServerError> {
        let mut first = Ok(());
        for (i, t) in self.threads.into_iter().enumerate() {
            let result = t.join().unwrap_or(Err(ServerError::ThreadPanicked(i)));
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}
