//! Handshakes answer in the pool's buffers, so the pool does not keep one
//! per connection (it kept each fresh 101 buffer after its flush).

use super::Core;
use crate::config::ServerConfig;
use crate::events::Dispatch;
use crate::handle::ServerHandle;
use crate::http::Routes;
use crate::HvWebServer;

struct AcceptAll;

impl HvWebServer for AcceptAll {}

const UPGRADE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

#[test]
fn handshakes_answer_in_pooled_buffers_and_the_pool_stays_small() {
    let mut core = Core::new(ServerConfig::default(), ServerHandle::new().0);
    let mut routes = Routes::default();
    routes.websocket("/echo");
    let mut handler = AcceptAll;
    for _ in 0..50 {
        let key = core.insert("127.0.0.1:40000".parse().unwrap());
        let mut d = Dispatch {
            handler: &mut handler,
            routes: &mut routes,
            core: &mut core,
        };
        d.input(key, &mut UPGRADE.to_vec());
        // The flush: the 101 is written, its emptied buffer goes back.
        let conn = &mut core.conns[key].conn;
        assert!(conn.is_open(), "upgraded");
        assert!(conn.transmit().to_vec().starts_with(b"HTTP/1.1 101"));
        conn.transmit().clear();
        if let (_, Some(spare)) = conn.handle_flushed() {
            core.pool.put(spare);
        }
    }
    // One buffer per tick's handshake at most, not one per connection.
    assert!(core.pool.len() <= 2, "the pool holds {} buffers", core.pool.len());
}

#[test]
fn a_connection_still_sending_its_request_keeps_no_buffer() {
    // A slow (or slowloris) client: half a request head, then nothing. The
    // buffer lent for an answer goes back to the pool with the input.
    let mut core = Core::new(ServerConfig::default(), ServerHandle::new().0);
    let mut routes = Routes::default();
    routes.websocket("/echo");
    let mut handler = AcceptAll;
    // Buffers with room, as a busy server's pool has.
    for _ in 0..40 {
        core.pool.put(Vec::with_capacity(4096));
    }
    let keys: Vec<usize> = (0..20)
        .map(|_| core.insert("127.0.0.1:40000".parse().unwrap()))
        .collect();
    for &key in &keys {
        let mut d = Dispatch {
            handler: &mut handler,
            routes: &mut routes,
            core: &mut core,
        };
        d.input(key, &mut UPGRADE[..30].to_vec());
    }
    for &key in &keys {
        let conn = &core.conns[key].conn;
        assert!(!conn.has_output());
        assert!(
            conn.needs_buffer(),
            "connection {key} kept an output buffer while waiting"
        );
    }
}
