//! The decoder, frame by frame.
use super::*;
use crate::proto::frame::encode_frame;

const MASK: [u8; 4] = [1, 2, 3, 4];

fn server() -> Decoder {
    Decoder::new(Role::Server, 1 << 20, 1 << 20)
}

fn masked(fin: bool, op: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_frame(&mut v, fin, op, payload, Some(MASK));
    v
}

/// Decodes everything in `wire`, returning owned events (as debug strings)
/// or the first error.
#[track_caller]
fn run(d: &mut Decoder, wire: &[u8]) -> Result<Vec<String>, ProtocolError> {
    let mut buf = wire.to_vec();
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        match d.decode(&mut buf[pos..])? {
            Decoded::NeedMore => return Ok(out),
            Decoded::Frame { consumed, frame } => {
                if let Some(f) = frame {
                    out.push(format!("{:?}", f.event(&buf[pos..])?));
                }
                pos += consumed;
            }
        }
    }
}

#[test]
fn single_frames() {
    let mut wire = masked(true, Opcode::Text, b"Hello");
    wire.extend(masked(true, Opcode::Binary, &[0, 255]));
    wire.extend(masked(true, Opcode::Ping, b"p"));
    wire.extend(masked(true, Opcode::Close, b"\x03\xe8bye"));
    assert_eq!(
        run(&mut server(), &wire).unwrap(),
        [
            r#"Text("Hello")"#,
            "Binary([0, 255])",
            "Ping([112])",
            r#"Close { code: 1000, reason: "bye" }"#
        ]
    );
}

