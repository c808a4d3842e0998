//! The Redis bridge against a real redis-server (feature `redis`).
//!
//! `bash tests/redis/run.sh` starts one and runs these with
//! `HVWS_REDIS_URL` set (and `HVWS_REDIS_REQUIRED=1`, so that a missing URL
//! fails instead of skipping). Without `HVWS_REDIS_URL` each test says it
//! is skipped and passes, so `cargo test --all-features` needs no Redis.
//! The restart test starts (and kills, by its handle) a redis-server of
//! its own on a free port.
//!
//! Each test uses a namespace of its own, so they cannot hear each other.
//! Every wait has a deadline; no test asserts a timing.

use std::time::{Duration, Instant};

#[path = "util/redis.rs"]
mod redis_util;

use redis_util::{free_port, redis_url, OwnRedis};

use hvws::{BridgeProbe, BridgeState, Channel, Opcode, ProbeEvent, RedisBridge};

const DEADLINE: Duration = Duration::from_secs(10);

/// A namespace no other test (or earlier run) uses.
fn namespace(test: &str) -> String {
    format!("test-{test}-{:08x}", rand::random::<u32>())
}

fn bridge(url: &str, ns: &str) -> RedisBridge {
    RedisBridge::new(url, ns)
        .expect("bridge")
        .with_backoff(Duration::from_millis(20), Duration::from_millis(300))
}

/// A started bridge and what its sink was told so far.
struct Node {
    probe: BridgeProbe,
    messages: Vec<(String, Opcode, Vec<u8>)>,
    states: Vec<BridgeState>,
    batches: usize,
}

impl Node {
    fn start(bridge: RedisBridge) -> Node {
        Node {
            probe: bridge.start_probe(),
            messages: Vec::new(),
            states: Vec::new(),
            batches: 0,
        }
    }

    /// Takes in what the sink recorded, waiting at most `wait` for the
    /// first event.
    fn pump(&mut self, wait: Duration) {
        let mut first = self.probe.events().recv_timeout(wait).ok();
        while let Some(event) = first.take().or_else(|| self.probe.events().try_recv().ok()) {
            match event {
                ProbeEvent::Delivered(batch) => {
                    assert!(!batch.is_empty(), "an empty batch was delivered");
                    self.batches += 1;
                    self.messages.extend(batch);
                }
                ProbeEvent::State(state) => self.states.push(state),
            }
        }
    }

    /// Pumps until `done` holds; panics after the deadline.
    #[track_caller]
    fn wait_until(&mut self, what: &str, done: impl Fn(&Node) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}; states {:?}, {} messages, stats {:?}",
                self.states,
                self.messages.len(),
                self.probe.stats()
            );
            self.pump(Duration::from_millis(50));
        }
    }

    #[track_caller]
    fn wait_connected(&mut self) {
        self.wait_until("connected", |n| n.probe.state() == BridgeState::Connected);
    }

    fn texts(&self) -> Vec<String> {
        self.messages
            .iter()
            .map(|(_, _, data)| String::from_utf8_lossy(data).into_owned())
            .collect()
    }
}

fn text(node: &Node, topic: &str, s: &str) {
    node.probe.publish(topic, Opcode::Text, s.as_bytes(), None);
}

#[test]
fn a_publish_reaches_the_other_node_once_and_not_its_own() {
    let Some(url) = redis_url("a_publish_reaches_the_other_node_once_and_not_its_own") else {
        return;
    };
    let ns = namespace("once");
    let (ba, bb) = (bridge(&url, &ns), bridge(&url, &ns));
    assert_ne!(ba.node_id(), bb.node_id());
    let (mut a, mut b) = (Node::start(ba), Node::start(bb));
    a.wait_connected();
    b.wait_connected();

    // `except` travels but means nothing here.
    a.probe
        .publish("room/1", Opcode::Text, b"hello", Some(Channel::from_id(5).unwrap()));
    text(&a, "room/2", "sentinel");
    b.wait_until("both arrived", |n| n.messages.len() >= 2);
    a.wait_until("both echoes came back", |n| n.probe.stats().own_echoes >= 2);
    // Anything more would have arrived before the echo of the sentinel
    // (one channel, one order); pump once more to be sure.
    b.pump(Duration::from_millis(200));
    a.pump(Duration::from_millis(10));

    assert_eq!(
        b.messages,
        vec![
            ("room/1".to_string(), Opcode::Text, b"hello".to_vec()),
            ("room/2".to_string(), Opcode::Text, b"sentinel".to_vec()),
        ]
    );
    assert!(a.messages.is_empty(), "A heard its own messages: {:?}", a.messages);
    let (sa, sb) = (a.probe.stats(), b.probe.stats());
    assert_eq!((sa.published, sa.own_echoes, sa.received, sa.dropped), (2, 2, 0, 0));
    assert_eq!(
        (sb.published, sb.received, sb.own_echoes, sb.decode_errors),
        (0, 2, 0, 0)
    );
    assert_eq!(a.states.first(), Some(&BridgeState::Connected), "{:?}", a.states);
    a.probe.stop();
    b.probe.stop();
    assert_eq!(a.probe.state(), BridgeState::Connected, "stop reports nothing more");
}

