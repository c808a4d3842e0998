//! The HV-06 tutorial's clients, alice and bob, against `chat_server`.
//!
//! ```text
//! cargo run --release --example chat_server -- --port 8080 &
//! cargo run --release --example chat_client -- --url ws://127.0.0.1:8080/chat
//! ```
//!
//! Over wss, in a build with the `tls` feature, against a `chat_server`
//! started with `--tls-cert`/`--tls-key`: `--ca` adds the CA that signed
//! the server's certificate to the ones trusted (`examples/gen_test_certs.rs`
//! makes a test CA), and `--proxy` goes through an HTTP proxy's `CONNECT`
//! tunnel, with Basic credentials if the URL has them:
//!
//! ```text
//! cargo run --release --features tls --example chat_client -- \
//!     --url wss://127.0.0.1:8443/chat --ca /tmp/hvws-certs/ca.pem \
//!     [--proxy http://[user:pass@]127.0.0.1:8888]
//! ```
//!
//! `--deflate` (feature `deflate`) offers permessage-deflate with the
//! client's defaults ([`hvws::DeflateConfig::client`]); each client prints
//! what the server agreed to (`[alice] extensions: ...`, `none` when it
//! declined). Built without the feature the flag is refused: rebuild with
//! `--features deflate`.
//!
//! ```text
//! cargo run --release --features deflate --example chat_server -- --port 8080 --deflate &
//! cargo run --release --features deflate --example chat_client -- --url ws://127.0.0.1:8080/chat --deflate
//! ```
//!
//! Prints what each client received; exits 0 when every expected message
//! arrived, 1 otherwise, with the reason on stderr: what is missing, or the
//! error that ended a connection (a certificate that is not trusted, a
//! proxy's 407).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use hvws::{ClientConfig, ClientContext, ClientError, CloseInfo, HvWebSocketClient, Proxy, WebSocketClient};

struct ChatClient {
    name: &'static str,
    received: Vec<String>,
    /// The first error reported, which ends the conversation.
    error: Option<String>,
}

impl ChatClient {
    fn new(name: &'static str) -> ChatClient {
        ChatClient {
            name,
            received: Vec::new(),
            error: None,
        }
    }
}

impl HvWebSocketClient for ChatClient {
    fn on_open(&mut self, _ctx: &mut ClientContext<'_>) {
        println!("[{}] connected", self.name);
    }
    fn on_message(&mut self, _ctx: &mut ClientContext<'_>, msg: &str) {
        println!("[{}] received: {msg}", self.name);
        self.received.push(msg.to_owned());
    }
    fn on_error(&mut self, error: &ClientError) {
        eprintln!("[{}] error: {error}", self.name);
        self.error.get_or_insert_with(|| error.to_string());
    }
    fn on_close(&mut self, close: &CloseInfo) {
        println!(
            "[{}] disconnected ({} {:?}, clean: {})",
            self.name, close.code, close.reason, close.was_clean
        );
    }
}

type Client = WebSocketClient<ChatClient>;

