//! Topics across two "processes" through Redis (feature `redis`): two hubs,
//! each with its own bridge on the same Redis and namespace, and a server
//! each, ticked on this thread. `bash tests/redis/run.sh` runs these
//! against a real redis-server (`HVWS_REDIS_URL`); without it they say
//! they are skipped. Killing and restarting Redis under two real
//! `room_server` processes is `tests/redis/rooms.sh`'s part.

#[path = "util/mod.rs"]
mod util;

use std::time::Duration;

use hvws::{BridgeState, Channel, Context, Hub, HvWebServer, RedisBridge, Server};
use util::*;

#[path = "util/redis.rs"]
mod redis_util;
use redis_util::redis_url;

#[derive(Default)]
struct Node {
    states: Vec<BridgeState>,
    opened: Vec<Channel>,
}

impl HvWebServer for Node {
    fn on_ws_open(&mut self, ctx: &mut Context<'_>, ch: Channel, _: &str) {
        self.opened.push(ch);
        ctx.subscribe(ch, "lobby");
    }
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, _: Channel, msg: &str) {
        ctx.publish_text("lobby", msg, None);
    }
    fn on_bridge_state(&mut self, _: &mut Context<'_>, state: &BridgeState) {
        self.states.push(state.clone());
    }
}

fn node(url: &str, ns: &str) -> (Hub, Server<Node>) {
    let bridge = RedisBridge::new(url, ns)
        .unwrap()
        .with_backoff(Duration::from_millis(20), Duration::from_millis(300));
    let hub = Hub::with_redis(bridge);
    let mut server = Server::new(Node::default());
    server.join_hub(&hub);
    server.init_addr("127.0.0.1:0".parse().unwrap()).unwrap();
    server.start().unwrap();
    (hub, server)
}

fn connected(server: &mut Server<Node>) {
    pump_until(server, "the bridge to connect", |s| {
        s.handler().states.last() == Some(&BridgeState::Connected)
    });
}

#[test]
fn a_publish_reaches_the_other_process_once_and_its_own_subscribers_once() {
    let Some(url) = redis_url("redis_hub") else { return };
    let ns = format!("hub-{:08x}", rand::random::<u32>());
    let (hub_a, mut one) = node(&url, &ns);
    let (_hub_b, mut two) = node(&url, &ns);
    connected(&mut one);
    connected(&mut two);
    let mut a = connect(&mut one, "/rooms");
    let mut b = connect(&mut two, "/rooms");

    for i in 0..20 {
        send_text(&mut one, &mut a, &format!("m{i}"));
    }
    for i in 0..20 {
        assert_eq!(recv_text(&mut one, &mut a), format!("m{i}"));
        assert_eq!(recv_text(&mut two, &mut b), format!("m{i}"));
    }
    // Nothing comes twice: not the origin's own echo, not a duplicate.
    for _ in 0..50 {
        tick(&mut one);
        tick(&mut two);
    }
    assert!(a.try_recv().is_none(), "the origin got its own message back");
    assert!(b.try_recv().is_none(), "a message came twice");

    let bridge = hub_a.bridge_stats().unwrap();
    assert_eq!(bridge.published, 20);
    assert_eq!(bridge.own_echoes, 20);
    assert_eq!(hub_a.bridge_state(), Some(BridgeState::Connected));
    let stats = one.stats();
    assert_eq!(stats.bridge.map(|(up, b)| (up, b.published)), Some((true, 20)));
    assert!(stats.to_prometheus().contains("\nhvws_bridge_up 1\n"));
}

#[test]
fn a_server_that_joins_after_the_bridge_connected_hears_its_state() {
    let Some(url) = redis_url("redis_hub") else { return };
    let ns = format!("hub-late-{:08x}", rand::random::<u32>());
    let hub = Hub::with_redis(RedisBridge::new(&url, &ns).unwrap());
    let deadline = std::time::Instant::now() + TIMEOUT;
    while hub.bridge_state() != Some(BridgeState::Connected) {
        assert!(std::time::Instant::now() < deadline, "the bridge never connected");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut server = Server::new(Node::default());
    server.join_hub(&hub);
    server.init_addr("127.0.0.1:0".parse().unwrap()).unwrap();
    server.start().unwrap();
    connected(&mut server);
}
