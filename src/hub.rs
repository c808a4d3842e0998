//! The hub: what makes topics span several servers (reactors) of one
//! process, and, through a bridge, several processes.
//!
//! Each server keeps its own topic table and delivers its own publishes to
//! its own subscribers at once. What it publishes during a tick it also
//! collects, and at the end of the tick hands the batch to every other
//! server of the hub (one crossbeam send and one `Waker` wake per server
//! per tick, however many publishes) and to the bridge. The payload is
//! copied once into a shared buffer per publish; each server then frames
//! it once for all of its subscribers.
//!
//! Order: one server's publishes reach every other server in the order
//! they were made (one FIFO queue per server), and so one connection's
//! messages do too. Between servers there is no order: a line published
//! on one thread just before a client subscribes on another may still
//! reach that client, since the other server handles its own new
//! connections before the batches queued for it in the same tick.
//!
//! A server does not track which topics the others have subscribers for:
//! with one server per core there are few, and a publish nobody on a
//! server wants costs it one hash lookup.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::handle::{Command, ServerHandle};
use crate::proto::frame::Opcode;
use crate::proto::SendError;

/// One publish on its way to the other servers.
#[derive(Debug)]
pub(crate) struct Published {
    pub topic: Arc<str>,
    pub opcode: Opcode,
    /// Shared by every server the batch goes to: a large payload reaches
    /// each one's subscribers without a copy (`proto/outbox.rs`).
    pub data: Bytes,
}

/// Links servers (one per thread, usually one per core) so that a publish
/// on any of them reaches the subscribers of every one, and, with a
/// `RedisBridge` (feature `redis`), of every process
/// on the same Redis.
///
/// [`ServerGroup`](crate::ServerGroup) makes one for its threads; a
/// program that runs its own threads joins each server with
/// [`Server::join_hub`](crate::Server::join_hub). A clone is the same hub.
///
/// ```
/// use hvws::{Hub, HvWebServer, Server};
/// # #[derive(Default)] struct Game;
/// # impl HvWebServer for Game {}
/// let hub = Hub::new();
/// let mut a = Server::new(Game::default());
/// let mut b = Server::new(Game::default());
/// a.join_hub(&hub);
/// b.join_hub(&hub);
/// assert_eq!(hub.servers(), 2);
/// // From any thread: every subscriber of "news" on a and on b.
/// hub.publish_text("news", "server restarts in 5 minutes");
/// ```
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Default)]
pub(crate) struct HubInner {
    /// Each joined server's handle, by the index it joined with; `None`
    /// once it left.
    members: RwLock<Vec<Option<ServerHandle>>>,
    joined: AtomicUsize,
    /// The link to other processes, if the hub was made with one.
    #[cfg(feature = "redis")]
    pub bridge: std::sync::OnceLock<crate::bridge::BridgeLink>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub").field("servers", &self.servers()).finish()
    }
}

impl Hub {
    /// A hub with no servers yet.
    pub fn new() -> Hub {
        Hub::default()
    }

    /// How many servers are joined (and not stopped).
    pub fn servers(&self) -> usize {
        self.inner.joined.load(Ordering::Relaxed)
    }

    /// The handles of the joined servers, in the order they joined.
    pub fn handles(&self) -> Vec<ServerHandle> {
        let members = self.inner.members.read().unwrap_or_else(|e| e.into_inner());
        members.iter().flatten().cloned().collect()
    }

    /// The figures of every joined server, added up ([`Stats::merge`](crate::Stats::merge)),
    /// each as of its last tick: what [`Routes::metrics`](crate::Routes::metrics)
    /// serves for a server that joined a hub, whichever server answers. A
    /// server that stopped has left the hub and no longer counts (its
    /// counters drop out of the sums, which Prometheus takes as a reset).
    pub fn stats(&self) -> crate::Stats {
        let mut all = crate::Stats::default();
        for handle in self.handles() {
            all.merge(&handle.stats());
        }
        all
    }

    /// Publishes a text message to `topic` on every joined server (and
    /// through the bridge, if any), from any thread: each server delivers
    /// it on its next tick. For a thread outside the servers (a simulation
    /// thread): it has no order with what the servers publish themselves.
    /// A callback that wants its publishes in order with its sends and
    /// other publishes uses [`Context::publish`](crate::Context::publish),
    /// and another thread a server's [`ServerHandle::publish_text`].
    ///
    /// Each server's queue is unbounded: a server whose loop stalls holds
    /// what is published meanwhile until it ticks again.
    pub fn publish_text(&self, topic: &str, text: &str) {
        self.publish_batch(&[message(topic, Opcode::Text, text.as_bytes())], None);
    }

