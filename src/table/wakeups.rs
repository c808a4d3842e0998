//! One wakeup per connection on the schedule, and each timer still firing
//! on time (fake clock: `Core::now` set by hand, no sleeping).

use std::time::{Duration, Instant};

use super::Core;
use crate::config::ServerConfig;
use crate::handle::ServerHandle;
use crate::proto::info::ChannelInfo;
use crate::proto::ServerEvent;

/// Runs the schedule at `at` as the tick does: each due wakeup's
/// connection handles its timeout and puts its next deadline back. Returns
/// the keys whose timers queued something (a 408, a ping).
fn tick_at(core: &mut Core, at: Instant) -> Vec<usize> {
    core.now = at;
    let limits = core.limits.clone();
    let mut acted = Vec::new();
    while let Some(w) = core.schedule.pop_due(at) {
        if !core.wake(w) {
            continue;
        }
        let conn = &mut core.conns[w.key].conn;
        let before = conn.buffered();
        conn.handle_timeout(at, &limits);
        if conn.buffered() > before {
            acted.push(w.key);
        }
        core.reschedule(w.key);
    }
    acted
}

fn upgrade(core: &mut Core, key: usize) {
    let (now, limits) = (core.now, core.limits.clone());
    let conn = &mut core.conns[key].conn;
    let mut req = b"GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    let mut input = conn.begin_input(&mut req, Vec::new());
    let info = match conn.poll_input(&mut input, now, &limits) {
        Some(ServerEvent::Upgrade(request)) => ChannelInfo::new(&request, None),
        other => panic!("expected the upgrade, got {other:?}"),
    };
    conn.end_input(input);
    assert!(conn.accept_upgrade(info, now, &limits));
    conn.transmit().clear();
    core.reschedule(key);
}

#[test]
fn a_later_deadline_waits_for_the_wakeup_before_it_and_still_fires_on_time() {
    let mut core = Core::new(ServerConfig::default(), ServerHandle::new().0);
    let t0 = core.now;
    let (request, ping) = (core.limits.request_timeout, core.limits.ping_interval.expect("default"));
    assert!(ping > request, "the keepalive comes after the request timer");
    let peer = "127.0.0.1:40000".parse().unwrap();
    let (silent, ws) = (core.insert(peer), core.insert(peer));
    assert_eq!(core.schedule.len(), 2, "each its request timer");
    upgrade(&mut core, ws);
    assert_eq!(
        core.schedule.len(),
        2,
        "the keepalive waits behind the request timer's wakeup"
    );

    let ms = Duration::from_millis(1);
    assert_eq!(tick_at(&mut core, t0 + request - ms), Vec::<usize>::new());
    assert_eq!(tick_at(&mut core, t0 + request), [silent], "its 408, on time");
    // The WebSocket's request wakeup came due and found its keepalive not
    // due: that one is on the schedule now (with the 408's linger).
    assert_eq!(core.schedule.len(), 2);
    assert_eq!(tick_at(&mut core, t0 + ping - ms), Vec::<usize>::new());
    assert_eq!(tick_at(&mut core, t0 + ping), [ws], "its ping, on time");
    assert_eq!(tick_at(&mut core, t0 + ping + ping - ms), Vec::<usize>::new());
    assert_eq!(
        tick_at(&mut core, t0 + ping + ping),
        [ws],
        "the next ping, an interval later"
    );
}

#[test]
fn an_earlier_deadline_is_pushed_at_once() {
    let mut core = Core::new(ServerConfig::default(), ServerHandle::new().0);
    let t0 = core.now;
    let key = core.insert("127.0.0.1:40000".parse().unwrap());
    upgrade(&mut core, key);
    let limits = core.limits.clone();
    // A close started now waits close_timeout (5 s) for the answer: before
    // the request timer's wakeup (10 s), so it gets its own.
    core.conns[key].conn.close(1000, "bye", t0, &limits).unwrap();
    core.reschedule(key);
    assert_eq!(core.schedule.len(), 2);
    let due = |core: &mut Core, at| {
        core.now = at;
        let mut fired = 0;
        while let Some(w) = core.schedule.pop_due(at) {
            if core.wake(w) {
                if let Some(ServerEvent::Closed(_)) = core.conns[w.key].conn.handle_timeout(at, &limits) {
                    fired += 1;
                }
                core.reschedule(w.key);
            }
        }
        fired
    };
    assert_eq!(due(&mut core, t0 + limits.close_timeout - Duration::from_millis(1)), 0);
    assert_eq!(
        due(&mut core, t0 + limits.close_timeout),
        1,
        "the close timed out, on time"
    );
}

#[test]
fn past_49_days_a_stale_wakeup_is_not_kept_by_compaction() {
    // `Schedule::coarse` saturates at `u32::MAX` after 49.7 days, where
    // `armed` stops naming one wakeup: compaction must then go by the
    // deadline alone, or a keep-alive connection's moved request timers
    // would pile up in the heap.
    let mut core = Core::new(ServerConfig::default(), ServerHandle::new().0);
    let key = core.insert("127.0.0.1:40000".parse().unwrap());
    let late = core.now + Duration::from_secs(50 * 86_400);
    let coarse = core.schedule.coarse(late);
    assert_eq!(coarse, u32::MAX);
    core.conns[key].armed = coarse;
    let slot = &core.conns[key];
    let own = slot.conn.poll_timeout().expect("the request timer");
    assert_ne!(own, late);
    let stale = crate::driver::Wakeup {
        at: late,
        key,
        gen: slot.gen,
    };
    assert!(!slot.wants(&stale, coarse), "a stale entry past 49 days");
    let current = crate::driver::Wakeup {
        at: own,
        key,
        gen: slot.gen,
    };
    assert!(
        slot.wants(&current, core.schedule.coarse(own)),
        "the deadline's own entry"
    );
}
