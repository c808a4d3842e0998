//! A server's and a connection's life: the cross-thread handle, idle ticks,
//! `stop()` with messages still queued, peers that leave without a closing
//! handshake, and what `on_ws_close` sees.

use std::io::ErrorKind;
use std::thread;

use hvws::{Channel, CloseInfo, CloseInitiator, Context, HvWebServer, SendError, ServerConfig, ServerError};
use tungstenite::Message;

use crate::common::{close_info, nth_open, Probe};
use crate::util::{self, close, connect, pump_until, recv_close, recv_text, send_text, until_closed, Raw, TIMEOUT};

#[test]
fn server_handle_from_another_thread() {
    let mut server = util::server(Probe::default());
    let mut client = connect(&mut server, "/");
    let ch = nth_open(&mut server, 1);

    let handle = server.handle();
    let sender = thread::spawn(move || {
        for i in 0..100 {
            handle.send_text(ch, format!("n{i}")).unwrap();
        }
        handle.broadcast_text("to everyone", None).unwrap();
        handle
    });
    for i in 0..100 {
        assert_eq!(recv_text(&mut server, &mut client), format!("n{i}"));
    }
    assert_eq!(recv_text(&mut server, &mut client), "to everyone");
    let handle = sender.join().expect("sender thread");

    thread::spawn({
        let handle = handle.clone();
        move || handle.stop().unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(recv_close(&mut server, &mut client).0, 1001);
    until_closed(&mut server, &mut client);
    drop(client);
    pump_until(&mut server, "the server to stop", |s| !s.is_running());

    let info = server.handler().close_of(ch).cloned().expect("on_ws_close ran");
    assert_eq!((info.code, info.initiator), (1001, CloseInitiator::Local));
    assert_eq!(handle.send_text(ch, "late"), Err(SendError::NotRunning));
    assert!(matches!(server.tick(), Err(ServerError::NotRunning)));
}

#[test]
fn idle_ticks_return_and_deliver_nothing() {
    let mut server = util::server(Probe::default());
    for _ in 0..1000 {
        server.tick().expect("idle tick without connections");
    }

    let mut clients: Vec<util::Client> = (0..50).map(|_| connect(&mut server, "/")).collect();
    nth_open(&mut server, 50);
    let before = server.handler().callbacks;
    for _ in 0..1000 {
        server.tick().expect("idle tick with 50 connections");
    }
    assert_eq!(server.handler().callbacks, before, "idle ticks ran callbacks");
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.try_recv(), None, "idle client {i} received something");
    }

    // Still serving.
    send_text(&mut server, &mut clients[37], "awake");
    assert_eq!(recv_text(&mut server, &mut clients[37]), "awake");
}

/// Reads `client` on its own thread (blocking, with a timeout) until the
/// connection ends; returns the messages before the close frame and the
/// close frame's code.
fn read_on_thread(client: util::Client) -> thread::JoinHandle<(Vec<Message>, u16)> {
    let util::Client { mut ws, .. } = client;
    ws.get_mut().set_nonblocking(false).unwrap();
    ws.get_mut().set_read_timeout(Some(TIMEOUT)).unwrap();
    thread::spawn(move || {
        let mut messages = Vec::new();
        let code = loop {
            match ws.read() {
                Ok(Message::Close(frame)) => break frame.map_or(1005, |f| u16::from(f.code)),
                Ok(m) => messages.push(m),
                Err(e) => panic!("client read failed before the close frame: {e}"),
            }
        };
        // This read sends the reply, then sees the server's TCP close.
        match ws.read() {
            Ok(m) => panic!("message after the close frame: {m:?}"),
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                panic!("timed out waiting for the server to close TCP")
            }
            Err(e) => panic!("client read failed after the close frame: {e}"),
        }
        (messages, code)
    })
}

#[test]
fn stop_delivers_queued_messages_before_1001() {
    let config = ServerConfig {
        shutdown_timeout: TIMEOUT,
        ..ServerConfig::default()
    };
    let mut server = util::server_with(Probe::default(), config);
    let clients: Vec<util::Client> = (0..3).map(|_| connect(&mut server, "/")).collect();
    nth_open(&mut server, 3);
    let channels = server.handler().opened.clone();

    // Queued between ticks, with a message larger than the sockets take
    // while nobody reads, so part of it is still queued in the server when
    // stop begins and the 1001 close has to wait behind it.
    let big: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 253) as u8).collect();
    server.with_context(|_, ctx| {
        for &ch in &channels {
            for i in 0..20 {
                assert!(ctx.send_text(ch, &format!("m{i}")).is_queued());
            }
            assert!(ctx.send_binary(ch, &big).is_queued());
            assert!(ctx.send_text(ch, "last").is_queued());
        }
    });
    server.tick().unwrap();
    server.with_context(|_, ctx| {
        for &ch in &channels {
            assert!(
                ctx.buffered_amount(ch) > 0,
                "precondition: the socket of {ch} took all {} bytes at once; use a larger message",
                big.len()
            );
        }
    });
    let readers: Vec<_> = clients.into_iter().map(read_on_thread).collect();
    server.stop().expect("stop");
    assert!(!server.is_running());

    let mut expected: Vec<Message> = (0..20).map(|i| Message::text(format!("m{i}"))).collect();
    expected.push(Message::binary(big));
    expected.push(Message::text("last"));
    for reader in readers {
        let (messages, code) = reader.join().expect("reader thread");
        assert_eq!(code, 1001);
        assert_eq!(messages.len(), expected.len());
        assert!(messages == expected, "messages arrived changed or out of order");
    }
    let probe = server.handler();
    assert_eq!(probe.closes.len(), channels.len());
    for ch in channels {
        let info = probe.close_of(ch).expect("on_ws_close ran for every channel");
        assert_eq!(
            (info.code, info.initiator, info.was_clean),
            (1001, CloseInitiator::Local, true)
        );
    }
}

