//! A `Send + Clone` handle through which other threads reach the server.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;

use crate::channel::Channel;
use crate::exchange::ResponseId;
use crate::proto::frame::Opcode;
use crate::proto::http::HttpResponse;
use crate::proto::sse::SseEvent;
use crate::proto::{SendError, ServerConn};
use crate::stats::Stats;

/// A request queued by a [`ServerHandle`], carried out by the next tick.
#[derive(Debug)]
pub(crate) enum Command {
    Send {
        channel: Channel,
        opcode: Opcode,
        data: Vec<u8>,
        fin: bool,
    },
    Broadcast {
        opcode: Opcode,
        data: Vec<u8>,
        except: Option<Channel>,
    },
    BroadcastTo {
        channels: Vec<Channel>,
        opcode: Opcode,
        data: Vec<u8>,
    },
    Close {
        channel: Channel,
        code: u16,
        reason: String,
    },
    Stop,
    Subscribe {
        channel: Channel,
        topic: String,
        on: bool,
    },
    Publish {
        topic: String,
        opcode: Opcode,
        data: Vec<u8>,
        except: Option<Channel>,
    },
    /// Publishes made on another server of the hub (or another process):
    /// for this server's subscribers only.
    Topics(Arc<[crate::hub::Published]>),
    /// The hub's Redis bridge changed state.
    #[cfg(feature = "redis")]
    BridgeState(crate::BridgeState),
    Respond {
        id: ResponseId,
        response: HttpResponse,
    },
    StartStream {
        id: ResponseId,
        head: HttpResponse,
    },
    Write {
        id: ResponseId,
        data: Vec<u8>,
    },
    End {
        id: ResponseId,
    },
    /// New TLS connections use this certificate from now on.
    #[cfg(feature = "tls")]
    SetTls(crate::tls::ServerTls),
}

/// Reaches a server from any thread: send, broadcast, close, stop.
///
/// Each call queues a command and wakes the reactor; the server's next tick
/// carries the commands out in the order they were made (per handle and
/// across handles, in the order they reached the queue). A handle exists
/// from [`Server::new`](crate::Server::new) on; commands made before the
/// server runs wait for its first tick. A command for a channel that closed
/// meanwhile is dropped, as a send to it would be. Calls fail with
/// [`SendError::NotRunning`] once the server has stopped, and with the
/// same errors as [`Context`](crate::Context)'s calls for bad arguments.
///
/// ```no_run
/// # use hvws::{Server, HvWebServer};
/// # struct App;
/// # impl HvWebServer for App {}
/// let mut server = Server::new(App);
/// server.init(8080)?;
/// server.start()?;
/// let handle = server.handle();
/// std::thread::spawn(move || {
///     // Until the server stops.
///     while handle.broadcast_text("tick from the simulation", None).is_ok() {
///         std::thread::sleep(std::time::Duration::from_millis(100));
///     }
/// });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ServerHandle {
    tx: Sender<Command>,
    /// Set when the server binds (the poller is made then).
    waker: Arc<OnceLock<Arc<Waker>>>,
    /// The figures as of the server's last tick, written by the tick.
    stats: Arc<Mutex<Stats>>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle").field("queued", &self.tx.len()).finish()
    }
}

impl ServerHandle {
    /// A handle and the queue its commands arrive on.
    pub(crate) fn new() -> (ServerHandle, Receiver<Command>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = ServerHandle {
            tx,
            waker: Arc::new(OnceLock::new()),
            stats: Arc::default(),
        };
        (handle, rx)
    }

    /// Where the tick publishes its figures for [`ServerHandle::stats`].
    pub(crate) fn shared_stats(&self) -> &Mutex<Stats> {
        &self.stats
    }

    /// The server bound its poller: commands wake it from now on.
    pub(crate) fn set_waker(&self, waker: Arc<Waker>) {
        let _ = self.waker.set(waker);
    }

    /// Queues a command (for the hub, which sends other servers theirs).
    pub(crate) fn push_command(&self, cmd: Command) -> Result<(), SendError> {
        self.push(cmd)
    }