#[test]
fn fragments_with_interleaved_ping() {
    let mut wire = masked(false, Opcode::Text, "καλη".as_bytes());
    wire.extend(masked(true, Opcode::Ping, b""));
    wire.extend(masked(false, Opcode::Continuation, "μέ".as_bytes()));
    wire.extend(masked(true, Opcode::Continuation, "ρα".as_bytes()));
    wire.extend(masked(true, Opcode::Text, b"next"));
    assert_eq!(
        run(&mut server(), &wire).unwrap(),
        ["Ping([])", r#"Text("καλημέρα")"#, r#"Text("next")"#]
    );
}

#[test]
fn byte_by_byte_delivery_gives_the_same_events() {
    let mut wire = masked(false, Opcode::Binary, &[7; 300]);
    wire.extend(masked(true, Opcode::Continuation, &[8; 70000]));
    wire.extend(masked(true, Opcode::Text, "𝄞 clef".as_bytes()));
    let mut d = server();
    let mut buf = Vec::new();
    let mut events = Vec::new();
    for &b in &wire {
        buf.push(b);
        while let Decoded::Frame { consumed, frame } = d.decode(&mut buf).unwrap() {
            if let Some(f) = frame {
                events.push(match f.event(&buf).unwrap() {
                    Event::Binary(p) => format!("bin {} {}", p.len(), p[299] + p[300]),
                    other => format!("{other:?}"),
                });
            }
            buf.drain(..consumed);
        }
    }
    assert_eq!(events, ["bin 70300 15", r#"Text("𝄞 clef")"#]);
}

#[test]
fn invalid_utf8_fails_before_the_frame_completes() {
    let frame = masked(true, Opcode::Text, b"ok\xff and much more text to come");
    let mut d = server();
    let mut part = frame[..10].to_vec(); // header (6) + "ok\xff" + 1
    assert_eq!(d.decode(&mut part), Err(ProtocolError::InvalidUtf8));
}

#[test]
fn invalid_utf8_across_fragments() {
    let mut wire = masked(false, Opcode::Text, &[0xCE]);
    wire.extend(masked(true, Opcode::Continuation, b"A"));
    assert_eq!(run(&mut server(), &wire), Err(ProtocolError::InvalidUtf8));
    // A message ending mid-character.
    let mut wire = masked(false, Opcode::Text, b"a");
    wire.extend(masked(true, Opcode::Continuation, &[0xCE]));
    assert_eq!(run(&mut server(), &wire), Err(ProtocolError::InvalidUtf8));
}

#[test]
fn protocol_violations() {
    let unmasked = {
        let mut v = Vec::new();
        encode_frame(&mut v, true, Opcode::Text, b"x", None);
        v
    };
    assert_eq!(run(&mut server(), &unmasked), Err(ProtocolError::UnmaskedFrame));
    let mut client = Decoder::new(Role::Client, 100, 100);
    assert_eq!(
        run(&mut client, &masked(true, Opcode::Text, b"x")),
        Err(ProtocolError::MaskedFrame)
    );
    assert_eq!(
        run(&mut server(), &masked(true, Opcode::Continuation, b"x")),
        Err(ProtocolError::UnexpectedContinuation)
    );
    let mut wire = masked(false, Opcode::Text, b"a");
    wire.extend(masked(true, Opcode::Text, b"b"));
    assert_eq!(run(&mut server(), &wire), Err(ProtocolError::ExpectedContinuation));
    assert_eq!(
        run(&mut server(), &masked(true, Opcode::Close, &[3, 0xED])),
        Err(ProtocolError::InvalidCloseCode(1005))
    );
}

#[test]
fn limits_map_to_1009() {
    let mut d = Decoder::new(Role::Server, 10, 15);
    let e = run(&mut d, &masked(true, Opcode::Binary, &[0; 11])).unwrap_err();
    assert_eq!(e, ProtocolError::FrameTooLarge { len: 11, max: 10 });
    assert_eq!(e.close_code(), 1009);
    let mut d = Decoder::new(Role::Server, 10, 15);
    let mut wire = masked(false, Opcode::Binary, &[0; 10]);
    wire.extend(masked(true, Opcode::Continuation, &[0; 6]));
    let e = run(&mut d, &wire).unwrap_err();
    assert_eq!(e, ProtocolError::MessageTooLarge { len: 16, max: 15 });
}

#[test]
fn pending_frame_len_is_known_once_the_header_is() {
    let mut d = server();
    let wire = masked(true, Opcode::Binary, &[5; 300]);
    assert_eq!(d.pending_frame_len(), None);
    let mut part = wire[..3].to_vec(); // header incomplete
    assert_eq!(d.decode(&mut part), Ok(Decoded::NeedMore));
    assert_eq!(d.pending_frame_len(), None);
    let mut part = wire[..100].to_vec();
    assert_eq!(d.decode(&mut part), Ok(Decoded::NeedMore));
    assert_eq!(d.pending_frame_len(), Some(wire.len() as u64));
    let mut whole = wire.clone();
    whole[..100].copy_from_slice(&part); // bytes the decoder saw, as it left them
    assert!(matches!(d.decode(&mut whole), Ok(Decoded::Frame { consumed: 308, .. })));
    assert_eq!(d.pending_frame_len(), None);
}

#[test]
fn a_frame_whose_header_came_first_is_finished_from_the_whole_buffer() {
    let mut d = server();
    let mut wire = masked(true, Opcode::Text, b"hello");
    wire.extend(masked(true, Opcode::Binary, &[1, 2]));
    // Only the header of the first frame: it is read, the payload awaited.
    let mut head = wire[..6].to_vec();
    assert_eq!(d.decode(&mut head), Ok(Decoded::NeedMore));
    assert_eq!(d.pending_frame_len(), Some(11));
    // Then the whole buffer again, from the frame's start.
    let mut buf = wire.clone();
    buf[..6].copy_from_slice(&head);
    let Ok(Decoded::Frame {
        consumed,
        frame: Some(f),
    }) = d.decode(&mut buf)
    else {
        panic!("the text frame")
    };
    assert_eq!(f.event(&buf).unwrap(), Event::Text("hello".into()));
    assert_eq!(d.pending_frame_len(), None, "the frame in progress is done");
    let rest = &mut buf[consumed..];
    let Ok(Decoded::Frame { frame: Some(f), .. }) = d.decode(rest) else {
        panic!("the binary frame")
    };
    assert_eq!(f.event(rest).unwrap(), Event::Binary(vec![1, 2].into()));
}

#[test]
fn assembled_messages_are_handed_over_and_leave_no_buffer() {
    let mut d = server();
    let mut wire = masked(false, Opcode::Binary, &[1; 10_000]);
    wire.extend(masked(true, Opcode::Continuation, &[2; 10]));
    wire.extend(masked(true, Opcode::Ping, b""));
    run(&mut d, &wire).unwrap();
    assert!(d.message.is_none(), "no box, no buffer once handed over");
}

#[test]
fn a_fragmented_message_gets_its_box_at_its_first_frame_and_survives_pings() {
    let mut d = server();
    assert!(d.message.is_none(), "nothing before a fragment");
    let pieces: [&[u8]; 4] = [b"he", "llo \u{e9}".as_bytes(), b"", b" world"];
    let mut wire = masked(false, Opcode::Text, pieces[0]);
    wire.extend(masked(true, Opcode::Ping, b"p1"));
    wire.extend(masked(false, Opcode::Continuation, pieces[1]));
    wire.extend(masked(true, Opcode::Pong, b"p2"));
    wire.extend(masked(true, Opcode::Ping, b"p3"));
    wire.extend(masked(false, Opcode::Continuation, pieces[2]));
    // Fed a frame at a time: the box stays between calls, and the
    // control frames in the middle leave it alone.
    let mut events = Vec::new();
    let mut pos = 0;
    while pos < wire.len() {
        let Decoded::Frame { consumed, frame } = d.decode(&mut wire[pos..]).unwrap() else {
            panic!("whole frames only")
        };
        if let Some(f) = frame {
            events.push(format!("{:?}", f.event(&wire[pos..]).unwrap()));
        }
        assert!(d.message.is_some(), "the message is open after byte {pos}");
        pos += consumed;
    }
    assert_eq!(
        events,
        [r#"Ping([112, 49])"#, r#"Pong([112, 50])"#, r#"Ping([112, 51])"#]
    );
    let last = masked(true, Opcode::Continuation, pieces[3]);
    assert_eq!(run(&mut d, &last).unwrap(), [r#"Text("hello é world")"#]);
    assert!(d.message.is_none(), "handed over whole: the box is gone");
    // A second message needs a new one, and a stray continuation none.
    let stray = masked(true, Opcode::Continuation, b"x");
    assert_eq!(run(&mut d, &stray), Err(ProtocolError::UnexpectedContinuation));
}
