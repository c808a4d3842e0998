//! The bridge's two threads and the link the hub keeps to them.
//!
//! - `publish` (any thread, never blocks) encodes the envelope and
//!   `try_send`s it on a bounded queue; a full queue, or a publisher that
//!   is not connected, drops it and counts it.
//! - The publisher thread connects, then sends what the queue holds,
//!   pipelined (up to [`PUBLISH_BATCH`] messages per round trip), and pings
//!   Redis when idle so that a dead connection is noticed before the next
//!   publish needs it. When the connection fails it drains (drops) the
//!   queue while it waits to reconnect.
//! - The subscriber thread connects, subscribes, and reads with a short
//!   timeout (so it notices `stop`), handing each batch of envelopes from
//!   other nodes to the sink. It pings when idle too. Every new connection
//!   subscribes again.
//!
//! Both report their own state; the bridge's state is the worse of the
//! two, and the sink hears of each change, in order.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use redis::{Client, Connection, RedisError};

use super::envelope::{self, Envelope};
use super::{BridgeSink, BridgeState, BridgeStats, RedisBridge, Remote};
use crate::channel::Channel;
use crate::proto::frame::Opcode;

/// Connecting, including AUTH/SELECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Any one command's answer (PUBLISH, SUBSCRIBE, PING), and writes.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the subscriber blocks in one read: its delay in noticing
/// `stop`.
const SUB_POLL: Duration = Duration::from_millis(100);
/// The most messages in one pipelined round trip.
const PUBLISH_BATCH: usize = 256;
/// A connection idle this long is checked with a PING.
const IDLE_PING: Duration = Duration::from_secs(1);

/// Why a connection ended.
enum End {
    /// `stop` was called (or the link dropped).
    Stop,
    /// Redis failed; reconnect.
    Lost(String),
}

/// The counters behind [`BridgeStats`].
#[derive(Default)]
struct Counters {
    published: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    own_echoes: AtomicU64,
    reconnects: AtomicU64,
    decode_errors: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> BridgeStats {
        BridgeStats {
            published: self.published.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            own_echoes: self.own_echoes.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            decode_errors: self.decode_errors.load(Ordering::Relaxed),
        }
    }
}

/// Which thread reports.
#[derive(Clone, Copy)]
enum Role {
    Publisher,
    Subscriber,
}

/// Each thread's own state, and the bridge's (the worse of the two).
struct States {
    publisher: BridgeState,
    subscriber: BridgeState,
    bridge: BridgeState,
    was_connected: bool,
}

/// What both threads and the link share.
struct Shared {
    sink: Arc<dyn BridgeSink>,
    stats: Counters,
    /// Changed, and the sink told, under this lock, so the sink hears the
    /// changes in the order they happened.
    states: Mutex<States>,
    /// The bridge's state for [`BridgeLink::state`]: a separate lock, so a
    /// sink may call `state()` from `state_changed`.
    current: Mutex<BridgeState>,
    /// The publisher has a connection: `publish` queues only then.
    publisher_up: AtomicBool,
}

impl Shared {
    fn set(&self, role: Role, state: BridgeState) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        match role {
            Role::Publisher => states.publisher = state,
            Role::Subscriber => states.subscriber = state,
        }
        let bridge = worse(&states.publisher, &states.subscriber).clone();
        if bridge == states.bridge {
            return;
        }
        if bridge == BridgeState::Connected {
            if states.was_connected {
                Counters::add(&self.stats.reconnects, 1);
            }
            states.was_connected = true;
        }
        states.bridge = bridge.clone();
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = bridge.clone();
        log::debug!("redis bridge: {bridge:?}");
        self.sink.state_changed(bridge);
    }
}