    fn push(&self, cmd: Command) -> Result<(), SendError> {
        self.tx.send(cmd).map_err(|_| SendError::NotRunning)?;
        if let Some(waker) = self.waker.get() {
            // A failed wake means the poller is gone, which the next send
            // reports.
            let _ = waker.wake();
        }
        Ok(())
    }

    /// From the next tick on, new connections to the server's TLS
    /// listeners use `tls` (a renewed certificate, say); open connections
    /// keep theirs. As [`Server::set_tls`](crate::Server::set_tls), from
    /// any thread.
    #[cfg(feature = "tls")]
    pub fn set_tls(&self, tls: crate::tls::ServerTls) -> Result<(), SendError> {
        self.push(Command::SetTls(tls))
    }

    /// Queues a text message to `channel`.
    pub fn send_text(&self, channel: Channel, text: impl Into<String>) -> Result<(), SendError> {
        let data = text.into().into_bytes();
        self.push(Command::Send {
            channel,
            opcode: Opcode::Text,
            data,
            fin: true,
        })
    }

    /// Queues a binary message to `channel`.
    pub fn send_binary(&self, channel: Channel, data: impl Into<Vec<u8>>) -> Result<(), SendError> {
        self.push(Command::Send {
            channel,
            opcode: Opcode::Binary,
            data: data.into(),
            fin: true,
        })
    }

    /// Queues one raw frame, as [`Context::send`](crate::Context::send);
    /// its rules are checked now.
    pub fn send(&self, channel: Channel, data: impl Into<Vec<u8>>, opcode: Opcode, fin: bool) -> Result<(), SendError> {
        let data = data.into();
        crate::proto::outgoing::Fragmenter::check_alone(opcode, data.len(), fin)?;
        self.push(Command::Send {
            channel,
            opcode,
            data,
            fin,
        })
    }

    /// Queues a text message to every open channel but `except`.
    pub fn broadcast_text(&self, text: impl Into<String>, except: Option<Channel>) -> Result<(), SendError> {
        self.push(Command::Broadcast {
            opcode: Opcode::Text,
            data: text.into().into_bytes(),
            except,
        })
    }

    /// Queues a binary message to every open channel but `except`.
    pub fn broadcast_binary(&self, data: impl Into<Vec<u8>>, except: Option<Channel>) -> Result<(), SendError> {
        self.push(Command::Broadcast {
            opcode: Opcode::Binary,
            data: data.into(),
            except,
        })
    }

    /// Queues one message, encoded once, to each listed channel (the
    /// arguments in [`ServerHandle::send`]'s order).
    pub fn broadcast_to(
        &self,
        channels: Vec<Channel>,
        data: impl Into<Vec<u8>>,
        opcode: Opcode,
    ) -> Result<(), SendError> {
        crate::proto::outgoing::check_message(opcode)?;
        self.push(Command::BroadcastTo {
            channels,
            opcode,
            data: data.into(),
        })
    }

    /// Subscribes `channel` to `topic`, as [`Context::subscribe`](crate::Context::subscribe),
    /// on the next tick (nothing happens if the channel closed meanwhile).
    ///
    /// ```
    /// # use hvws::{Channel, ServerHandle};
    /// // A matchmaking thread puts two players in a match and starts it.
    /// fn start_match(handle: &ServerHandle, a: Channel, b: Channel) -> Result<(), hvws::SendError> {
    ///     handle.subscribe(a, "match-7")?;
    ///     handle.subscribe(b, "match-7")?;
    ///     // Carried out in order on the next tick: both are in it by then.
    ///     handle.publish_text("match-7", "go", None)
    /// }
    /// ```
    pub fn subscribe(&self, channel: Channel, topic: &str) -> Result<(), SendError> {
        self.push(Command::Subscribe {
            channel,
            topic: topic.to_owned(),
            on: true,
        })
    }

    /// Unsubscribes `channel` from `topic` on the next tick.
    pub fn unsubscribe(&self, channel: Channel, topic: &str) -> Result<(), SendError> {
        self.push(Command::Subscribe {
            channel,
            topic: topic.to_owned(),
            on: false,
        })
    }

