//! Two `room_server` processes on one Redis, checked from outside (feature
//! `redis`): a room's messages reach every subscriber on every thread of
//! both processes exactly once; Redis killed in the middle leaves each
//! process's own rooms working, and once it is back the processes find
//! each other again.
//!
//! `bash tests/redis/run.sh` builds the example and runs this with
//! `HVWS_ROOM_SERVER` (the binary) set; the test starts its own
//! redis-server on a free port (so it can kill and restart it) and stops
//! every process it starts by its handle. Every wait has a deadline.

#[path = "util/redis.rs"]
mod redis_util;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_util::{free_port, redis_url, OwnRedis};
use tungstenite::{Message, WebSocket};

const DEADLINE: Duration = Duration::from_secs(15);

/// A `room_server` process, stopped with SIGTERM when dropped.
struct RoomServer {
    child: Child,
    addr: SocketAddr,
}

impl RoomServer {
    fn start(bin: &str, redis: &str) -> RoomServer {
        let mut child = Command::new(bin)
            .args(["--port", "0", "--threads", "2", "--redis", redis])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start room_server");
        // Its first line says where it listens.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("room_server's first line");
        let addr = line
            .split_whitespace()
            .find_map(|w| w.trim_end_matches(',').parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        RoomServer { child, addr }
    }

    /// SIGTERM by PID, and the exit status it ends with.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "room_server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RoomServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client of one room_server.
struct Peer(WebSocket<TcpStream>);

impl Peer {
    fn connect(server: &RoomServer) -> Peer {
        let stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let (ws, _) = tungstenite::client(format!("ws://{}/rooms", server.addr), stream).unwrap();
        Peer(ws)
    }

    fn say(&mut self, text: &str) {
        self.0.send(Message::text(text)).unwrap();
    }

    /// The next text, or `None` after the read timeout.
    fn next(&mut self) -> Option<String> {
        loop {
            match self.0.read() {
                Ok(Message::Text(t)) => return Some(t.to_string()),
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return None
                }
                Err(e) => panic!("client failed: {e}"),
            }
        }
    }

    /// Reads until `want`, returning what came before it.
    fn until(&mut self, want: &str) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        let mut before = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "never got {want:?}; got {before:?}");
            match self.next() {
                Some(t) if t == want => return before,
                Some(t) => before.push(t),
                None => {}
            }
        }
    }

    fn join(&mut self, room: &str) {
        self.say(&format!("join {room}"));
        self.say("rooms");
        let deadline = Instant::now() + DEADLINE;
        loop {
            assert!(Instant::now() < deadline, "join {room} not confirmed");
            if let Some(t) = self.next() {
                if t.starts_with("rooms") && t.split([' ', ',']).any(|r| r == room) {
                    return;
                }
            }
        }
    }
}

/// Says `probe N` from `from` until `to` hears one: `from`'s process
/// publishes to Redis and `to`'s is subscribed.
fn linked(from: &mut Peer, to: &mut Peer) {
    let deadline = Instant::now() + DEADLINE;
    for n in 0.. {
        assert!(Instant::now() < deadline, "the processes never linked through Redis");
        from.say(&format!("say probe {n}"));
        if let Some(t) = to.next() {
            if t.starts_with("probe: ") {
                break;
            }
        }
    }
    // Drain the probes still on their way to both.
    from.say("say probe end");
    from.until("probe: end");
    to.until("probe: end");
}

/// Every peer hears `count` messages from each sender exactly once, in each
/// sender's order. Each sender ends with a marker of its own: messages of
/// different senders (different connections, maybe different threads and
/// processes) have no order between them, one sender's do.
fn exactly_once(peers: &mut [Peer], senders: &[usize], round: &str, count: usize) {
    for i in 0..count {
        for &s in senders {
            peers[s].say(&format!("say r {round}-{s}-{i}"));
        }
    }
    for &s in senders {
        peers[s].say(&format!("say r {round}-{s}-end"));
    }
    for (p, peer) in peers.iter_mut().enumerate() {
        let deadline = Instant::now() + DEADLINE;
        let mut got = Vec::new();
        let mut ends = 0;
        while ends < senders.len() {
            assert!(
                Instant::now() < deadline,
                "peer {p}: {ends} of the end markers; got {got:?}"
            );
            match peer.next() {
                Some(t) if t.starts_with(&format!("r: {round}-")) && t.ends_with("-end") => ends += 1,
                Some(t) => got.push(t),
                None => {}
            }
        }
        for &s in senders {
            let from_s: Vec<&String> = got
                .iter()
                .filter(|t| t.starts_with(&format!("r: {round}-{s}-")))
                .collect();
            let want: Vec<String> = (0..count).map(|i| format!("r: {round}-{s}-{i}")).collect();
            assert_eq!(from_s, want.iter().collect::<Vec<_>>(), "peer {p}, sender {s}");
        }
    }
}

#[test]
fn two_room_servers_on_one_redis_with_a_restart() {
    let (Some(_), Ok(bin)) = (redis_url("redis_rooms"), std::env::var("HVWS_ROOM_SERVER")) else {
        eprintln!(
            "redis_rooms: skipped, HVWS_REDIS_URL or HVWS_ROOM_SERVER is not set (bash tests/redis/run.sh sets them)"
        );
        return;
    };
    let mut redis = OwnRedis::start(free_port());
    let url = redis.url();
    let a = RoomServer::start(&bin, &url);
    let b = RoomServer::start(&bin, &url);

    // Three clients on each process, so each thread of each has some
    // (likely; nothing below depends on where they land).
    let mut peers: Vec<Peer> = (0..6)
        .map(|i| Peer::connect(if i % 2 == 0 { &a } else { &b }))
        .collect();
    for p in peers.iter_mut() {
        p.join("r");
        p.join("probe");
    }
    let (left, right) = peers.split_at_mut(1);
    linked(&mut left[0], &mut right[0]);
    linked(&mut right[0], &mut left[0]);
    exactly_once(&mut peers, &[0, 1, 4], "before", 20);

    // Redis goes away: each process's own room still works.
    redis.kill();
    let on_a = [0, 2, 4];
    peers[0].say("say r local");
    for &p in &on_a {
        peers[p].until("r: local");
    }

    // Back on the same port: the bridges reconnect and resubscribe, each
    // process's publisher and subscriber on its own (what either published
    // before it noticed was dropped: at most once), so both directions.
    let redis = OwnRedis::start(redis.port);
    let (left, right) = peers.split_at_mut(1);
    linked(&mut left[0], &mut right[0]);
    linked(&mut right[0], &mut left[0]);
    exactly_once(&mut peers, &[1, 2, 5], "after", 20);

    drop(peers);
    assert!(a.stop().success(), "room_server a did not exit cleanly");
    assert!(b.stop().success(), "room_server b did not exit cleanly");
    drop(redis);
}
