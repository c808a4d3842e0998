//! Frames on the wire: fragmented sends (and the sends refused around
//! them), close codes and reasons in both directions, and protocol
//! violations that fail only the offending connection.

use hvws::{Channel, CloseInfo, CloseInitiator, Context, HvWebServer, Opcode, SendError, SendStatus, ServerConfig};
use tungstenite::Message;

use crate::common::{close_info, nth_open, Probe};
use crate::util::{
    self, close, connect, masked_frame, pump_n, recv, recv_close, recv_text, send_text, unmasked_frame, until_closed,
    Raw,
};

/// On "frag", sends "hel" + ping + "lo" as one fragmented text message with a
/// whole message and a few invalid sends issued in between.
#[derive(Default)]
struct Fragments {
    results: Vec<Result<SendStatus, SendError>>,
}

impl HvWebServer for Fragments {
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        assert_eq!(msg, "frag");
        self.results = vec![
            ctx.send(ch, b"x", Opcode::Continuation, true),
            ctx.send(ch, b"hel", Opcode::Text, false),
            Ok(ctx.send_text(ch, "between")),
            ctx.send(ch, b"x", Opcode::Binary, false),
            ctx.ping(ch, b"mid"),
            ctx.send(ch, b"lo", Opcode::Continuation, true),
            ctx.send(ch, b"x", Opcode::Continuation, true),
            ctx.send(ch, b"x", Opcode::Close, true),
        ];
    }
}

fn expected_fragment_results() -> Vec<Result<SendStatus, SendError>> {
    vec![
        Err(SendError::InvalidOpcode(Opcode::Continuation)),
        Ok(SendStatus::Queued),
        Ok(SendStatus::Queued),
        Err(SendError::InvalidOpcode(Opcode::Binary)),
        Ok(SendStatus::Queued),
        Ok(SendStatus::Queued),
        Err(SendError::InvalidOpcode(Opcode::Continuation)),
        Err(SendError::InvalidOpcode(Opcode::Close)),
    ]
}

#[test]
fn fragmented_sends_arrive_as_one_message() {
    let mut server = util::server(Fragments::default());

    // tungstenite reassembles: one text message, the ping (control frames
    // may interleave) first, the whole message after.
    let mut client = connect(&mut server, "/");
    send_text(&mut server, &mut client, "frag");
    assert_eq!(recv(&mut server, &mut client), Message::Ping("mid".into()));
    assert_eq!(recv_text(&mut server, &mut client), "hello");
    assert_eq!(recv_text(&mut server, &mut client), "between");
    assert_eq!(server.handler().results, expected_fragment_results());

    // The exact frames.
    let mut raw = Raw::ws(&mut server, "/");
    raw.write(&mut server, &masked_frame(true, 1, b"frag"));
    let frames: Vec<util::Frame> = (0..4).map(|_| raw.frame(&mut server)).collect();
    let summary: Vec<(bool, u8, &[u8])> = frames.iter().map(|f| (f.fin, f.opcode, &f.payload[..])).collect();
    assert_eq!(
        summary,
        [
            (false, 1, &b"hel"[..]),
            (true, 9, &b"mid"[..]),
            (true, 0, &b"lo"[..]),
            (true, 1, &b"between"[..]),
        ]
    );
    assert_eq!(server.handler().results, expected_fragment_results());
}

