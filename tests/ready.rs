//! One tick reads every connection that has input, however many: the
//! poller hands out 1,024 events per `epoll_wait`, and a tick that gets
//! that many asks again. (A game frame's single `tick()` used to leave the
//! rest for later frames: at 5,000 clients, 154 ms p99 input latency.)

mod util;

use std::time::Duration;

use hvws::{Channel, Context, HvWebServer};
use util::{masked_frame, pump_n, server, Raw};

#[derive(Default)]
struct Count {
    messages: usize,
}

impl HvWebServer for Count {
    fn on_ws_message(&mut self, _: &mut Context<'_>, _: Channel, _: &str) {
        self.messages += 1;
    }
}

#[test]
fn a_tick_reads_every_ready_connection_past_the_pollers_1024_events() {
    const CLIENTS: usize = 1_100;
    let mut s = server(Count::default());
    let mut raws: Vec<Raw> = (0..CLIENTS).map(|_| Raw::ws(&mut s, "/")).collect();
    pump_n(&mut s, 3);
    assert_eq!(s.handler().messages, 0);
    let frame = masked_frame(true, 1, b"input");
    for raw in &mut raws {
        raw.write(&mut s, &frame);
    }
    // Only lets loopback deliver what was written (each write returned at
    // once, without a tick); nothing is asserted about time.
    std::thread::sleep(Duration::from_millis(100));
    s.tick().unwrap();
    assert_eq!(s.handler().messages, CLIENTS, "one tick, every ready connection");
}