/// Pumps both clients until `done` holds, five seconds pass, or a client
/// reports an error (nothing more will arrive, so waiting on is pointless).
fn wait_for(
    alice: &mut Client,
    bob: &mut Client,
    what: &str,
    done: impl Fn(&Client, &Client) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(alice, bob) {
        for c in [&*alice, &*bob] {
            if let Some(e) = &c.handler().error {
                return Err(format!("{} failed while waiting for {what}: {e}", c.handler().name));
            }
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        alice.process_event_que_timeout(Duration::from_millis(5));
        bob.process_event_que_timeout(Duration::from_millis(5));
    }
    Ok(())
}

/// The nickname in a `welcome user_K` message.
fn nickname(c: &Client) -> Option<String> {
    c.handler()
        .received
        .first()?
        .strip_prefix("welcome ")
        .map(str::to_owned)
}

/// Whether `expected` occurs in `received` in order (other clients of the
/// same server may add messages in between).
fn missing(received: &[String], expected: &[String]) -> Vec<String> {
    let mut it = received.iter();
    expected.iter().filter(|e| !it.any(|r| r == *e)).cloned().collect()
}

/// Prints what the server agreed to for `c`.
fn print_extensions(c: &Client) {
    println!(
        "[{}] extensions: {}",
        c.handler().name,
        c.extensions().unwrap_or("none")
    );
}

fn run(url: &str, config: ClientConfig) -> Result<(), String> {
    let mut alice = Client::with_config(ChatClient::new("alice"), config.clone());
    let mut bob = Client::with_config(ChatClient::new("bob"), config);
    alice.init(url).map_err(|e| e.to_string())?;
    wait_for(&mut alice, &mut bob, "alice's welcome", |a, _| nickname(a).is_some())?;
    print_extensions(&alice);
    alice.send("hello server!");
    wait_for(&mut alice, &mut bob, "alice's echo", |a, _| {
        a.handler().received.len() >= 2
    })?;

    bob.init(url).map_err(|e| e.to_string())?;
    wait_for(&mut alice, &mut bob, "bob's welcome", |_, b| nickname(b).is_some())?;
    print_extensions(&bob);
    let (a, b) = (nickname(&alice).unwrap_or_default(), nickname(&bob).unwrap_or_default());
    wait_for(&mut alice, &mut bob, "bob's join", |al, _| {
        al.handler().received.contains(&format!("{b} joined"))
    })?;
    bob.send("hi everyone!");
    let broadcast = format!("{b}: hi everyone!");
    wait_for(&mut alice, &mut bob, "bob's echo and broadcast", |al, bo| {
        bo.handler().received.iter().any(|m| m == "echo: hi everyone!") && al.handler().received.contains(&broadcast)
    })?;

    alice.close();
    let left = format!("{a} left");
    wait_for(&mut alice, &mut bob, "alice's close and bob's notice", |al, bo| {
        !al.is_connected() && bo.handler().received.contains(&left)
    })?;
    bob.close();
    wait_for(&mut alice, &mut bob, "bob's close", |_, bo| !bo.is_connected())?;

    let expect_alice = [
        format!("welcome {a}"),
        "echo: hello server!".into(),
        format!("{b} joined"),
        broadcast,
    ];
    let expect_bob = [format!("welcome {b}"), "echo: hi everyone!".into(), left];
    let mut lost = missing(&alice.handler().received, &expect_alice);
    lost.extend(missing(&bob.handler().received, &expect_bob));
    if lost.is_empty() {
        Ok(())
    } else {
        Err(format!("missing messages: {lost:?}"))
    }
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
    Err("--ca: this chat_client was built without TLS; rebuild with --features tls".into())
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
    Err("--deflate: this chat_client was built without deflate; rebuild with --features deflate".into())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let usage = "usage: chat_client [--url ws[s]://HOST:PORT/chat] [--ca CA.pem] \
                 [--proxy http://[user:pass@]HOST:PORT] [--deflate]";
    let mut url = "ws://127.0.0.1:8080/chat".to_owned();
    let mut config = ClientConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let set = match arg.as_str() {
            "--deflate" => offer_deflate(&mut config),
            flag => match (flag, args.next()) {
                ("--url", Some(v)) => {
                    url = v;
                    Ok(())
                }
                ("--ca", Some(path)) => trust_ca(&mut config, &path),
                ("--proxy", Some(proxy)) => match Proxy::http(&proxy) {
                    Ok(proxy) => {
                        config.proxy = Some(proxy);
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                },
                _ => Err(usage.to_owned()),
            },
        };
        if let Err(e) = set {
            eprintln!("chat_client: {e}");
            return ExitCode::from(2);
        }
    }
    match run(&url, config) {
        Ok(()) => {
            println!("all expected messages arrived");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chat_client failed: {e}");
            ExitCode::FAILURE
        }
    }
}
