//! Interop: hvws's client against a WebSocket server written by somebody
//! else (CI uses Python's `websockets`, `tests/interop/py_server.py`).
//!
//! ```text
//! tests/interop/.venv/bin/python tests/interop/py_server.py &    # prints ws://127.0.0.1:PORT
//! cargo run --release --example interop_client -- --url ws://127.0.0.1:PORT --peer python-websockets
//! ```
//!
//! Over wss (feature `tls`), against the same server given a certificate,
//! trusting the CA that signed it (`examples/gen_test_certs.rs` makes one):
//!
//! ```text
//! tests/interop/.venv/bin/python tests/interop/py_server.py \
//!     --tls-cert cert.pem --tls-key key.pem &                    # prints wss://127.0.0.1:PORT
//! cargo run --release --features tls --example interop_client -- \
//!     --url wss://127.0.0.1:PORT --ca ca.pem --peer python-websockets-tls
//! ```
//!
//! With permessage-deflate (feature `deflate`), against the same servers
//! compressing (`py_server.py --deflate`, `ws_server.mjs --deflate`):
//!
//! ```text
//! tests/interop/.venv/bin/python tests/interop/py_server.py --deflate &
//! cargo run --release --features deflate --example interop_client -- \
//!     --url ws://127.0.0.1:PORT --deflate --peer python-websockets-deflate
//! ```
//!
//! `--deflate` offers the client's defaults ([`hvws::DeflateConfig::client`])
//! and then requires every connection to have agreed to it; without the
//! flag none may have (a server that compresses must fall back cleanly).
//! Built without the `deflate` feature the flag is refused: rebuild with
//! `--features deflate`.
//!
//! The server must offer `/echo`, `/wire`, `/fragments`, `/big-fragments`,
//! `/close`, `/record`, `/report` and `/extensions` as `py_server.py` documents.
//! Checks the extensions agreed (as both sides saw them), text, binary,
//! 1 MiB messages, the bytes a 1 MiB message took on the wire as the
//! server counted them (compressed or not), fragments both ways (a 1 MiB message in 16 fragments
//! from the server), ping/pong both ways, subprotocol choice, and close
//! codes with reasons in both directions. Prints one line per check and
//! `NAME: N passed, M failed`; exits 1 if any failed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use hvws::{
    ClientConfig, ClientContext, ClientError, CloseInfo, HvWebSocketClient, Opcode, SendError, WebSocketClient,
};

#[derive(Default)]
struct Recorder {
    opened: bool,
    texts: Vec<String>,
    binaries: Vec<Vec<u8>>,
    pings: Vec<Vec<u8>>,
    pongs: Vec<Vec<u8>>,
    error: Option<String>,
    close: Option<(u16, String, bool)>,
}

impl HvWebSocketClient for Recorder {
    fn on_open(&mut self, _ctx: &mut ClientContext<'_>) {
        self.opened = true;
    }
    fn on_message(&mut self, _ctx: &mut ClientContext<'_>, msg: &str) {
        self.texts.push(msg.to_owned());
    }
    fn on_binary(&mut self, _ctx: &mut ClientContext<'_>, data: &[u8]) {
        self.binaries.push(data.to_vec());
    }
    fn on_ping(&mut self, _ctx: &mut ClientContext<'_>, payload: &[u8]) {
        self.pings.push(payload.to_vec());
    }
    fn on_pong(&mut self, _ctx: &mut ClientContext<'_>, payload: &[u8]) {
        self.pongs.push(payload.to_vec());
    }
    fn on_error(&mut self, error: &ClientError) {
        self.error = Some(error.to_string());
    }
    fn on_close(&mut self, close: &CloseInfo) {
        self.close = Some((close.code, close.reason.clone(), close.was_clean));
    }
}

type Client = WebSocketClient<Recorder>;

/// The server under test: its URL without a path, the settings every
/// connection starts from (what it trusts for wss://, whether it offers
/// permessage-deflate), and so whether every connection must have agreed
/// to permessage-deflate (`deflate`) or none may have.
struct Peer {
    base: String,
    config: ClientConfig,
    deflate: bool,
}

