//! https and wss end to end over loopback (feature `tls`): hvws's server
//! and client, rustls's own client for SNI and https, a plain and a TLS
//! port in one server, certificate rotation, and what verification errors
//! look like.
#![cfg(feature = "tls")]

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;

use hvws::{
    Channel, ClientConfig, CloseInfo, Context, HttpResponse, HvWebServer, Routes, Server, ServerConfig, WebSocketClient,
};
use util::certs::Pki;
use util::tungstenite_peer::Recorder;

type Client = WebSocketClient<Recorder>;

/// Echoes, and remembers what it saw of each channel.
#[derive(Default)]
struct App {
    opened: Vec<(Channel, Option<hvws::TlsInfo>)>,
    closed: Vec<(u16, bool)>,
}

impl HvWebServer for App {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.get("/big", |_, _, req| hvws::serve_file(req, big_file()));
        routes.get("/api/info", |_, _, req| {
            HttpResponse::json_text(format!(
                "{{\"scheme\":\"{}\",\"tls\":{},\"sni\":\"{}\",\"alpn\":\"{}\"}}",
                req.scheme(),
                req.tls().is_some(),
                req.tls().and_then(|t| t.sni.clone()).unwrap_or_default(),
                req.tls().and_then(|t| t.alpn.clone()).unwrap_or_default(),
            ))
        });
    }
    fn on_ws_open(&mut self, ctx: &mut Context<'_>, ch: Channel, _url: &str) {
        let tls = ctx.info(ch).and_then(|i| i.tls().cloned());
        self.opened.push((ch, tls));
    }
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        if msg == "shared" {
            // Shared payloads between inline frames: TLS takes the queue
            // run by run.
            let big = hvws::Bytes::from(vec![5u8; 1 << 20]);
            ctx.send_text(ch, "x");
            assert!(ctx
                .send_shared(ch, big.clone(), hvws::Opcode::Binary)
                .unwrap()
                .is_queued());
            assert!(ctx
                .send_shared(ch, big.slice(..20_000), hvws::Opcode::Binary)
                .unwrap()
                .is_queued());
            ctx.send_text(ch, "y");
            return;
        }
        ctx.send_text(ch, msg);
    }
    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, ch: Channel, data: &[u8]) {
        ctx.send_binary(ch, data);
    }
    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, _ch: Channel, close: &CloseInfo) {
        self.closed.push((close.code, close.was_clean));
    }
}

fn tls_server(pki: &Pki, config: ServerConfig) -> Server<App> {
    util::init_logging();
    let mut server = Server::with_config(App::default(), config);
    server
        .init_tls_addr("127.0.0.1:0".parse().unwrap(), pki.server_tls())
        .unwrap();
    server.start().unwrap();
    server
}

fn client_for(pki: &Pki) -> Client {
    Client::with_config(
        Recorder::default(),
        ClientConfig {
            tls: pki.client_tls(),
            ..ClientConfig::default()
        },
    )
}

#[track_caller]
fn pump_both<H: HvWebServer>(
    server: &mut Server<H>,
    clients: &mut [&mut Client],
    what: &str,
    done: impl Fn(&Server<H>, &[&mut Client]) -> bool,
) {
    let deadline = Instant::now() + util::TIMEOUT;
    while !done(server, clients) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; clients saw {:?}",
            clients.iter().map(|c| c.handler()).collect::<Vec<_>>()
        );
        server.tick().unwrap();
        for c in clients.iter_mut() {
            c.process_event_que();
        }
        thread::sleep(Duration::from_micros(300));
    }
}

/// A wss server (default config) and a client opened on its `/echo`.
fn wss_echo_pair() -> (Server<App>, Client) {
    let pki = Pki::new("hvws test CA");
    let mut server = tls_server(&pki, ServerConfig::default());
    let url = format!("wss://127.0.0.1:{}/echo", server.tls_addr().unwrap().port());
    let mut c = client_for(&pki);
    c.init(&url).unwrap();
    pump_both(&mut server, &mut [&mut c], "open", |_, c| c[0].handler().opens == 1);
    (server, c)
}

