//! The Autobahn|Testsuite client testee, built only on hvws's public client
//! API: it asks the fuzzing server for the case count, runs each case by
//! echoing every message until the server closes, then asks for the report.
//!
//! ```text
//! cargo build --release --example autobahn_client
//! ../shared/autobahn/run-client-suite.sh \
//!   'target/release/examples/autobahn_client --url "$AUTOBAHN_URL" --agent "$AUTOBAHN_AGENT"'
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use hvws::{ClientConfig, ClientContext, CloseInfo, HvWebSocketClient, WebSocketClient};

/// Echoes text and binary messages back (in test cases), and remembers the
/// first text (the case count).
#[derive(Default)]
struct Testee {
    echo: bool,
    first_text: Option<String>,
    closed: bool,
}

impl HvWebSocketClient for Testee {
    fn on_message(&mut self, ctx: &mut ClientContext<'_>, msg: &str) {
        if self.first_text.is_none() {
            self.first_text = Some(msg.to_owned());
        }
        if self.echo {
            ctx.send(msg);
        }
    }
    fn on_binary(&mut self, ctx: &mut ClientContext<'_>, data: &[u8]) {
        if self.echo {
            ctx.send_binary(data);
        }
    }
    fn on_close(&mut self, _close: &CloseInfo) {
        self.closed = true;
    }
}

/// Connects to `url` and pumps until the server closes (or `limit` passes).
fn session(url: &str, echo: bool, deflate: bool, limit: Duration) -> Result<Testee, String> {
    #[allow(unused_mut)]
    let mut config = ClientConfig {
        max_message_size: 16 << 20,
        max_frame_size: 16 << 20,
        ..ClientConfig::default()
    };
    #[cfg(feature = "deflate")]
    if deflate {
        config.deflate = Some(hvws::DeflateConfig::client());
    }
    #[cfg(not(feature = "deflate"))]
    if deflate {
        return Err("--deflate: built without deflate; rebuild with --features deflate".into());
    }
    let testee = Testee {
        echo,
        ..Testee::default()
    };
    let mut client = WebSocketClient::with_config(testee, config);
    client.init(url).map_err(|e| format!("{url}: {e}"))?;
    let deadline = Instant::now() + limit;
    while !client.handler().closed {
        if Instant::now() > deadline {
            return Err(format!("{url}: no close within {limit:?}"));
        }
        client.process_event_que_timeout(Duration::from_millis(50));
    }
    Ok(std::mem::take(client.handler_mut()))
}

fn run(base: &str, agent: &str, deflate: bool) -> Result<(), String> {
    let count: u32 = session(&format!("{base}/getCaseCount"), false, false, Duration::from_secs(10))?
        .first_text
        .ok_or("getCaseCount sent no count")?
        .trim()
        .parse()
        .map_err(|e| format!("bad case count: {e}"))?;
    println!("running {count} cases as {agent}");
    for case in 1..=count {
        // A case that hangs is the server's verdict to give, not ours: go on.
        if let Err(e) = session(
            &format!("{base}/runCase?case={case}&agent={agent}"),
            true,
            deflate,
            Duration::from_secs(60),
        ) {
            eprintln!("case {case}: {e}");
        }
    }
    session(
        &format!("{base}/updateReports?agent={agent}"),
        false,
        false,
        Duration::from_secs(30),
    )?;
    println!("done: {count} cases");
    Ok(())
}

fn usage() -> ExitCode {
    eprintln!("usage: autobahn_client [--url ws://HOST:PORT] [--agent NAME] [--deflate]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let mut url = std::env::var("AUTOBAHN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9001".into());
    let mut agent = std::env::var("AUTOBAHN_AGENT").unwrap_or_else(|_| "hvws".into());
    let mut deflate = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), arg.starts_with("--url") || arg.starts_with("--agent")) {
            ("--deflate", _) => deflate = true,
            (_, true) => match (arg.as_str(), args.next()) {
                ("--url", Some(v)) => url = v,
                ("--agent", Some(v)) => agent = v,
                _ => return usage(),
            },
            _ => return usage(),
        }
    }
    match run(url.trim_end_matches('/'), &agent, deflate) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autobahn_client: {e}");
            ExitCode::FAILURE
        }
    }
}