#[test]
fn binary_payloads_with_every_byte_value() {
    let Some(url) = redis_url("binary_payloads_with_every_byte_value") else {
        return;
    };
    let ns = namespace("binary");
    let (mut a, mut b) = (Node::start(bridge(&url, &ns)), Node::start(bridge(&url, &ns)));
    a.wait_connected();
    b.wait_connected();

    let every: Vec<u8> = (0..=255u8).collect();
    let mut big = Vec::with_capacity(1 << 20);
    while big.len() < 1 << 20 {
        big.extend(every.iter().rev());
    }
    let payloads = vec![
        Vec::new(),
        every.clone(),
        vec![0; 3],
        vec![b'\r', b'\n', b'$', b'*'],
        big,
    ];
    for p in &payloads {
        a.probe.publish("bytes", Opcode::Binary, p, None);
    }
    // A topic with bytes that mean something to Redis's protocol.
    a.probe.publish("t\r\n$-1\r\n é", Opcode::Text, "ok".as_bytes(), None);
    b.wait_until("all arrived", |n| n.messages.len() > payloads.len());
    for (i, p) in payloads.iter().enumerate() {
        assert_eq!(b.messages[i].1, Opcode::Binary);
        assert_eq!(&b.messages[i].2, p, "payload {i}");
    }
    assert_eq!(b.messages[payloads.len()].0, "t\r\n$-1\r\n é");
    assert_eq!(b.messages.len(), payloads.len() + 1);
}

#[test]
fn many_messages_arrive_in_order() {
    let Some(url) = redis_url("many_messages_arrive_in_order") else {
        return;
    };
    let ns = namespace("order");
    let (mut a, mut b) = (Node::start(bridge(&url, &ns)), Node::start(bridge(&url, &ns)));
    a.wait_connected();
    b.wait_connected();
    const N: usize = 5_000; // under the default queue capacity
    for i in 0..N {
        text(&a, "seq", &i.to_string());
    }
    b.wait_until("all arrived", |n| n.messages.len() >= N);
    b.pump(Duration::from_millis(200));
    let expected: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    assert_eq!(b.texts(), expected);
    assert_eq!(a.probe.stats().dropped, 0);
    assert_eq!(a.probe.stats().published, N as u64);
    assert!(b.batches <= N, "{} batches", b.batches);
    eprintln!("{N} messages in {} batches", b.batches);
}

#[test]
fn another_namespace_does_not_receive() {
    let Some(url) = redis_url("another_namespace_does_not_receive") else {
        return;
    };
    let (ns1, ns2) = (namespace("ns1"), namespace("ns2"));
    let mut a = Node::start(bridge(&url, &ns1));
    let mut b = Node::start(bridge(&url, &ns1));
    let mut c = Node::start(bridge(&url, &ns2));
    let mut d = Node::start(bridge(&url, &ns2));
    for n in [&mut a, &mut b, &mut c, &mut d] {
        n.wait_connected();
    }
    text(&a, "news", "for ns1");
    b.wait_until("B got it", |n| !n.messages.is_empty());
    // Published after A's message reached Redis: had C heard ns1, A's
    // message would come first.
    text(&d, "news", "for ns2");
    c.wait_until("C got D's", |n| !n.messages.is_empty());
    c.pump(Duration::from_millis(200));
    assert_eq!(c.texts(), vec!["for ns2"]);
    assert_eq!(b.texts(), vec!["for ns1"]);
}

#[test]
fn garbage_on_the_channel_is_counted_and_skipped() {
    let Some(url) = redis_url("garbage_on_the_channel_is_counted_and_skipped") else {
        return;
    };
    let ns = namespace("garbage");
    let (mut a, mut b) = (Node::start(bridge(&url, &ns)), Node::start(bridge(&url, &ns)));
    a.wait_connected();
    b.wait_connected();
    let mut con = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
    for junk in [&b"{\"json\":1}"[..], b"", &[1, 1, 0], &[9; 40]] {
        redis::cmd("PUBLISH")
            .arg(format!("hvws:{ns}"))
            .arg(junk)
            .exec(&mut con)
            .unwrap();
    }
    text(&a, "t", "after the junk");
    b.wait_until("the good one arrived", |n| !n.messages.is_empty());
    assert_eq!(b.texts(), vec!["after the junk"]);
    assert_eq!(b.probe.stats().decode_errors, 4);
}