/// Down over Connecting over Connected; between two Downs, the first.
fn worse<'a>(a: &'a BridgeState, b: &'a BridgeState) -> &'a BridgeState {
    fn rank(s: &BridgeState) -> u8 {
        match s {
            BridgeState::Connected => 0,
            BridgeState::Connecting => 1,
            BridgeState::Down { .. } => 2,
        }
    }
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// The delay before attempt `attempt` (0-based) after a failure: `initial`
/// doubled per attempt up to `max`, less up to half of it at random.
pub(crate) fn backoff(initial: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let full = initial.saturating_mul(1u32 << attempt.min(20)).min(max);
    full.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
}

/// What a thread needs to (re)connect.
#[derive(Clone)]
struct Target {
    client: Client,
    channel: String,
    node_id: u64,
    backoff_initial: Duration,
    backoff_max: Duration,
}

impl Target {
    fn connect(&self) -> Result<Connection, RedisError> {
        let con = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        con.set_read_timeout(Some(IO_TIMEOUT))?;
        con.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(con)
    }

    fn delay(&self, attempt: u32) -> Duration {
        backoff(self.backoff_initial, self.backoff_max, attempt, rand::random())
    }
}

/// The handle the hub keeps: publish, state, stats, stop. `Send + Sync`.
pub(crate) struct BridgeLink {
    queue: Sender<Vec<u8>>,
    shared: Arc<Shared>,
    node_id: u64,
    /// Dropped by `stop`: both threads see their stop receiver disconnect.
    stop: Mutex<Option<Sender<()>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for BridgeLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeLink")
            .field("node_id", &format_args!("{:016x}", self.node_id))
            .field("state", &self.state())
            .field("queued", &self.queue.len())
            .finish()
    }
}

/// Spawns the threads.
pub(super) fn start(bridge: RedisBridge, sink: Arc<dyn BridgeSink>) -> BridgeLink {
    let (queue, rx) = crossbeam_channel::bounded(bridge.queue_capacity);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let shared = Arc::new(Shared {
        sink,
        stats: Counters::default(),
        states: Mutex::new(States {
            publisher: BridgeState::Connecting,
            subscriber: BridgeState::Connecting,
            bridge: BridgeState::Connecting,
            was_connected: false,
        }),
        current: Mutex::new(BridgeState::Connecting),
        publisher_up: AtomicBool::new(false),
    });
    let target = Target {
        client: bridge.client,
        channel: bridge.channel,
        node_id: bridge.node_id,
        backoff_initial: bridge.backoff_initial,
        backoff_max: bridge.backoff_max,
    };
    let mut threads = Vec::new();
    {
        let (target, shared, stop) = (target.clone(), shared.clone(), stop_rx.clone());
        threads.push(
            std::thread::Builder::new()
                .name("hvws-redis-pub".into())
                .spawn(move || run_publisher(&target, &shared, &rx, &stop))
                .expect("spawning the Redis publisher thread"),
        );
    }
    {
        let (shared, stop) = (shared.clone(), stop_rx);
        threads.push(
            std::thread::Builder::new()
                .name("hvws-redis-sub".into())
                .spawn(move || run_subscriber(&target, &shared, &stop))
                .expect("spawning the Redis subscriber thread"),
        );
    }
    BridgeLink {
        queue,
        shared,
        node_id: bridge.node_id,
        stop: Mutex::new(Some(stop_tx)),
        threads: Mutex::new(threads),
    }
}

impl BridgeLink {
    /// Queues `data` for the other processes' subscribers of `topic`.
    /// Never blocks: while the publisher is not connected, or when the
    /// queue is full, the message is dropped and counted in
    /// [`BridgeStats::dropped`]. Only text and binary messages travel.
    pub fn publish(&self, topic: &str, opcode: Opcode, data: &[u8], except: Option<Channel>) {
        if !self.shared.publisher_up.load(Ordering::Relaxed) {
            Counters::add(&self.shared.stats.dropped, 1);
            return;
        }
        let envelope = Envelope {
            origin: self.node_id,
            opcode,
            except,
            topic,
            payload: data,
        };
        let queued = match envelope.encode() {
            Ok(bytes) => match self.queue.try_send(bytes) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            Err(_) => false,
        };
        if !queued {
            Counters::add(&self.shared.stats.dropped, 1);
        }
    }

