//! Large payloads queued by reference, over real sockets: `send_shared`,
//! `broadcast_shared` and `publish_shared` arrive whole and in order with
//! the sends around them (the flush's `writev` of headers and shared
//! payloads), a shared payload queued behind an open fragmented send
//! follows its last fragment, and a `ServerHandle` broadcast of a large
//! message arrives too.

use hvws::{Bytes, Channel, Context, HvWebServer, Opcode};
use tungstenite::Message;

use crate::util::{self, connect, recv, send_text};

fn payload(len: usize, seed: u8) -> Bytes {
    Bytes::from((0..len).map(|i| (i % 251) as u8 ^ seed).collect::<Vec<u8>>())
}

struct Shares {
    big: Bytes,
    huge: Bytes,
}

impl HvWebServer for Shares {
    fn on_ws_open(&mut self, ctx: &mut Context<'_>, ch: Channel, _url: &str) {
        ctx.subscribe(ch, "room");
    }
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        assert_eq!(msg, "go");
        ctx.send_text(ch, "a");
        assert!(ctx
            .send_shared(ch, self.big.clone(), Opcode::Binary)
            .unwrap()
            .is_queued());
        assert_eq!(
            ctx.broadcast_shared(self.huge.clone(), Opcode::Binary, None).unwrap(),
            2
        );
        ctx.send(ch, b"hel", Opcode::Text, false).unwrap();
        // Behind the open fragmented message: follows its last fragment.
        assert!(ctx
            .send_shared(ch, self.big.clone(), Opcode::Binary)
            .unwrap()
            .is_queued());
        ctx.send(ch, b"lo", Opcode::Continuation, true).unwrap();
        assert_eq!(
            ctx.publish_shared("room", self.big.clone(), Opcode::Binary, Some(ch))
                .unwrap(),
            1
        );
        ctx.send_text(ch, "z");
        assert!(ctx.send_shared(ch, self.big.clone(), Opcode::Ping).is_err());
    }
}

#[test]
fn shared_sends_arrive_whole_and_in_order_over_sockets() {
    let big = payload(20_000, 1);
    let huge = payload(600_000, 2);
    let mut server = util::server(Shares {
        big: big.clone(),
        huge: huge.clone(),
    });
    let mut a = connect(&mut server, "/");
    let mut b = connect(&mut server, "/");
    send_text(&mut server, &mut a, "go");
    let want_a = [
        Message::Text("a".into()),
        Message::Binary(big.clone()),
        Message::Binary(huge.clone()),
        Message::Text("hello".into()),
        Message::Binary(big.clone()),
        Message::Text("z".into()),
    ];
    for (i, want) in want_a.iter().enumerate() {
        assert!(recv(&mut server, &mut a) == *want, "message {i} to the sender differs");
    }
    assert!(
        recv(&mut server, &mut b) == Message::Binary(huge.clone()),
        "the broadcast"
    );
    assert!(recv(&mut server, &mut b) == Message::Binary(big.clone()), "the publish");

    // A handle's broadcast owns its payload: shared as it is.
    let handle = server.handle();
    handle.broadcast_binary(huge.to_vec(), None).unwrap();
    assert!(recv(&mut server, &mut a) == Message::Binary(huge.clone()));
    assert!(recv(&mut server, &mut b) == Message::Binary(huge));
}

/// Echoes each binary message, then its tail from byte 1,000, and relays it
/// to the other channel: sends of slices of the read buffer, queued by
/// reference.
#[derive(Default)]
struct Relay {
    channels: Vec<Channel>,
}

impl HvWebServer for Relay {
    fn on_ws_open(&mut self, _ctx: &mut Context<'_>, ch: Channel, _url: &str) {
        self.channels.push(ch);
    }
    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, ch: Channel, data: &[u8]) {
        assert!(ctx.send_binary(ch, data).is_queued());
        assert!(ctx.send_binary(ch, &data[1_000..]).is_queued());
        for &other in self.channels.iter().filter(|&&c| c != ch) {
            assert!(ctx.send_binary(other, data).is_queued());
        }
    }
}

#[test]
fn received_messages_echoed_and_relayed_by_reference_arrive_intact() {
    let mut server = util::server(Relay::default());
    let mut a = connect(&mut server, "/");
    let mut b = connect(&mut server, "/");
    // Several in flight, so one read holds more than one frame, and sizes
    // around the threshold and the read buffer's room.
    let sizes = [70_000, 8_192, 8_191, 16_384, 200_000, 65_536, 1_500];
    let sent: Vec<Bytes> = sizes.iter().enumerate().map(|(i, &n)| payload(n, i as u8)).collect();
    for m in &sent {
        a.ws.write(Message::Binary(m.clone())).unwrap();
    }
    a.ws.flush().ok();
    for (i, m) in sent.iter().enumerate() {
        assert!(recv(&mut server, &mut a) == Message::Binary(m.clone()), "echo {i}");
        assert!(
            recv(&mut server, &mut a) == Message::Binary(m.slice(1_000..)),
            "tail {i}"
        );
        assert!(recv(&mut server, &mut b) == Message::Binary(m.clone()), "relay {i}");
    }
}