    /// Publishes a binary message, as [`Hub::publish_text`].
    pub fn publish_binary(&self, topic: &str, data: &[u8]) {
        self.publish_batch(&[message(topic, Opcode::Binary, data)], None);
    }

    /// Publishes with the opcode given: `Text` or `Binary`, else
    /// [`SendError::InvalidOpcode`].
    ///
    /// ```
    /// # use hvws::{Hub, Opcode};
    /// let hub = Hub::new();
    /// // From a simulation thread: the world's state, to every server.
    /// hub.publish("world", &[1, 2, 3], Opcode::Binary)?;
    /// assert!(hub.publish("world", b"", Opcode::Ping).is_err());
    /// # Ok::<(), hvws::SendError>(())
    /// ```
    pub fn publish(&self, topic: &str, data: &[u8], opcode: Opcode) -> Result<(), SendError> {
        crate::proto::outgoing::check_message(opcode)?;
        self.publish_batch(&[message(topic, opcode, data)], None);
        Ok(())
    }

    /// A hub whose topics also span every process on the same Redis (and
    /// bridge namespace) through `bridge` (feature `redis`): what a server
    /// of this hub publishes goes to Redis too, and what other processes
    /// publish reaches this hub's servers. The bridge's threads start now
    /// (Redis may be down: the bridge keeps trying, and local delivery
    /// never waits for it); they stop when the last clone of the hub is
    /// dropped. Each server hears of the bridge's state through
    /// [`HvWebServer::on_bridge_state`](crate::HvWebServer::on_bridge_state)
    /// and its [`Stats`](crate::Stats).
    ///
    /// ```no_run
    /// use hvws::{Hub, RedisBridge};
    /// let hub = Hub::with_redis(RedisBridge::new("redis://127.0.0.1:6379", "rooms")?);
    /// # Ok::<(), hvws::RedisBridgeError>(())
    /// ```
    #[cfg(feature = "redis")]
    pub fn with_redis(bridge: crate::RedisBridge) -> Hub {
        let hub = Hub::new();
        let sink = Arc::new(HubSink(Arc::downgrade(&hub.inner)));
        let _ = hub.inner.bridge.set(bridge.start(sink));
        hub
    }

    /// The bridge's state, if the hub has one (feature `redis`).
    #[cfg(feature = "redis")]
    pub fn bridge_state(&self) -> Option<crate::BridgeState> {
        self.inner.bridge.get().map(crate::bridge::BridgeLink::state)
    }

    /// The bridge's counters, if the hub has one (feature `redis`).
    #[cfg(feature = "redis")]
    pub fn bridge_stats(&self) -> Option<crate::BridgeStats> {
        self.inner.bridge.get().map(crate::bridge::BridgeLink::stats)
    }

    /// Joins a server: returns its link (and index).
    pub(crate) fn join(&self, handle: ServerHandle) -> HubLink {
        let mut members = self.inner.members.write().unwrap_or_else(|e| e.into_inner());
        // The bridge may have connected before this server joined: it
        // hears the state now, and each change from here on.
        #[cfg(feature = "redis")]
        if let Some(link) = self.inner.bridge.get() {
            let _ = handle.push_command(Command::BridgeState(link.state()));
        }
        members.push(Some(handle));
        self.inner.joined.fetch_add(1, Ordering::Relaxed);
        HubLink {
            inner: self.inner.clone(),
            index: members.len() - 1,
            outbox: Vec::new(),
        }
    }

    /// Hands a batch to every server but `from`, and (if it came from a
    /// server of this process) to the bridge.
    fn publish_batch(&self, batch: &[Published], from: Option<usize>) {
        self.inner.fan_out(batch, from, true);
    }
}

impl HubInner {
    /// Whether a publish must be copied out for anyone else.
    fn shared(&self) -> bool {
        #[cfg(feature = "redis")]
        if self.bridge.get().is_some() {
            return true;
        }
        self.joined.load(Ordering::Relaxed) > 1
    }