    /// Publishes a text message to `topic`, as [`Context::publish_text`](crate::Context::publish_text):
    /// the server's next tick delivers it to its subscribers but `except`,
    /// and hands it to the other servers of its [`Hub`](crate::Hub), if any.
    pub fn publish_text(&self, topic: &str, text: impl Into<String>, except: Option<Channel>) -> Result<(), SendError> {
        self.push(Command::Publish {
            topic: topic.to_owned(),
            opcode: Opcode::Text,
            data: text.into().into_bytes(),
            except,
        })
    }

    /// Publishes a binary message to `topic`, as [`ServerHandle::publish_text`].
    pub fn publish_binary(
        &self,
        topic: &str,
        data: impl Into<Vec<u8>>,
        except: Option<Channel>,
    ) -> Result<(), SendError> {
        self.publish(topic, data, Opcode::Binary, except)
    }

    /// Publishes with the opcode given (`Text` or `Binary`, else
    /// [`SendError::InvalidOpcode`]).
    pub fn publish(
        &self,
        topic: &str,
        data: impl Into<Vec<u8>>,
        opcode: Opcode,
        except: Option<Channel>,
    ) -> Result<(), SendError> {
        crate::proto::outgoing::check_message(opcode)?;
        self.push(Command::Publish {
            topic: topic.to_owned(),
            opcode,
            data: data.into(),
            except,
        })
    }

    /// Queues a close of `channel`, as [`Context::close`](crate::Context::close);
    /// the code is checked now.
    pub fn close(&self, channel: Channel, code: u16, reason: &str) -> Result<(), SendError> {
        ServerConn::check_close_code(code)?;
        self.push(Command::Close {
            channel,
            code,
            reason: reason.to_owned(),
        })
    }

    /// Asks the server to stop: its ticks then close every channel with 1001
    /// and wind down; [`Server::is_running`](crate::Server::is_running)
    /// turns false when done.
    pub fn stop(&self) -> Result<(), SendError> {
        self.push(Command::Stop)
    }

    /// Answers a deferred request, as [`Context::respond`](crate::Context::respond),
    /// from any thread. Dropped if `id` went stale meanwhile.
    pub fn respond(&self, id: ResponseId, response: HttpResponse) -> Result<(), SendError> {
        self.push(Command::Respond { id, response })
    }

    /// Starts a streamed body, as [`Context::start_stream`](crate::Context::start_stream).
    pub fn start_stream(&self, id: ResponseId, head: HttpResponse) -> Result<(), SendError> {
        self.push(Command::StartStream { id, head })
    }

    /// Queues a piece of a streamed body, as [`Context::write`](crate::Context::write).
    pub fn write(&self, id: ResponseId, data: impl Into<Vec<u8>>) -> Result<(), SendError> {
        self.push(Command::Write { id, data: data.into() })
    }

    /// Queues a Server-Sent Event, as [`Context::send_event`](crate::Context::send_event).
    pub fn send_event(&self, id: ResponseId, event: &SseEvent) -> Result<(), SendError> {
        let mut data = Vec::new();
        event.encode(&mut data);
        self.push(Command::Write { id, data })
    }

    /// Ends a streamed body, as [`Context::end`](crate::Context::end).
    pub fn end(&self, id: ResponseId) -> Result<(), SendError> {
        self.push(Command::End { id })
    }

    /// The server's figures as of its last tick (all zero before the
    /// first), as [`Server::stats`](crate::Server::stats) gives them on the
    /// loop's thread. The tick publishes them at its end; this call copies
    /// them out, so it holds the server's lock only for that copy.
    ///
    /// ```
    /// # use hvws::{HvWebServer, Server};
    /// # struct App;
    /// # impl HvWebServer for App {}
    /// let server = Server::new(App);
    /// let handle = server.handle();
    /// let stats = std::thread::spawn(move || handle.stats()).join().unwrap();
    /// assert_eq!((stats.ticks, stats.websockets), (0, 0));
    /// ```
    pub fn stats(&self) -> Stats {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