fn open(peer: &Peer, path: &str, protocols: &[&str]) -> Result<Client, String> {
    let config = ClientConfig {
        protocols: protocols.iter().map(|p| p.to_string()).collect(),
        ..peer.config.clone()
    };
    let mut c = Client::with_config(Recorder::default(), config);
    c.init(&format!("{}{path}", peer.base)).map_err(|e| e.to_string())?;
    wait(&mut c, "open", |r| r.opened)?;
    let agreed = c.extensions().is_some_and(|e| e.starts_with("permessage-deflate"));
    ensure(agreed == peer.deflate, || {
        format!(
            "{path}: extensions {:?}, expected permessage-deflate {}",
            c.extensions(),
            if peer.deflate { "agreed" } else { "declined" }
        )
    })?;
    Ok(c)
}

fn wait(c: &mut Client, what: &str, done: impl Fn(&Recorder) -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(c.handler()) {
        let r = c.handler();
        if Instant::now() > deadline || (r.close.is_some() && !done(r)) {
            return Err(format!(
                "waiting for {what}: error {:?}, close {:?}, {} texts",
                r.error,
                r.close,
                r.texts.len()
            ));
        }
        c.process_event_que_timeout(Duration::from_millis(5));
    }
    Ok(())
}

fn close(c: &mut Client) -> Result<(), String> {
    c.close();
    wait(c, "the close", |r| r.close.is_some())
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn e(e: SendError) -> String {
    e.to_string()
}

/// What was agreed, as this client and the server (its `/extensions`
/// path, which sends the `Sec-WebSocket-Extensions` it answered, or
/// "none") saw it.
fn extensions(peer: &Peer) -> Result<String, String> {
    let mut c = open(peer, "/extensions", &[])?;
    wait(&mut c, "the server's extensions", |r| !r.texts.is_empty())?;
    let ours = c.extensions().unwrap_or("none").to_owned();
    let theirs = c.handler().texts[0].clone();
    ensure(ours == theirs, || format!("we agreed {ours:?}, the server {theirs:?}"))?;
    close(&mut c)?;
    Ok(format!(
        "client.extensions() = {ours:?}, the same as the server's answer"
    ))
}

fn text_and_binary(peer: &Peer) -> Result<String, String> {
    let mut c = open(peer, "/echo", &[])?;
    let texts = ["hello from hvws", "", "héllo wörld ✓ 🎉"];
    for t in texts {
        c.send(t);
    }
    let data: Vec<u8> = (0..=255).collect();
    c.send_binary(&data);
    wait(&mut c, "3 texts and a binary", |r| {
        r.texts.len() == 3 && r.binaries.len() == 1
    })?;
    ensure(c.handler().texts == texts, || format!("texts {:?}", c.handler().texts))?;
    ensure(c.handler().binaries[0] == data, || "binary differs".into())?;
    close(&mut c)?;
    Ok("3 texts (empty, UTF-8) and 256 bytes of binary echoed".into())
}

fn one_mib(peer: &Peer) -> Result<String, String> {
    let mut c = open(peer, "/echo", &[])?;
    let text = "0123456789abcdef".repeat((1 << 20) / 16);
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    c.send(&text);
    c.send_binary(&data);
    wait(&mut c, "two 1 MiB echoes", |r| {
        r.texts.len() == 1 && r.binaries.len() == 1
    })?;
    ensure(c.handler().texts[0] == text, || "1 MiB text differs".into())?;
    ensure(c.handler().binaries[0] == data, || "1 MiB binary differs".into())?;
    close(&mut c)?;
    Ok("1 MiB text and 1 MiB binary echoed intact".into())
}

/// What our 1 MiB of repetitive text costs on the wire, as the server
/// counted it (its `/wire` path answers each message with "LEN READ":
/// the message's length and the bytes it has read from the socket so
/// far): far less than 1 MiB when compressed, at least 1 MiB when not.
fn wire_bytes(peer: &Peer) -> Result<String, String> {
    let mut c = open(peer, "/wire", &[])?;
    let text = "0123456789abcdef".repeat((1 << 20) / 16);
    c.send(&text);
    wait(&mut c, "the server's count", |r| !r.texts.is_empty())?;
    let answer = c.handler().texts[0].clone();
    let counts: Vec<usize> = answer.split(' ').filter_map(|n| n.parse().ok()).collect();
    let &[len, read] = counts.as_slice() else {
        return Err(format!("the server answered {answer:?}"));
    };
    ensure(len == text.len(), || format!("the server got {len} bytes"))?;
    if peer.deflate {
        ensure(read < text.len() / 4, || {
            format!("compressed, yet the server read {read} bytes")
        })?;
    } else {
        ensure(read >= text.len(), || {
            format!("uncompressed, yet the server read {read} bytes")
        })?;
    }
    close(&mut c)?;
    Ok(format!(
        "1 MiB of repetitive text took {read} bytes on the wire, as the server counted"
    ))
}

fn fragments_and_pings(peer: &Peer) -> Result<String, String> {
    // Ours, fragmented, to the echo path; and our ping.
    let mut c = open(peer, "/echo", &[])?;
    c.send_frame(b"frag", Opcode::Text, false).map_err(e)?;
    c.send_frame(b"men", Opcode::Continuation, false).map_err(e)?;
    c.send_frame("ted ✓".as_bytes(), Opcode::Continuation, true)
        .map_err(e)?;
    c.ping(b"hvws-ping").map_err(e)?;
    wait(&mut c, "echo and pong", |r| r.texts.len() == 1 && !r.pongs.is_empty())?;
    ensure(c.handler().texts[0] == "fragmented ✓", || {
        format!("{:?}", c.handler().texts)
    })?;
    ensure(c.handler().pongs[0] == b"hvws-ping", || "pong payload differs".into())?;
    close(&mut c)?;
    // Theirs: a fragmented message, and a ping our client must answer.
    let mut c = open(peer, "/fragments", &[])?;
    wait(&mut c, "their fragments and pong report", |r| r.texts.len() == 2)?;
    ensure(c.handler().texts == ["Hello, hvws", "pong received"], || {
        format!("{:?}", c.handler().texts)
    })?;
    ensure(c.handler().pings == [b"server-ping".to_vec()], || {
        format!("{:?}", c.handler().pings)
    })?;
    close(&mut c)?;
    Ok("3-fragment send reassembled by the server; its 3-fragment message reassembled here; pings both ways".into())
}

/// The server's 1 MiB text message in 16 frames of 64 KiB: frame `i` is
/// the two digits of `i` over and over (compressed as one message when
/// permessage-deflate was agreed: RSV1 on the first frame only).
fn big_fragments(peer: &Peer) -> Result<String, String> {
    let mut c = open(peer, "/big-fragments", &[])?;
    wait(&mut c, "a 1 MiB message in 16 fragments", |r| !r.texts.is_empty())?;
    let expected: String = (0..16).map(|i| format!("{i:02}").repeat(1 << 15)).collect();
    let got = &c.handler().texts[0];
    ensure(*got == expected, || {
        format!("{} bytes, not the 1 MiB expected", got.len())
    })?;
    close(&mut c)?;
    Ok("1 MiB text message in 16 fragments reassembled intact".into())
}

fn subprotocol(peer: &Peer) -> Result<String, String> {
    let mut c = open(peer, "/echo", &["v0.interop", "v1.interop", "v2.interop"])?;
    let chosen = c.protocol().map(str::to_owned);
    ensure(chosen.as_deref() == Some("v2.interop"), || format!("chose {chosen:?}"))?;
    close(&mut c)?;
    Ok("offered v0, v1, v2; the server chose v2.interop".into())
}

fn closes(peer: &Peer) -> Result<String, String> {
    // The server closes with a code and reason of our choosing.
    let mut c = open(peer, "/close", &[])?;
    c.send("4002 the server closes this one");
    wait(&mut c, "their close", |r| r.close.is_some())?;
    let theirs = c.handler().close.clone();
    ensure(
        theirs == Some((4002, "the server closes this one".into(), true)),
        || format!("their close arrived as {theirs:?}"),
    )?;
    // We close with a code and reason; the server records them.
    let mut c = open(peer, "/record", &[])?;
    c.close_with(4003, "hvws leaving ✓").map_err(e)?;
    wait(&mut c, "our close", |r| r.close.is_some())?;
    let ours = c.handler().close.clone();
    ensure(ours.as_ref().is_some_and(|c| c.0 == 4003 && c.2), || {
        format!("{ours:?}")
    })?;
    let mut report = open(peer, "/report", &[])?;
    wait(&mut report, "the report", |r| !r.texts.is_empty())?;
    let seen = report.handler().texts[0].clone();
    ensure(seen == "4003 hvws leaving ✓", || format!("the server saw {seen:?}"))?;
    close(&mut report)?;
    Ok(format!(
        "theirs arrived as {theirs:?}; ours seen by the server as {seen:?}"
    ))
}

/// Trusts the CA certificates in the PEM file `ca` besides the usual roots.
#[cfg(feature = "tls")]
fn trust_ca(config: &mut ClientConfig, ca: &str) -> Result<(), String> {
    config.tls = config.tls.clone().add_ca_file(ca).map_err(|e| e.to_string())?;
    Ok(())
}

/// A build without the `tls` feature has no wss:// to trust a CA for.
#[cfg(not(feature = "tls"))]
fn trust_ca(_: &mut ClientConfig, _: &str) -> Result<(), String> {
    Err("--ca: this interop_client was built without TLS; rebuild with --features tls".into())
}

/// Offers permessage-deflate with the client's defaults.
#[cfg(feature = "deflate")]
fn offer_deflate(config: &mut ClientConfig) -> Result<(), String> {
    config.deflate = Some(hvws::DeflateConfig::client());
    Ok(())
}

/// A build without the `deflate` feature has nothing to offer.
#[cfg(not(feature = "deflate"))]
fn offer_deflate(_: &mut ClientConfig) -> Result<(), String> {
    Err("--deflate: this interop_client was built without deflate; rebuild with --features deflate".into())
}

fn main() -> ExitCode {
    let usage = "usage: interop_client --url ws[s]://HOST:PORT [--ca CA.pem] [--deflate] [--peer NAME]";
    let mut url = String::new();
    let mut peer = "peer".to_owned();
    let mut config = ClientConfig::default();
    let mut deflate = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let set = match arg.as_str() {
            "--deflate" => {
                deflate = true;
                offer_deflate(&mut config)
            }
            flag => match (flag, args.next()) {
                ("--url", Some(v)) => {
                    url = v.trim_end_matches('/').to_owned();
                    Ok(())
                }
                ("--peer", Some(v)) => {
                    peer = v;
                    Ok(())
                }
                ("--ca", Some(path)) => trust_ca(&mut config, &path),
                _ => Err(usage.to_owned()),
            },
        };
        if let Err(e) = set {
            eprintln!("interop_client: {e}");
            return ExitCode::from(2);
        }
    }
    if url.is_empty() {
        eprintln!("{usage}");
        return ExitCode::from(2);
    }
    let target = Peer {
        base: url,
        config,
        deflate,
    };
    type Check = fn(&Peer) -> Result<String, String>;
    let checks: [(&str, Check); 8] = [
        ("extensions", extensions),
        ("text_and_binary", text_and_binary),
        ("one_mib", one_mib),
        ("wire_bytes", wire_bytes),
        ("fragments_and_pings", fragments_and_pings),
        ("big_fragments", big_fragments),
        ("subprotocol", subprotocol),
        ("closes", closes),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in checks {
        match check(&target) {
            Ok(detail) => {
                passed += 1;
                println!("ok   {name}: {detail}");
            }
            Err(err) => {
                failed += 1;
                println!("FAIL {name}: {err}");
            }
        }
    }
    println!("hvws-client-vs-{peer}: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