#[test]
fn dropped_peers_and_close_timeout() {
    let config = ServerConfig {
        close_timeout: std::time::Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let mut server = util::server_with(Probe::default(), config);

    // TCP closed without a close frame: 1006 from the remote side.
    let client = connect(&mut server, "/");
    let ch = nth_open(&mut server, 1);
    drop(client);
    assert_eq!(
        close_info(&mut server, ch),
        CloseInfo {
            code: 1006,
            reason: String::new(),
            was_clean: false,
            initiator: CloseInitiator::Remote
        }
    );

    // Dropped with unread data (a reset, on Linux): 1006 as well.
    let mut client = connect(&mut server, "/");
    let ch = nth_open(&mut server, 2);
    send_text(&mut server, &mut client, "unread echo");
    pump_until(&mut server, "the echo to reach the client socket", |s| {
        s.handler().texts == 1 && s.with_context(|_, ctx| ctx.buffered_amount(ch) == 0)
    });
    drop(client);
    let info = close_info(&mut server, ch);
    assert_eq!(
        (info.code, info.was_clean, info.initiator),
        (1006, false, CloseInitiator::Remote)
    );

    // Our close is never answered: after close_timeout, our own code and
    // reason, not clean, and an error.
    let mut raw = Raw::ws(&mut server, "/");
    let ch = nth_open(&mut server, 3);
    server.with_context(|_, ctx| ctx.close(ch, 4000, "go away")).unwrap();
    assert_eq!(raw.frame(&mut server).close_code(), (4000, "go away".to_owned()));
    let info = close_info(&mut server, ch);
    assert_eq!(
        (info.code, info.reason.as_str(), info.was_clean, info.initiator),
        (4000, "go away", false, CloseInitiator::Local)
    );
    assert!(
        server
            .handler()
            .errors
            .iter()
            .any(|(c, e)| *c == ch && e.contains("closing handshake")),
        "{:?}",
        server.handler().errors
    );
    assert_eq!(raw.read_to_eof(&mut server), b"");
}

/// `on_ws_close` can still read the channel's handshake details (to log the
/// peer or clean up per-path state) even though sends to it already fail.
#[test]
fn close_callback_still_sees_channel_info() {
    #[derive(Default)]
    struct Logger {
        seen: Vec<(String, bool)>,
    }
    impl HvWebServer for Logger {
        fn on_ws_close(&mut self, ctx: &mut Context<'_>, ch: Channel, _close: &CloseInfo) {
            let path = ctx.info(ch).map(|i| i.path().to_owned()).unwrap_or_default();
            self.seen.push((path, ctx.is_open(ch)));
        }
    }
    let mut s = util::server(Logger::default());
    let mut c = connect(&mut s, "/room/7?x=1");
    close(&mut s, &mut c, 1000, "");
    pump_until(&mut s, "the close callback", |s| !s.handler().seen.is_empty());
    assert_eq!(s.handler().seen, [("/room/7".to_owned(), false)]);
}

/// A server may close with the registered codes a client may not use, such
/// as 1008 (policy violation) after a failed auth, as Aussom-Server does.
#[test]
fn server_closes_with_policy_violation() {
    let mut s = util::server(Probe::default());
    let mut client = connect(&mut s, "/secure");
    let ch = nth_open(&mut s, 1);
    s.with_context(|_, ctx| ctx.close(ch, 1008, "missing x-api-key"))
        .unwrap();
    assert_eq!(recv_close(&mut s, &mut client), (1008, "missing x-api-key".to_owned()));
}

#[test]
fn flush_sends_what_the_loop_queued_without_another_tick() {
    let mut server = util::server(Probe::default());
    let mut client = connect(&mut server, "/");
    let ch = nth_open(&mut server, 1);
    assert_eq!(server.channel_count(), 1);
    // The frame: a tick (reads), then the game queues its snapshot and
    // flushes; no tick follows.
    server.tick().unwrap();
    assert!(server
        .with_context(|_, ctx| ctx.send_text(ch, "snapshot 1"))
        .is_queued());
    server.flush().unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    let got = loop {
        if let Some(m) = client.try_recv() {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "flush did not send");
        thread::sleep(std::time::Duration::from_millis(1));
    };
    assert_eq!(got, Message::text("snapshot 1"));
    drop(client);
    server.stop().unwrap();
    assert!(matches!(server.flush(), Err(ServerError::NotRunning)));
}