#[test]
fn close_codes_and_reasons_both_ways() {
    let mut server = util::server(Probe::default());

    // The client closes with 4001 "bye".
    let mut client = connect(&mut server, "/");
    let ch = nth_open(&mut server, 1);
    close(&mut server, &mut client, 4001, "bye");
    assert_eq!(
        recv_close(&mut server, &mut client).0,
        4001,
        "the server echoes the code"
    );
    until_closed(&mut server, &mut client);
    assert_eq!(
        close_info(&mut server, ch),
        CloseInfo {
            code: 4001,
            reason: "bye".into(),
            was_clean: true,
            initiator: CloseInitiator::Remote
        }
    );

    // The server closes with 4002 "done", after refusing invalid closes.
    let mut client = connect(&mut server, "/");
    let ch = nth_open(&mut server, 2);
    let handle = server.handle();
    server.with_context(|_, ctx| {
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, u16::MAX] {
            assert_eq!(ctx.close(ch, code, ""), Err(SendError::InvalidCloseCode(code)));
            assert_eq!(handle.close(ch, code, ""), Err(SendError::InvalidCloseCode(code)));
        }
        assert!(ctx.is_open(ch), "a refused close must leave the channel open");
        assert!(ctx.send_text(ch, "still open").is_queued());
    });
    // Nothing was sent by the refused closes: the next frame is the text.
    assert_eq!(recv_text(&mut server, &mut client), "still open");
    assert_eq!(server.handler().closes.len(), 1);

    server.with_context(|_, ctx| {
        ctx.close(ch, 4002, "done").unwrap();
        assert!(!ctx.is_open(ch));
        assert_eq!(ctx.send_text(ch, "after close"), SendStatus::Closed);
        assert_eq!(ctx.close(ch, 1000, ""), Ok(()), "closing again does nothing");
    });
    // The close frame is out, but the client has not answered yet: no
    // callback.
    pump_n(&mut server, 20);
    assert!(
        server.handler().close_of(ch).is_none(),
        "on_ws_close ran before the peer answered"
    );
    assert_eq!(recv_close(&mut server, &mut client), (4002, "done".to_owned()));
    let info = close_info(&mut server, ch);
    assert_eq!(
        (info.code, info.was_clean, info.initiator),
        (4002, true, CloseInitiator::Local)
    );
    until_closed(&mut server, &mut client);
    assert!(server.handler().errors.is_empty(), "{:?}", server.handler().errors);
}

#[test]
fn protocol_violations_fail_only_the_offender() {
    let config = ServerConfig {
        max_message_size: 1024,
        ..ServerConfig::default()
    };
    let mut server = util::server_with(Probe::default(), config);
    let mut good = connect(&mut server, "/");
    let good_ch = nth_open(&mut server, 1);

    let mut fragmented = masked_frame(false, 2, &[1; 600]);
    fragmented.extend(masked_frame(true, 0, &[2; 600]));
    let cases = [
        ("unmasked frame", unmasked_frame(true, 1, b"hi"), 1002),
        ("invalid UTF-8", masked_frame(true, 1, b"ok \xff\xfe"), 1007),
        ("message over max_message_size", masked_frame(true, 2, &[7; 2000]), 1009),
        ("fragmented message over max_message_size", fragmented, 1009),
    ];
    for (i, (name, bytes, code)) in cases.into_iter().enumerate() {
        let mut raw = Raw::ws(&mut server, "/");
        let ch = nth_open(&mut server, i + 2);
        // The good client's message and the violation reach the same tick.
        util::send_text(&mut server, &mut good, &format!("still fine {i}"));
        raw.write(&mut server, &bytes);

        let frame = raw.frame(&mut server);
        assert_eq!(frame.close_code().0, code, "{name}: close code");
        assert_eq!(raw.read_to_eof(&mut server), b"", "{name}: bytes after the close frame");

        let info = close_info(&mut server, ch);
        assert_eq!(
            (info.code, info.was_clean, info.initiator),
            (code, false, CloseInitiator::Local),
            "{name}: {info:?}"
        );
        assert!(
            server.handler().errors.iter().any(|(c, _)| *c == ch),
            "{name}: on_ws_error did not run"
        );
        assert_eq!(recv_text(&mut server, &mut good), format!("still fine {i}"), "{name}");
    }
    assert_eq!(server.handler().closes.len(), 4);

    // The good client closes normally at the end.
    close(&mut server, &mut good, 1000, "");
    recv_close(&mut server, &mut good);
    until_closed(&mut server, &mut good);
    assert_eq!(close_info(&mut server, good_ch).code, 1000);
}