fn is_down(s: &BridgeState) -> bool {
    matches!(s, BridgeState::Down { .. })
}

/// Index of the first state after `from` that matches.
fn position_after(states: &[BridgeState], from: usize, f: impl Fn(&BridgeState) -> bool) -> Option<usize> {
    states.iter().skip(from).position(f).map(|i| i + from)
}

#[test]
fn redis_killed_and_restarted_in_the_middle() {
    if redis_url("redis_killed_and_restarted_in_the_middle").is_none() {
        return;
    }
    let mut redis = OwnRedis::start(free_port());
    let ns = namespace("restart");
    let (mut a, mut b) = (
        Node::start(bridge(&redis.url(), &ns)),
        Node::start(bridge(&redis.url(), &ns)),
    );
    a.wait_connected();
    b.wait_connected();
    text(&a, "t", "before");
    b.wait_until("before arrived", |n| n.messages.len() == 1);

    redis.kill();
    for n in [&mut a, &mut b] {
        n.wait_until("down", |n| n.states.iter().any(is_down));
    }
    // Local delivery is the hub's; here, publishes go nowhere and are
    // counted, whether the publisher noticed yet or not.
    let dropped_before = a.probe.stats().dropped;
    for i in 0..10 {
        text(&a, "t", &format!("while down {i}"));
    }
    a.wait_until("the ten counted dropped", |n| {
        n.probe.stats().dropped >= dropped_before + 10
    });
    assert_eq!(a.probe.stats().dropped, dropped_before + 10);

    let port = redis.port;
    let _redis = OwnRedis::start(port);
    for n in [&mut a, &mut b] {
        n.wait_until("connected again after down", |n| {
            let down = position_after(&n.states, 0, is_down);
            down.is_some_and(|d| position_after(&n.states, d, |s| *s == BridgeState::Connected).is_some())
                && n.probe.state() == BridgeState::Connected
        });
    }
    // B subscribed again: what A publishes now reaches it. A's publisher
    // may learn of the restart only from its first PUBLISH (dropped), so
    // publish until one arrives.
    let deadline = Instant::now() + DEADLINE;
    let mut i = 0;
    while !b.texts().iter().any(|t| t.starts_with("after")) {
        assert!(
            Instant::now() < deadline,
            "nothing arrived after the restart: {:?}",
            b.probe.stats()
        );
        text(&a, "t", &format!("after {i}"));
        i += 1;
        b.pump(Duration::from_millis(100));
    }
    text(&a, "t", "last");
    b.wait_until("last arrived", |n| n.texts().last().map(String::as_str) == Some("last"));

    let texts = b.texts();
    assert_eq!(texts[0], "before");
    assert_eq!(texts.iter().filter(|t| *t == "before").count(), 1, "{texts:?}");
    assert!(!texts.iter().any(|t| t.starts_with("while down")), "{texts:?}");
    // The "after" messages that arrived came in order, each once.
    let afters: Vec<u32> = texts
        .iter()
        .filter_map(|t| t.strip_prefix("after ").map(|n| n.parse().unwrap()))
        .collect();
    assert!(!afters.is_empty());
    assert!(afters.windows(2).all(|w| w[0] < w[1]), "{afters:?}");
    for n in [&a, &b] {
        let first = position_after(&n.states, 0, |s| *s == BridgeState::Connected).unwrap();
        let down = position_after(&n.states, first, is_down).expect("down after connected");
        position_after(&n.states, down, |s| *s == BridgeState::Connected).expect("connected after down");
        assert!(n.probe.stats().reconnects >= 1, "{:?}", n.probe.stats());
    }
    a.probe.stop();
    b.probe.stop();
}

#[test]
fn stop_is_prompt_while_redis_is_unreachable() {
    if redis_url("stop_is_prompt_while_redis_is_unreachable").is_none() {
        return;
    }
    // Nothing listens there: the bridge keeps retrying until stopped.
    let url = format!("redis://127.0.0.1:{}", free_port());
    let mut a = Node::start(bridge(&url, "nobody"));
    a.wait_until("down", |n| n.states.iter().any(is_down));
    text(&a, "t", "lost");
    assert_eq!(a.probe.stats().dropped, 1);
    a.probe.stop(); // joins both threads; a hang here fails the run
    assert_eq!(a.probe.stats().published, 0);
}
