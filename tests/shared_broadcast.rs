//! A 64 KiB broadcast to 1,000 receivers holds one copy of its payload,
//! not 1,000: every receiver's queue writes the payload from the same
//! address, and the process's resident memory grows by far less than
//! 1,000 copies while the broadcast is queued. (A counting global
//! allocator would be the direct check, but the crate forbids `unsafe`
//! in every target, tests included.)

use std::collections::HashSet;
use std::io::IoSlice;
use std::sync::Mutex;

use hvws::proto::broadcast::Broadcast;
use hvws::proto::outbox::MAX_IOV;
use hvws::{Bytes, Opcode};

#[path = "protocol/pair.rs"]
#[allow(dead_code)]
mod pair;

use pair::{Pair, Side};

const BIG: usize = 64 << 10;

/// Resident memory, from /proc (Linux); `None` elsewhere.
fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The tests measure the process's memory: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const RECEIVERS: usize = 1_000;

/// Queues `b` on every receiver; returns how much resident memory grew.
fn queue_on_all(pairs: &mut [Pair], b: &mut Broadcast<'_>) -> Option<usize> {
    let before = rss_bytes();
    for p in pairs.iter_mut() {
        let limits = p.server_limits.clone();
        assert!(p.server.push_broadcast(b, &limits).is_queued());
    }
    Some(rss_bytes()?.saturating_sub(before?))
}

/// Where each receiver's queue writes its 64 KiB payload from.
fn payload_addresses(pairs: &mut [Pair]) -> HashSet<usize> {
    let mut at = HashSet::new();
    for p in pairs.iter_mut() {
        let out = p.server.transmit();
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let n = out.io_slices(&mut iov);
        // The payload ends the queue: its first byte is BIG from the end.
        let last = iov[..n].last().expect("something queued");
        assert!(last.len() >= BIG);
        at.insert(last.as_ptr() as usize + last.len() - BIG);
    }
    at
}

fn receivers() -> Vec<Pair> {
    (0..RECEIVERS).map(|_| Pair::open()).collect()
}

/// Delivers a few receivers' queues and checks they got the message.
#[track_caller]
fn check_delivered(pairs: &mut [Pair], len: usize) {
    for p in pairs.iter_mut().step_by(250) {
        p.drive();
        assert_eq!(p.take_log(Side::Client), [format!("binary {len} bytes")]);
    }
}

#[test]
fn a_64_kib_broadcast_to_1000_receivers_holds_one_copy() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut pairs = receivers();
    let payload = vec![7u8; BIG];
    let mut b = Broadcast::new(Opcode::Binary, &payload, Vec::new());
    let grew = queue_on_all(&mut pairs, &mut b);
    drop(b);
    assert_eq!(payload_addresses(&mut pairs).len(), 1, "receivers hold copies");
    for p in &pairs {
        assert_eq!(p.server.buffered(), BIG + 10, "header (10) + payload, counted alike");
    }
    // 1,000 copies would be 64 MiB; headers and references are a few
    // dozen bytes a receiver.
    if let Some(grew) = grew {
        assert!(grew < 8 << 20, "resident memory grew by {grew} bytes");
    }
    check_delivered(&mut pairs, BIG);
}

#[test]
fn a_broadcast_of_shared_bytes_is_written_from_the_callers_buffer() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut pairs = receivers();
    let payload = Bytes::from(vec![9u8; BIG]);
    let mut b = Broadcast::shared(Opcode::Binary, payload.clone(), Vec::new());
    queue_on_all(&mut pairs, &mut b);
    drop(b);
    let at = payload_addresses(&mut pairs);
    assert_eq!(at, HashSet::from([payload.as_ptr() as usize]), "not even one copy");
    check_delivered(&mut pairs, BIG);
}

#[test]
fn copies_would_show_in_both_checks() {
    // The checks above could not fail if they missed copies: a 64 KiB
    // message sent to each receiver on its own is copied into each queue,
    // and shows as one address and 64 KiB of memory per receiver.
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut pairs = receivers();
    let payload = vec![7u8; BIG];
    let before = rss_bytes();
    for p in pairs.iter_mut() {
        let limits = p.server_limits.clone();
        assert!(p.server.send_message(Opcode::Binary, &payload, &limits).is_queued());
    }
    let grew = rss_bytes().zip(before).map(|(a, b)| a.saturating_sub(b));
    assert_eq!(payload_addresses(&mut pairs).len(), RECEIVERS);
    if let Some(grew) = grew {
        assert!(
            grew >= 32 << 20,
            "1,000 copies grew resident memory by only {grew} bytes"
        );
    }
}