    /// Sends `batch` to every joined server but `from`; to the bridge too
    /// when `bridge` (a batch that came from the bridge does not go back).
    pub(crate) fn fan_out(&self, batch: &[Published], from: Option<usize>, bridge: bool) {
        if batch.is_empty() {
            return;
        }
        let shared: Arc<[Published]> = batch
            .iter()
            .map(|p| Published {
                topic: p.topic.clone(),
                opcode: p.opcode,
                data: p.data.clone(),
            })
            .collect();
        {
            let members = self.members.read().unwrap_or_else(|e| e.into_inner());
            for (i, m) in members.iter().enumerate() {
                if let Some(handle) = m.as_ref().filter(|_| Some(i) != from) {
                    // A server that stopped meanwhile drops it, as it
                    // would a send.
                    let _ = handle.push_command(Command::Topics(shared.clone()));
                }
            }
        }
        #[cfg(feature = "redis")]
        if bridge {
            if let Some(link) = self.bridge.get() {
                for p in batch {
                    link.publish(&p.topic, p.opcode, &p.data, None);
                }
            }
        }
        let _ = bridge;
    }

    /// Sends every joined server a command made by `make`.
    #[cfg(feature = "redis")]
    fn tell_all(&self, make: impl Fn() -> Command) {
        let members = self.members.read().unwrap_or_else(|e| e.into_inner());
        for handle in members.iter().flatten() {
            let _ = handle.push_command(make());
        }
    }
}

fn message(topic: &str, opcode: Opcode, data: &[u8]) -> Published {
    Published {
        topic: Arc::from(topic),
        opcode,
        data: Bytes::copy_from_slice(data),
    }
}

/// What the bridge's threads call: hands other processes' publishes and
/// the bridge's state to every server. It holds the hub weakly, so the
/// bridge (which the hub owns) does not keep the hub alive.
#[cfg(feature = "redis")]
struct HubSink(std::sync::Weak<HubInner>);

#[cfg(feature = "redis")]
impl HubSink {
    fn with_hub(&self, f: impl FnOnce(&HubInner)) {
        let Some(inner) = self.0.upgrade() else { return };
        f(&inner);
        // If the hub was dropped meanwhile, this may be its last owner, and
        // the bridge is then stopped from its own thread:
        // `BridgeLink::stop` does not join the thread it is called on.
        drop(inner);
    }
}

#[cfg(feature = "redis")]
impl crate::bridge::BridgeSink for HubSink {
    fn deliver(&self, batch: Vec<crate::bridge::Remote>) {
        let batch: Vec<Published> = batch
            .into_iter()
            .map(|r| Published {
                topic: r.topic,
                opcode: r.opcode,
                // The bridge's buffer, shared as it is.
                data: Bytes::from_owner(r.data),
            })
            .collect();
        // To every server of this process; not back to Redis.
        self.with_hub(|hub| hub.fan_out(&batch, None, false));
    }

    fn state_changed(&self, state: crate::BridgeState) {
        self.with_hub(|hub| hub.tell_all(|| Command::BridgeState(state.clone())));
    }
}

/// A server's membership of a hub: what it publishes this tick, to hand
/// on at the tick's end.
pub(crate) struct HubLink {
    inner: Arc<HubInner>,
    index: usize,
    outbox: Vec<Published>,
}

impl fmt::Debug for HubLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubLink")
            .field("index", &self.index)
            .field("outbox", &self.outbox.len())
            .finish()
    }
}

impl HubLink {
    /// Keeps a copy of a local publish for the others (if there are any).
    pub fn queue(&mut self, name: Option<&Arc<str>>, topic: &str, opcode: Opcode, payload: &[u8]) {
        if self.inner.shared() {
            self.queue_bytes(name, topic, opcode, Bytes::copy_from_slice(payload));
        }
    }

    /// [`HubLink::queue`] for a payload already shared: no copy.
    pub fn queue_bytes(&mut self, name: Option<&Arc<str>>, topic: &str, opcode: Opcode, payload: Bytes) {
        if !self.inner.shared() {
            return;
        }
        self.outbox.push(Published {
            topic: name.cloned().unwrap_or_else(|| Arc::from(topic)),
            opcode,
            data: payload,
        });
    }

    /// Hands this tick's publishes to the other servers and the bridge.
    pub fn forward(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        self.inner.fan_out(&self.outbox, Some(self.index), true);
        self.outbox.clear();
    }

    /// The bridge's state and counters, if the hub has one.
    #[cfg(feature = "redis")]
    pub fn bridge(&self) -> Option<&crate::bridge::BridgeLink> {
        self.inner.bridge.get()
    }

    /// The hub this link belongs to.
    pub fn hub(&self) -> Hub {
        Hub {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for HubLink {
    /// The server stopped (or was dropped): publishes stop going to it.
    fn drop(&mut self) {
        self.forward();
        let mut members = self.inner.members.write().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = members.get_mut(self.index) {
            if m.take().is_some() {
                self.inner.joined.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}