    /// The bridge's state now.
    pub fn state(&self) -> BridgeState {
        self.shared.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The counters now.
    pub fn stats(&self) -> BridgeStats {
        self.shared.stats.snapshot()
    }

    /// Stops both threads and waits for them: at most about one Redis
    /// timeout (2 s) when a call is under way, 100 ms otherwise. Later
    /// publishes are dropped. Calling it again does nothing.
    pub fn stop(&self) {
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let me = std::thread::current().id();
        for thread in threads {
            // Called from one of the bridge's own threads (the hub's last
            // owner let go inside a sink call): that thread sees `stop` and
            // ends by itself; joining it would wait for itself.
            if thread.thread().id() == me {
                continue;
            }
            // A thread that panicked (in the sink) has stopped too.
            let _ = thread.join();
        }
        self.shared.publisher_up.store(false, Ordering::Relaxed);
    }
}

impl Drop for BridgeLink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `stop` was called (without waiting).
fn stopped(stop: &Receiver<()>) -> bool {
    matches!(stop.try_recv(), Err(crossbeam_channel::TryRecvError::Disconnected))
}

/// Reports the failure and waits out the backoff; `true` if stopped
/// meanwhile. While waiting, the publisher drops what reaches its queue.
fn wait_after_failure(
    target: &Target,
    shared: &Shared,
    role: Role,
    attempt: &mut u32,
    error: String,
    stop: &Receiver<()>,
    queue: Option<&Receiver<Vec<u8>>>,
) -> bool {
    let delay = target.delay(*attempt);
    *attempt = attempt.saturating_add(1);
    log::warn!("redis bridge: {error}; retrying in {delay:?}");
    shared.set(role, BridgeState::Down { error, retry_in: delay });
    let deadline = Instant::now() + delay;
    loop {
        if let Some(queue) = queue {
            drop_queued(shared, queue);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return stopped(stop);
        }
        match stop.recv_timeout(left.min(Duration::from_millis(50))) {
            Err(RecvTimeoutError::Disconnected) => return true,
            _ => continue,
        }
    }
}

/// Drops (and counts) everything in the queue.
fn drop_queued(shared: &Shared, queue: &Receiver<Vec<u8>>) {
    let n = queue.try_iter().count() as u64;
    Counters::add(&shared.stats.dropped, n);
}

fn run_publisher(target: &Target, shared: &Shared, queue: &Receiver<Vec<u8>>, stop: &Receiver<()>) {
    let mut attempt = 0;
    while !stopped(stop) {
        shared.set(Role::Publisher, BridgeState::Connecting);
        let error = match target.connect() {
            Ok(mut con) => {
                attempt = 0;
                shared.publisher_up.store(true, Ordering::Relaxed);
                shared.set(Role::Publisher, BridgeState::Connected);
                let end = publish_until_lost(target, shared, &mut con, queue, stop);
                shared.publisher_up.store(false, Ordering::Relaxed);
                match end {
                    End::Stop => break,
                    End::Lost(error) => error,
                }
            }
            Err(e) => format!("connecting to publish: {e}"),
        };
        if wait_after_failure(target, shared, Role::Publisher, &mut attempt, error, stop, Some(queue)) {
            break;
        }
    }
    drop_queued(shared, queue);
}

/// Publishes what arrives until the connection fails or `stop`.
fn publish_until_lost(
    target: &Target,
    shared: &Shared,
    con: &mut Connection,
    queue: &Receiver<Vec<u8>>,
    stop: &Receiver<()>,
) -> End {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        crossbeam_channel::select! {
            recv(stop) -> _ => return End::Stop,
            recv(queue) -> first => {
                let Ok(first) = first else { return End::Stop };
                batch.push(first);
                batch.extend(queue.try_iter().take(PUBLISH_BATCH - 1));
                let mut pipe = redis::pipe();
                for envelope in &batch {
                    pipe.cmd("PUBLISH").arg(&target.channel).arg(envelope.as_slice()).ignore();
                }
                let n = batch.len() as u64;
                batch.clear();
                match pipe.exec(con) {
                    Ok(()) => Counters::add(&shared.stats.published, n),
                    Err(e) => {
                        // Not retried: some may have reached Redis.
                        Counters::add(&shared.stats.dropped, n);
                        return End::Lost(format!("publishing: {e}"));
                    }
                }
            }
            default(IDLE_PING) => {
                if let Err(e) = redis::cmd("PING").exec(con) {
                    return End::Lost(format!("publisher's ping: {e}"));
                }
            }
        }
    }
}

fn run_subscriber(target: &Target, shared: &Shared, stop: &Receiver<()>) {
    let mut attempt = 0;
    while !stopped(stop) {
        shared.set(Role::Subscriber, BridgeState::Connecting);
        let error = match target.connect() {
            Ok(mut con) => match listen_until_lost(target, shared, &mut con, stop, &mut attempt) {
                End::Stop => break,
                End::Lost(error) => error,
            },
            Err(e) => format!("connecting to subscribe: {e}"),
        };
        if wait_after_failure(target, shared, Role::Subscriber, &mut attempt, error, stop, None) {
            break;
        }
    }
}

