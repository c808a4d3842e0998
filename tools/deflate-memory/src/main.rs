//! Heap bytes per hvws connection with permessage-deflate, counted exactly:
//!
//! ```sh
//! cargo run --release --manifest-path tools/deflate-memory/Cargo.toml
//! ```
//!
//! A counting global allocator tracks live heap bytes. For each setting,
//! 1,000 server connections (hvws's `ServerConn`) are opened by 1,000
//! hvws clients (`ClientConn`) through the in-memory handshake, one 1 KiB
//! JSON message goes each way, and the output is flushed. The heap the
//! servers then hold, divided by 1,000, is the server's cost of an idle
//! connection after one message each way; the same for the clients. Buffers
//! that a driver pools (emptied output buffers, read spares) are dropped,
//! as the driver takes them back. What a thread shares among its
//! connections (the compressor and decompressor of connections that keep no
//! context) is counted once, on its own line. `size_of` of the connection
//! itself (in the driver's slab) is not heap and is shown apart.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::time::Instant;

use hvws::proto::client::Request;
use hvws::proto::{ClientConn, ClientEvent, Limits, ServerConn, ServerEvent};
use hvws::{ChannelInfo, DeflateConfig, Opcode};

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(n: isize) {
    let _ = LIVE.try_with(|live| live.set(live.get() + n));
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CONNECTIONS: usize = 1000;

/// A 1 KiB game-state snapshot.
fn snapshot() -> String {
    let players: Vec<String> = (0..16)
        .map(|id| {
            format!(
                r#"{{"id":{id},"x":{},"y":{},"hp":100,"state":"running"}}"#,
                id * 7,
                id * 3
            )
        })
        .collect();
    format!(r#"{{"type":"snapshot","tick":1,"players":[{}]}}"#, players.join(","))
}

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40_000))
}

/// Moves bytes between the two until neither has anything to say.
fn drive(s: &mut ServerConn, c: &mut ClientConn, sl: &Limits, cl: &Limits, now: Instant) {
    for _ in 0..100 {
        let mut to_client = std::mem::take(s.transmit());
        drop(s.handle_flushed());
        let mut to_server = std::mem::take(c.transmit());
        c.handle_flushed();
        if to_client.is_empty() && to_server.is_empty() {
            return;
        }
        if !to_server.is_empty() {
            let mut input = s.begin_input(&mut to_server, Vec::new());
            while let Some(ev) = s.poll_input(&mut input, now, sl) {
                match ev {
                    ServerEvent::Upgrade(req) => {
                        s.accept_upgrade(ChannelInfo::new(&req, None), now, sl);
                    }
                    ServerEvent::Text(_) => {}
                    other => panic!("server: {other:?}"),
                }
            }
            drop(s.end_input(input));
        }
        if !to_client.is_empty() {
            let mut input = c.begin_input(&mut to_client);
            while let Some(ev) = c.poll_input(&mut input, now, cl) {
                match ev {
                    ClientEvent::Open { .. } | ClientEvent::Text(_) => {}
                    other => panic!("client: {other:?}"),
                }
            }
            c.end_input(input);
        }
    }
    panic!("the pair kept talking");
}

/// One connection, opened, with a message each way (or none).
fn open(sl: &Limits, cl: &Limits, msg: Option<&str>, now: Instant) -> (ServerConn, ClientConn, Option<String>) {
    let request = Request {
        authority: "127.0.0.1:9001".into(),
        resource: "/".into(),
        ..Request::default()
    };
    let mut s = ServerConn::new(peer(), now, sl);
    let mut c = ClientConn::new(&request, now, cl);
    c.handle_connected();
    drive(&mut s, &mut c, sl, cl, now);
    assert!(c.is_open());
    if let Some(msg) = msg {
        assert!(s.send_message(Opcode::Text, msg.as_bytes(), sl).is_queued());
        assert!(c.send_message(Opcode::Text, msg.as_bytes(), cl).is_queued());
        drive(&mut s, &mut c, sl, cl, now);
    }
    let agreed = s.info().and_then(ChannelInfo::extensions).map(str::to_owned);
    (s, c, agreed)
}

fn measure(name: &str, server: Option<DeflateConfig>, client: Option<DeflateConfig>, msg: Option<&str>) {
    let sl = Limits {
        deflate: server,
        ..Limits::default()
    };
    let cl = Limits {
        deflate: client,
        ..Limits::default()
    };
    let now = Instant::now();
    // One connection first: what the thread shares (and keeps) is made.
    let before = live();
    drop(open(&sl, &cl, msg, now));
    let shared = live() - before;

    let mut servers = Vec::with_capacity(CONNECTIONS);
    let mut clients = Vec::with_capacity(CONNECTIONS);
    let mut agreed = None;
    let base = live();
    for _ in 0..CONNECTIONS {
        let (s, c, a) = open(&sl, &cl, msg, now);
        servers.push(s);
        clients.push(c);
        agreed = a;
    }
    let both = live() - base;
    drop(clients);
    let server_heap = live() - base;
    let client_heap = both - server_heap;
    drop(servers);
    println!(
        "{name:<54} server {:>7} B  client {:>7} B  shared by the thread {:>7} B  [{}]",
        server_heap / CONNECTIONS as isize,
        client_heap / CONNECTIONS as isize,
        shared,
        agreed.as_deref().unwrap_or("no extension"),
    );
}

fn main() {
    let msg = snapshot();
    println!(
        "{CONNECTIONS} connections, heap bytes per connection after a {}-byte message each way \
         (size_of ServerConn {} B, ClientConn {} B, not included)\n",
        msg.len(),
        std::mem::size_of::<ServerConn>(),
        std::mem::size_of::<ClientConn>()
    );
    let server = DeflateConfig::server();
    let client = DeflateConfig::client();
    let takeover = |window_bits: u8, mem_level: u8| DeflateConfig {
        no_context_takeover: false,
        peer_no_context_takeover: false,
        window_bits,
        mem_level,
        peer_window_bits: window_bits,
        ..DeflateConfig::server()
    };
    let client_with = |window_bits: u8, mem_level: u8| DeflateConfig {
        window_bits,
        mem_level,
        peer_window_bits: window_bits,
        ..DeflateConfig::client()
    };
    measure("no deflate, idle (never a message)", None, None, None);
    measure(
        "deflate defaults, idle (never a message)",
        Some(server.clone()),
        Some(client.clone()),
        None,
    );
    measure("no deflate", None, None, Some(&msg));
    measure("offered, declined", None, Some(client.clone()), Some(&msg));
    measure(
        "deflate defaults (no context takeover)",
        Some(server.clone()),
        Some(client.clone()),
        Some(&msg),
    );
    // One direction at a time: the server keeps its compressor and the
    // client its decompressor, each row's extra cost being one of the two.
    for (w, m) in [(15, 8), (15, 9), (12, 5), (11, 3), (9, 1)] {
        let server_only = DeflateConfig {
            peer_no_context_takeover: true,
            ..takeover(w, m)
        };
        measure(
            &format!("server compressor kept, window {w}, memLevel {m}"),
            Some(server_only),
            Some(client.clone()),
            Some(&msg),
        );
    }
    for (w, m) in [(15, 8), (15, 9), (12, 5), (11, 3), (9, 1)] {
        measure(
            &format!("context takeover both ways, window {w}, memLevel {m}"),
            Some(takeover(w, m)),
            Some(client_with(w, m)),
            Some(&msg),
        );
    }
}
