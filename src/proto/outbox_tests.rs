//! The output queue as a wire trace: inline and shared bytes in the order
//! they were queued, written by a writer that takes a few bytes at a time.

use super::*;

fn shared(fill: u8, len: usize) -> Bytes {
    Bytes::from(vec![fill; len])
}

/// Writes `out` as a flush would, taking at most `step` bytes per
/// vectored write, and returns what went on the wire.
#[track_caller]
fn drain_by(out: &mut Outbox, step: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut writes = 0;
    while !out.is_empty() {
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let n = out.io_slices(&mut iov);
        assert!(n > 0, "bytes queued but no slice to write");
        let mut took = 0;
        for s in &iov[..n] {
            let k = (step - took).min(s.len());
            wire.extend_from_slice(&s[..k]);
            took += k;
            if took == step {
                break;
            }
        }
        out.consume(took);
        writes += 1;
        assert!(writes < 1_000_000, "no progress");
    }
    wire
}

/// inline "ab", shared 5 x 'S', inline "cd", shared 3 x 'T', inline "e".
fn mixed() -> (Outbox, Vec<u8>) {
    let mut out = Outbox::default();
    out.buf.extend_from_slice(b"ab");
    out.push_shared(shared(b'S', 5));
    out.buf.extend_from_slice(b"cd");
    out.push_shared(shared(b'T', 3));
    out.buf.extend_from_slice(b"e");
    (out, b"abSSSSScdTTTe".to_vec())
}

#[test]
fn inline_and_shared_bytes_go_out_in_the_order_queued() {
    let (out, want) = mixed();
    assert_eq!(out.len(), want.len());
    assert!(out.has_shared());
    assert_eq!(out.to_vec(), want);
    let mut iov = [IoSlice::new(&[]); MAX_IOV];
    let n = out.io_slices(&mut iov);
    let runs: Vec<Vec<u8>> = iov[..n].iter().map(|s| s.to_vec()).collect();
    assert_eq!(runs, [&b"ab"[..], b"SSSSS", b"cd", b"TTT", b"e"]);
}

#[test]
fn partial_writes_of_every_size_leave_the_same_wire() {
    for step in 1..=14 {
        let (mut out, want) = mixed();
        assert_eq!(drain_by(&mut out, step), want, "{step} bytes a write");
        assert!(out.is_empty() && !out.has_shared(), "{step}");
        assert_eq!(out.len(), 0);
        assert!(out.buf.is_empty());
    }
}

#[test]
fn a_write_that_stops_inside_a_shared_payload_resumes_there() {
    let (mut out, _) = mixed();
    out.consume(4); // "ab" and two of the S's
    assert_eq!(out.to_vec(), b"SSScdTTTe");
    assert_eq!(out.front(), b"SSS");
    out.consume(3); // the rest of the S's, exactly
    assert_eq!(out.front(), b"cd");
    assert_eq!(out.to_vec(), b"cdTTTe");
    out.buf.extend_from_slice(b"f"); // queued after a partial write
    assert_eq!(out.to_vec(), b"cdTTTef");
    assert_eq!(drain_by(&mut out, 100), b"cdTTTef");
}

#[test]
fn shared_payloads_back_to_back_keep_their_order() {
    let mut out = Outbox::default();
    out.push_shared(shared(b'A', 2));
    out.push_shared(shared(b'B', 2));
    out.push_shared(Bytes::new()); // nothing to queue
    assert_eq!(out.front(), b"AA");
    assert_eq!(drain_by(&mut out, 3), b"AABB");
}

#[test]
fn more_runs_than_one_writev_takes_go_out_in_several() {
    let mut out = Outbox::default();
    let mut want = Vec::new();
    for i in 0..100u8 {
        out.buf.push(i);
        want.push(i);
        out.push_shared(shared(i, 2));
        want.extend_from_slice(&[i, i]);
    }
    let mut iov = [IoSlice::new(&[]); MAX_IOV];
    assert_eq!(out.io_slices(&mut iov), MAX_IOV);
    assert_eq!(out.to_vec(), want);
    assert_eq!(drain_by(&mut out, usize::MAX / 2), want);
}

#[test]
fn the_backlog_counts_shared_bytes_as_copied_ones_and_frees_its_box() {
    let (mut out, want) = mixed();
    assert_eq!(out.backlog(), 0, "nothing flushed yet");
    out.consume(3);
    out.settle_backlog();
    assert_eq!(out.backlog(), want.len() - 3);
    out.clear();
    out.settle_backlog();
    assert_eq!(out.backlog(), 0);
    assert!(out.shared.is_none(), "an emptied queue holds no box");
    // Inline bytes alone keep a backlog too.
    out.buf.extend_from_slice(b"xyz");
    out.settle_backlog();
    assert_eq!(out.backlog(), 3);
    assert!(!out.has_shared());
    assert_eq!(out.take_all(), b"xyz");
    out.settle_backlog();
    assert!(out.shared.is_none());
}

#[test]
fn the_queue_holds_a_reference_not_a_copy() {
    let payload = shared(b'P', SHARE_MIN);
    let mut out = Outbox::default();
    out.push_shared(payload.clone());
    let mut iov = [IoSlice::new(&[]); MAX_IOV];
    let n = out.io_slices(&mut iov);
    assert_eq!(n, 1);
    assert_eq!(iov[0].as_ptr(), payload.as_ptr(), "the payload's own bytes are written");
}

#[test]
fn an_idle_queue_is_two_words_and_a_box_pointer() {
    assert_eq!(std::mem::size_of::<Outbox>(), 32);
}

#[test]
fn unpinned_read_slices_let_go_of_the_read_buffer() {
    let mut out = Outbox::default();
    out.buf.extend_from_slice(b"hdr");
    out.push_ref(ByRef::Read { off: 100, len: 9000 });
    out.buf.extend_from_slice(b"after");
    let read = Bytes::from((0..20_000u32).map(|i| i as u8).collect::<Vec<u8>>());
    out.resolve_reads(&read);
    let before = out.to_vec();
    assert_eq!(&before[3..9003], &read[100..9100]);
    let read = read
        .try_into_mut()
        .expect_err("the queue holds a slice of the read buffer");
    out.unpin_reads();
    assert_eq!(out.to_vec(), before, "the same bytes, in the same place");
    assert!(read.try_into_mut().is_ok(), "the read buffer is no longer held");
}