/// Subscribes, then hands what arrives to the sink until the connection
/// fails or `stop`.
fn listen_until_lost(
    target: &Target,
    shared: &Shared,
    con: &mut Connection,
    stop: &Receiver<()>,
    attempt: &mut u32,
) -> End {
    let mut pubsub = con.as_pubsub();
    if let Err(e) = pubsub.subscribe(&target.channel) {
        return End::Lost(format!("subscribing to {}: {e}", target.channel));
    }
    if let Err(e) = pubsub.set_read_timeout(Some(SUB_POLL)) {
        return End::Lost(format!("subscriber socket: {e}"));
    }
    *attempt = 0;
    shared.set(Role::Subscriber, BridgeState::Connected);
    let mut last_heard = Instant::now();
    let mut batch = Vec::new();
    loop {
        if stopped(stop) {
            return End::Stop;
        }
        match pubsub.get_message() {
            Ok(msg) => {
                last_heard = Instant::now();
                // Handed on at once: waiting for more to batch costs far more
                // than it saves. A read timeout is rounded up to the kernel's
                // timer tick (a 1 ms wait measured 7.5 ms here, which was the
                // whole latency across processes), and the servers batch
                // anyway: what arrives between two of their ticks goes out
                // in the next one.
                take(target, shared, msg.get_payload_bytes(), &mut batch);
                if !batch.is_empty() {
                    Counters::add(&shared.stats.received, batch.len() as u64);
                    shared.sink.deliver(std::mem::take(&mut batch));
                }
            }
            Err(e) if e.is_timeout() => {
                if last_heard.elapsed() >= IDLE_PING {
                    // Messages that arrive before the answer are kept for
                    // the next reads.
                    let ping = pubsub
                        .set_read_timeout(Some(IO_TIMEOUT))
                        .and_then(|()| pubsub.ping::<redis::Value>())
                        .and_then(|_| pubsub.set_read_timeout(Some(SUB_POLL)));
                    if let Err(e) = ping {
                        return End::Lost(format!("subscriber's ping: {e}"));
                    }
                    last_heard = Instant::now();
                }
            }
            // A signal (a Ctrl-C handler, a profiler) interrupted the
            // wait: a socket read with a timeout is not restarted even
            // under SA_RESTART. The connection is fine; a stream left
            // half-read would show as a parse error, which reconnects.
            Err(e) if e.is_io_error() && matches!(e.retry_method(), redis::RetryMethod::RetryImmediately) => {}
            Err(e) => return End::Lost(format!("reading the subscription: {e}")),
        }
    }
}

/// Decodes one message from the channel into `batch`, or counts why not.
fn take(target: &Target, shared: &Shared, bytes: &[u8], batch: &mut Vec<Remote>) {
    match envelope::decode(bytes) {
        Ok(env) if env.origin == target.node_id => Counters::add(&shared.stats.own_echoes, 1),
        Ok(env) => batch.push(Remote {
            topic: Arc::from(env.topic),
            opcode: env.opcode,
            data: Arc::from(env.payload),
        }),
        Err(e) => {
            log::debug!("redis bridge: skipped a message on {}: {e}", target.channel);
            Counters::add(&shared.stats.decode_errors, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_at_most_half_off() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_secs(5));
        assert_eq!(backoff(initial, max, 0, 0.0), initial);
        assert_eq!(backoff(initial, max, 3, 0.0), Duration::from_millis(800));
        assert_eq!(backoff(initial, max, 6, 0.0), max);
        assert_eq!(backoff(initial, max, u32::MAX, 0.0), max);
        assert_eq!(backoff(initial, max, 0, 1.0), Duration::from_millis(50));
        for attempt in 0..40 {
            for jitter in [0.0, 0.3, 0.999, 2.0, -1.0] {
                let d = backoff(initial, max, attempt, jitter);
                assert!(d >= initial / 2 && d <= max, "{attempt} {jitter}: {d:?}");
            }
        }
    }

    #[test]
    fn the_bridge_state_is_the_worse_of_the_two() {
        let down = BridgeState::Down {
            error: "x".into(),
            retry_in: Duration::ZERO,
        };
        assert_eq!(
            worse(&BridgeState::Connected, &BridgeState::Connected),
            &BridgeState::Connected
        );
        assert_eq!(
            worse(&BridgeState::Connected, &BridgeState::Connecting),
            &BridgeState::Connecting
        );
        assert_eq!(worse(&down, &BridgeState::Connecting), &down);
        assert_eq!(worse(&BridgeState::Connected, &down), &down);
    }
}