#[test]
fn wss_messages_large_and_small_then_a_clean_close() {
    let (mut server, mut c) = wss_echo_pair();

    let big: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    assert!(c.send("hello over TLS").is_queued());
    assert!(c.send_binary(&big).is_queued());
    assert!(c.send("after the big one").is_queued());
    pump_both(&mut server, &mut [&mut c], "echoes", |_, c| {
        c[0].handler().log.len() == 4
    });
    assert_eq!(
        c.handler().log,
        [
            "open",
            "text:hello over TLS",
            "binary:1048576",
            "text:after the big one"
        ]
    );

    let (_, tls) = &server.handler().opened[0];
    let tls = tls.as_ref().expect("a wss channel knows its TLS");
    assert_eq!(tls.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(tls.sni, None, "no SNI for an IP address");
    assert!(tls.version.starts_with("TLSv1_"), "{}", tls.version);

    c.close_with(4001, "bye").unwrap();
    pump_both(&mut server, &mut [&mut c], "close", |s, c| {
        !c[0].handler().closes.is_empty() && !s.handler().closed.is_empty()
    });
    assert_eq!(c.handler().closes, [(4001, "bye".to_owned(), true)]);
    assert_eq!(server.handler().closed, [(4001, true)]);
    assert!(c.handler().errors.is_empty(), "{:?}", c.handler().errors);
}

#[test]
fn wss_shared_payloads_go_through_tls_in_order() {
    let (mut server, mut c) = wss_echo_pair();
    assert!(c.send("shared").is_queued());
    // Echoed from the read buffer by reference (when a read holds it
    // whole) through rustls.
    let echoed: Vec<u8> = (0..100_000).map(|i| (i % 251) as u8).collect();
    assert!(c.send_binary(&echoed).is_queued());
    pump_both(&mut server, &mut [&mut c], "the five messages", |_, c| {
        c[0].handler().log.len() == 6
    });
    assert_eq!(
        c.handler().log,
        [
            "open",
            "text:x",
            "binary:1048576",
            "binary:20000",
            "text:y",
            "binary:100000"
        ]
    );
    assert!(c.handler().errors.is_empty(), "{:?}", c.handler().errors);
}

#[test]
fn an_untrusted_certificate_is_a_clear_error_not_a_hang() {
    let pki = Pki::new("hvws test CA");
    let other = Pki::new("some other CA");
    let mut server = tls_server(&pki, ServerConfig::default());
    let url = format!("wss://127.0.0.1:{}/echo", server.tls_addr().unwrap().port());
    for trusting in [None, Some(&other)] {
        let mut c = match trusting {
            None => Client::new(Recorder::default()),
            Some(p) => client_for(p),
        };
        c.init(&url).unwrap();
        pump_both(&mut server, &mut [&mut c], "failure", |_, c| {
            !c[0].handler().closes.is_empty()
        });
        assert_eq!(c.handler().opens, 0);
        assert_eq!(c.handler().errors.len(), 1, "{:?}", c.handler().errors);
        assert!(
            c.handler().errors[0].contains("certificate not trusted for 127.0.0.1: UnknownIssuer"),
            "{:?}",
            c.handler().errors
        );
        assert_eq!(c.handler().closes[0].0, 1006);
    }
    assert!(server.handler().opened.is_empty());

    // The kind, for code that reacts to it.
    struct Kind(Option<hvws::TlsFailure>);
    impl hvws::HvWebSocketClient for Kind {
        fn on_error(&mut self, e: &hvws::ClientError) {
            if let hvws::ClientError::Tls { kind, .. } = e {
                self.0 = Some(*kind);
            }
        }
    }
    let mut c = WebSocketClient::new(Kind(None));
    c.init(&url).unwrap();
    let deadline = Instant::now() + util::TIMEOUT;
    while c.handler().0.is_none() {
        assert!(Instant::now() < deadline, "no TLS error");
        server.tick().unwrap();
        c.process_event_que();
    }
    assert_eq!(c.handler().0, Some(hvws::TlsFailure::UntrustedCertificate));
}

fn rustls_client(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    rustls_client_with(ca_pem, rustls::DEFAULT_VERSIONS)
}

/// A rustls client trusting `ca_pem`, offering only the TLS `versions`
/// given.
fn rustls_client_with(
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// An https GET with rustls's own client, with SNI, on a thread.
fn https_get(port: u16, ca_pem: &str, name: &str, path: &str) -> thread::JoinHandle<String> {
    https_get_with(port, ca_pem, name, path, rustls::DEFAULT_VERSIONS)
}

/// The same, offering only the TLS `versions` given.
fn https_get_with(
    port: u16,
    ca_pem: &str,
    name: &str,
    path: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> thread::JoinHandle<String> {
    let config = rustls_client_with(ca_pem, versions);
    let (name, path) = (name.to_owned(), path.to_owned());
    thread::spawn(move || {
        let server_name = rustls::pki_types::ServerName::try_from(name.clone()).unwrap();
        let conn = rustls::ClientConnection::new(config, server_name).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(util::TIMEOUT)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        write!(tls, "GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = Vec::new();
        // The server ends with close_notify, so a clean EOF is expected.
        tls.read_to_end(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    })
}

/// A file for `/big`, larger than rustls's and the socket's buffers.
fn big_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("hvws-tls-big-{}.txt", std::process::id()))
}

#[test]
fn a_file_body_streams_through_tls() {
    let content = "0123456789abcdef".repeat(5 << 16); // 5 MiB
    std::fs::write(big_file(), &content).unwrap();
    let pki = Pki::new("hvws test CA");
    let mut server = tls_server(&pki, ServerConfig::default());
    let port = server.tls_addr().unwrap().port();
    let get = https_get(port, &pki.ca_pem, "localhost", "/big");
    util::pump_until(&mut server, "the whole file over https", |_| get.is_finished());
    let text = get.join().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("Content-Length: 5242880"), "{head}");
    assert!(body == content, "{} bytes of body, not the file", body.len());
    std::fs::remove_file(big_file()).unwrap();
}

#[test]
fn https_routes_know_the_scheme_sni_and_alpn() {
    let pki = Pki::new("hvws test CA");
    let mut server = tls_server(&pki, ServerConfig::default());
    let port = server.tls_addr().unwrap().port();
    let get = https_get(port, &pki.ca_pem, "localhost", "/api/info");
    util::pump_until(&mut server, "https answer", |_| get.is_finished());
    let text = get.join().unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.ends_with("{\"scheme\":\"https\",\"tls\":true,\"sni\":\"localhost\",\"alpn\":\"http/1.1\"}"),
        "{text}"
    );
}

/// A TLS 1.2 server's last flight (its Finished) is written by the tick's
/// flush, not by the read that completed the handshake (which leaves what
/// a server says after its handshake for the flush): the client waits for
/// it before it sends its request, so a flight left unwritten would hang
/// here.
#[test]
fn a_tls12_handshake_gets_the_servers_last_flight_from_the_flush() {
    let pki = Pki::new("hvws test CA");
    let mut server = tls_server(&pki, ServerConfig::default());
    let port = server.tls_addr().unwrap().port();
    let get = https_get_with(port, &pki.ca_pem, "localhost", "/api/info", &[&rustls::version::TLS12]);
    util::pump_until(&mut server, "https answer over TLS 1.2", |_| get.is_finished());
    let text = get.join().unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[test]
fn a_peer_that_drops_tcp_without_close_notify_is_not_a_clean_close() {
    let pki = Pki::new("hvws test CA");
    let mut server = tls_server(&pki, ServerConfig::default());
    let port = server.tls_addr().unwrap().port();
    let config = rustls_client(&pki.ca_pem);
    let peer = thread::spawn(move || {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(config, name).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(util::TIMEOUT)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(
            b"GET /x HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
        let mut head = [0u8; 12];
        tls.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 101");
        // Gone: TCP closes with neither a close frame nor close_notify.
        drop(tls);
    });
    util::pump_until(&mut server, "the dropped channel's close", |s| {
        !s.handler().closed.is_empty()
    });
    peer.join().unwrap();
    assert_eq!(server.handler().closed, [(1006, false)]);
}

#[test]
fn a_plain_and_a_tls_port_share_routes_and_channels() {
    let pki = Pki::new("hvws test CA");
    util::init_logging();
    let mut server = Server::new(App::default());
    server.init_addr("127.0.0.1:0".parse().unwrap()).unwrap();
    server
        .listen_tls_addr("127.0.0.1:0".parse().unwrap(), pki.server_tls())
        .unwrap();
    server.start().unwrap();
    let (plain, secure) = (server.local_addr().unwrap(), server.tls_addr().unwrap());
    assert_ne!(plain, secure);

    let mut a = Client::new(Recorder::default());
    a.init(&format!("ws://{plain}/x")).unwrap();
    let mut b = client_for(&pki);
    b.init(&format!("wss://{secure}/x")).unwrap();
    pump_both(&mut server, &mut [&mut a, &mut b], "both open", |s, _| {
        s.channel_count() == 2
    });
    server.context().broadcast_text("to everyone", None);
    pump_both(&mut server, &mut [&mut a, &mut b], "broadcast", |_, c| {
        c.iter()
            .all(|c| c.handler().log.last().map(String::as_str) == Some("text:to everyone"))
    });
    let tls: Vec<bool> = server.handler().opened.iter().map(|(_, t)| t.is_some()).collect();
    assert_eq!(tls.iter().filter(|&&t| t).count(), 1, "one channel over TLS: {tls:?}");

    // Plain http on the plain port answers "http".
    let mut raw = TcpStream::connect(plain).unwrap();
    raw.write_all(b"GET /api/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    raw.set_nonblocking(true).unwrap();
    let mut text = Vec::new();
    util::pump_until(&mut server, "plain answer", |_| {
        let mut buf = [0u8; 4096];
        match raw.read(&mut buf) {
            Ok(0) => true,
            Ok(n) => {
                text.extend_from_slice(&buf[..n]);
                false
            }
            Err(_) => false,
        }
    });
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("{\"scheme\":\"http\",\"tls\":false"), "{text}");
}

#[test]
fn a_new_certificate_serves_new_connections_and_old_ones_stay() {
    let (old, new) = (Pki::new("old CA"), Pki::new("new CA"));
    let mut server = tls_server(&old, ServerConfig::default());
    let url = format!("wss://127.0.0.1:{}/x", server.tls_addr().unwrap().port());
    let mut before = client_for(&old);
    before.init(&url).unwrap();
    pump_both(&mut server, &mut [&mut before], "open", |_, c| {
        c[0].handler().opens == 1
    });

    // From another thread, as a renewal job would.
    let handle = server.handle();
    let renewed = new.server_tls();
    thread::spawn(move || handle.set_tls(renewed).unwrap()).join().unwrap();
    server.tick().unwrap();

    let mut after = client_for(&new);
    after.init(&url).unwrap();
    let mut stale = client_for(&old);
    stale.init(&url).unwrap();
    pump_both(
        &mut server,
        &mut [&mut after, &mut stale],
        "new open, stale refused",
        |_, c| c[0].handler().opens == 1 && !c[1].handler().closes.is_empty(),
    );
    assert!(
        stale.handler().errors[0].contains("UnknownIssuer"),
        "{:?}",
        stale.handler().errors
    );

    assert!(before.send("still here").is_queued());
    pump_both(&mut server, &mut [&mut before], "old connection", |_, c| {
        c[0].handler().log.last().map(String::as_str) == Some("text:still here")
    });
    // And from the server itself; a server without a TLS listener says so.
    server.set_tls(old.server_tls()).unwrap();
    let mut plain = Server::new(App::default());
    assert!(matches!(
        plain.set_tls(old.server_tls()),
        Err(hvws::ServerError::NotInitialized)
    ));
    plain.init_addr("127.0.0.1:0".parse().unwrap()).unwrap();
    assert!(matches!(
        plain.set_tls(old.server_tls()),
        Err(hvws::ServerError::NoTlsListener)
    ));
}

#[test]
fn mutual_tls_the_client_shows_its_certificate_when_asked() {
    let pki = Pki::new("hvws mTLS CA");
    let client_id = Pki::new("client CA");
    // A server that requires client certificates from `client_id`'s CA.
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(client_id.ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    util::init_logging();
    let mut server = Server::new(App::default());
    server
        .init_tls_addr(
            "127.0.0.1:0".parse().unwrap(),
            hvws::ServerTls::from_rustls(Arc::new(config)),
        )
        .unwrap();
    server.start().unwrap();
    let url = format!("wss://127.0.0.1:{}/x", server.tls_addr().unwrap().port());

    // Without a certificate: refused by the server.
    let mut anonymous = client_for(&pki);
    anonymous.init(&url).unwrap();
    pump_both(&mut server, &mut [&mut anonymous], "refusal", |_, c| {
        !c[0].handler().closes.is_empty()
    });
    assert_eq!(anonymous.handler().opens, 0);
    assert!(!anonymous.handler().errors.is_empty());

    // With one (the leaf `client_id` made serves as a client certificate).
    let tls = pki
        .client_tls()
        .client_cert_pem(client_id.cert_pem.as_bytes(), client_id.key_pem.as_bytes())
        .unwrap();
    let mut known = Client::with_config(
        Recorder::default(),
        ClientConfig {
            tls,
            ..ClientConfig::default()
        },
    );
    known.init(&url).unwrap();
    pump_both(&mut server, &mut [&mut known], "open", |_, c| c[0].handler().opens == 1);
    assert!(known.send("it is me").is_queued());
    pump_both(&mut server, &mut [&mut known], "echo", |_, c| {
        c[0].handler().log.last().map(String::as_str) == Some("text:it is me")
    });
}

#[test]
fn a_backlog_behind_a_slow_tls_reader_drains_once_it_reads() {
    let pki = Pki::new("hvws test CA");
    let mut server = tls_server(&pki, ServerConfig::default());
    let url = format!("wss://127.0.0.1:{}/x", server.tls_addr().unwrap().port());
    let mut c = client_for(&pki);
    c.init(&url).unwrap();
    pump_both(&mut server, &mut [&mut c], "open", |s, _| s.channel_count() == 1);
    let ch = server.handler().opened[0].0;
    // 3 MiB queued while the client reads nothing: the socket, then
    // rustls's buffer, fill, and the rest waits in the connection.
    let chunk = vec![1u8; 64 << 10];
    for _ in 0..48 {
        assert!(server.with_context(|_, ctx| ctx.send_binary(ch, &chunk)).is_queued());
        server.tick().unwrap();
    }
    // Now it reads: every writable edge must move the backlog on, with no
    // other traffic to wake the server.
    pump_both(&mut server, &mut [&mut c], "the whole backlog", |_, c| {
        c[0].handler().log.iter().filter(|l| *l == "binary:65536").count() == 48
    });
}
