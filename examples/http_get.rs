//! A small curl on hvws's HTTP client:
//!
//! ```text
//! cargo run --example http_get -- URL [-X METHOD] [-H "Name: value"]... [-d BODY]
//!                                   [--no-redirect] [--timeout-ms N] [--stream]
//!                                   [--proxy http://[user:pass@]HOST:PORT] [--ca CA.pem]
//! cargo run --features tls --example http_get -- https://example.com/
//! ```
//!
//! `--proxy` sends the request through an HTTP proxy (a `CONNECT` tunnel
//! for `https://`, the whole URL to the proxy for `http://`); `--ca` trusts
//! the CA in the PEM file for `https://` (it needs the `tls` feature; built
//! without it the flag is refused: rebuild with `--features tls`).
//!
//! Prints `HTTP <status>` on the first line of stdout, then the body as it
//! arrives. With `--stream`, prints instead `chunk <n> <bytes>` as each
//! piece of the body arrives (n = 1, 2, ...) and `done <total bytes>` at
//! the end. Exits 0 for any HTTP response (404 too), and 2 with
//! `error: <cause>` on stderr when there is none (timeout, refused, DNS,
//! too many redirects, bad response, TLS) or the arguments are wrong.
//!
//! The request is pumped like a game would pump it: `process_event_que`
//! in a loop, the callbacks printing what arrived.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use hvws::{
    BodyChunk, ClientRequest, ClientResponse, HttpClient, HttpClientConfig, HttpClientError, HvHttpClient, Method,
    RequestId, ResponseHead,
};

const USAGE: &str = "usage: http_get URL [-X METHOD] [-H \"Name: value\"]... [-d BODY] [--no-redirect] \
                     [--timeout-ms N] [--stream] [--proxy http://[user:pass@]HOST:PORT] [--ca CA.pem]";

/// Prints as it arrives.
struct Printer {
    stream: bool,
    total: u64,
    /// `None` while the request runs; then whether it ended well.
    outcome: Option<Result<(), HttpClientError>>,
}

impl HvHttpClient for Printer {
    fn on_head(&mut self, _id: RequestId, head: &ResponseHead) {
        println!("HTTP {}", head.status());
        let _ = std::io::stdout().flush();
    }

    fn on_chunk(&mut self, _id: RequestId, chunk: &BodyChunk<'_>) {
        self.total += chunk.len() as u64;
        let mut out = std::io::stdout().lock();
        if self.stream {
            let _ = writeln!(out, "chunk {} {}", chunk.index(), chunk.len());
        } else {
            let _ = out.write_all(chunk.bytes());
        }
        let _ = out.flush();
    }

    fn on_response(&mut self, _id: RequestId, _response: ClientResponse) {
        if self.stream {
            println!("done {}", self.total);
        }
        self.outcome = Some(Ok(()));
    }

    fn on_error(&mut self, _id: RequestId, error: HttpClientError) {
        self.outcome = Some(Err(error));
    }
}

struct Args {
    request: ClientRequest,
    stream: bool,
    config: HttpClientConfig,
}

#[cfg(feature = "tls")]
fn trust_ca(config: &mut HttpClientConfig, ca: &str) -> Result<(), String> {
    config.tls = config
        .tls
        .clone()
        .add_ca_file(ca)
        .map_err(|e| format!("--ca {ca}: {e}"))?;
    Ok(())
}

#[cfg(not(feature = "tls"))]
fn trust_ca(_config: &mut HttpClientConfig, _ca: &str) -> Result<(), String> {
    Err("--ca: this http_get was built without TLS; rebuild with --features tls".into())
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut url = None;
    let mut method = None;
    let mut headers = Vec::new();
    let mut data = None;
    let mut follow = true;
    let mut timeout = None;
    let mut stream = false;
    let mut config = HttpClientConfig::default();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match arg.as_str() {
            "-X" | "--request" => method = Some(value("-X")?),
            "-H" | "--header" => {
                let h = value("-H")?;
                let (name, v) = h
                    .split_once(':')
                    .ok_or_else(|| format!("header {h:?} is not \"Name: value\""))?;
                headers.push((name.trim().to_owned(), v.trim().to_owned()));
            }
            "-d" | "--data" => data = Some(value("-d")?),
            "--no-redirect" => follow = false,
            "--timeout-ms" => {
                let v = value("--timeout-ms")?;
                let ms: u64 = v.parse().map_err(|_| format!("--timeout-ms {v:?} is not a number"))?;
                timeout = Some(Duration::from_millis(ms));
            }
            "--stream" => stream = true,
            "--proxy" => {
                let proxy = value("--proxy")?;
                config = config.with_proxy(&proxy).map_err(|e| format!("--proxy: {e}"))?;
            }
            "--ca" => trust_ca(&mut config, &value("--ca")?)?,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            flag if flag.starts_with('-') && flag.len() > 1 => return Err(format!("unknown option {flag}\n{USAGE}")),
            _ if url.is_none() => url = Some(arg),
            _ => return Err(format!("more than one URL\n{USAGE}")),
        }
    }
    let url = url.ok_or_else(|| USAGE.to_owned())?;
    // As curl: -d makes a POST unless -X says otherwise.
    let method = match method {
        Some(m) => Method::parse(&m.to_ascii_uppercase()),
        None if data.is_some() => Method::Post,
        None => Method::Get,
    };
    let mut request = ClientRequest::new(method, &url).allow_redirect(follow);
    let has_type = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    if let Some(body) = data {
        if !has_type {
            request = request.header("Content-Type", "application/x-www-form-urlencoded");
        }
        request = request.body(body);
    }
    if let Some(t) = timeout {
        request = request.timeout(t);
    }
    if stream {
        // Pieces are printed and dropped: no need to hold the body, and no
        // cap on a long stream.
        request = request.keep_body(false).max_response_size(u64::MAX);
    }
    Ok(Args {
        request,
        stream,
        config,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let printer = Printer {
        stream: args.stream,
        total: 0,
        outcome: None,
    };
    let mut client = HttpClient::with_config(printer, args.config);
    if let Err(e) = client.request(args.request) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    // The request's total timeout (30 s by default) ends this loop.
    while client.handler().outcome.is_none() {
        client.process_event_que_timeout(Duration::from_millis(50));
    }
    match client.handler_mut().outcome.take() {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        None => unreachable!("the loop ends with an outcome"),
    }
}
