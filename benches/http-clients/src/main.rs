//! Keep-alive `GET`s, one after another on one connection, from one of three
//! HTTP clients, and the client's own CPU time per request (issue 13).
//!
//! ```sh
//! cargo build --release -p http-clients -p hvws-echo
//! taskset -c 0 target/release/hvws-echo --port 9001 &
//! taskset -c 1 target/release/http-clients --client hvws --url http://127.0.0.1:9001/hello --duration 4
//! ```
//!
//! `--client` is one of:
//! - `hvws`: `hvws::HttpClient`, `request()` then `process_event_que_timeout()`
//!   until the callback has the response (what a game loop does, without the
//!   frame in between);
//! - `hvws-blocking`: the same client's `send_blocking()`;
//! - `ureq`: a ureq 3.x `Agent` (blocking);
//! - `reqwest`: one reqwest `Client` on a tokio current-thread runtime, the
//!   whole loop in one `block_on`.
//!
//! Every answer must be `200` with the body `Hello, world!`; anything else
//! ends the run with exit status 1. `--warmup N` requests (default 1,000)
//! are made first and not counted, so the connection is open and the pool
//! warm when the window starts. The window is `--requests N` requests or
//! `--duration S` seconds (checked after each request).
//!
//! At the end one line goes to stdout:
//!
//! ```text
//! result client=hvws requests=123456 secs=4.000 req_per_s=30864 cpu_ns_per_req=21230 user_ns_per_req=3150 sys_ns_per_req=18080 sched_ns_per_req=21190 threads=1
//! ```
//!
//! `cpu_*` are the process's utime + stime over the window from
//! `/proc/self/stat` (10 ms ticks; threads that ended are included);
//! `sched_ns_per_req` is the same CPU time from the live threads'
//! `/proc/self/task/*/schedstat` (nanoseconds), a check on the ticks.

use std::error::Error;
use std::time::{Duration, Instant};

mod report;

use report::{callgrind, report};

use hvws::{ClientRequest, ClientResponse, HttpClient, HttpClientError, HvHttpClient, RequestId};

type Res<T> = Result<T, Box<dyn Error>>;

const BODY: &[u8] = b"Hello, world!";

/// When the window ends.
#[derive(Clone, Copy, Debug)]
enum Window {
    Requests(u64),
    Duration(Duration),
}

/// Ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: u64 = 100;

/// The process's CPU time so far: (utime, stime) in ns from
/// `/proc/self/stat`, and the live threads' run time in ns from schedstat.
fn cpu_now() -> Res<(u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name may hold spaces: fields are counted after its ')'.
    let rest = &stat[stat.rfind(')').ok_or("bad /proc/self/stat")? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // Field 14 (utime) and 15 (stime); `rest` starts at field 3.
    let utime: u64 = fields[11].parse()?;
    let stime: u64 = fields[12].parse()?;
    let tick_ns = 1_000_000_000 / TICKS_PER_SEC;
    let mut sched = 0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let path = task?.path().join("schedstat");
        if let Ok(s) = std::fs::read_to_string(path) {
            sched += s.split(' ').next().unwrap_or("0").parse::<u64>().unwrap_or(0);
        }
    }
    Ok((utime * tick_ns, stime * tick_ns, sched))
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

fn check(status: u16, body: &[u8]) -> Res<()> {
    if status != 200 || body != BODY {
        return Err(format!("unexpected answer: {status} {:?}", String::from_utf8_lossy(body)).into());
    }
    Ok(())
}

/// Runs `one` (one request and its check) `warmup` times, then over the
/// window, and prints the result line.
fn run(client: &str, warmup: u64, window: Window, mut one: impl FnMut() -> Res<()>) -> Res<()> {
    for _ in 0..warmup {
        one()?;
    }
    let (u0, s0, sc0) = cpu_now()?;
    let start = Instant::now();
    let mut n = 0u64;
    match window {
        Window::Requests(total) => {
            while n < total {
                one()?;
                n += 1;
            }
        }
        Window::Duration(d) => {
            while start.elapsed() < d {
                one()?;
                n += 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let (u1, s1, sc1) = cpu_now()?;
    let per = |ns: u64| ns.checked_div(n).unwrap_or(0);
    println!(
        "result client={client} requests={n} secs={secs:.3} req_per_s={:.0} cpu_ns_per_req={} user_ns_per_req={} sys_ns_per_req={} sched_ns_per_req={} threads={}",
        n as f64 / secs,
        per(u1 - u0 + s1 - s0),
        per(u1 - u0),
        per(s1 - s0),
        per(sc1 - sc0),
        threads(),
    );
    Ok(())
}

/// hvws's callbacks: keep the outcome of the one request in flight.
#[derive(Debug, Default)]
struct Sink {
    done: Option<Result<ClientResponse, HttpClientError>>,
}

impl HvHttpClient for Sink {
    fn on_response(&mut self, _id: RequestId, response: ClientResponse) {
        self.done = Some(Ok(response));
    }
    fn on_error(&mut self, _id: RequestId, error: HttpClientError) {
        self.done = Some(Err(error));
    }
}

fn hvws_pumped(url: &str, warmup: u64, window: Window) -> Res<()> {
    let mut http = HttpClient::new(Sink::default());
    run("hvws", warmup, window, || {
        http.request(ClientRequest::get(url))?;
        loop {
            http.process_event_que_timeout(Duration::from_millis(100));
            if let Some(done) = http.handler_mut().done.take() {
                let resp = done?;
                return check(resp.status(), resp.body());
            }
        }
    })?;
    if http.connections() != 1 {
        return Err(format!("{} connections open at the end, not 1", http.connections()).into());
    }
    Ok(())
}

fn hvws_blocking(url: &str, warmup: u64, window: Window) -> Res<()> {
    let mut http = HttpClient::default();
    run("hvws-blocking", warmup, window, || {
        let resp = http.send_blocking(ClientRequest::get(url))?;
        check(resp.status(), resp.body())
    })?;
    if http.connections() != 1 {
        return Err(format!("{} connections open at the end, not 1", http.connections()).into());
    }
    Ok(())
}

fn ureq(url: &str, warmup: u64, window: Window) -> Res<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
    run("ureq", warmup, window, || {
        let mut resp = agent.get(url).call()?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_vec()?;
        check(status, &body)
    })
}

fn reqwest(url: &str, warmup: u64, window: Window) -> Res<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    rt.block_on(async {
        // `run` is synchronous; the async loop is spelled out here the same
        // way, so the whole window is one `block_on`.
        let one = || async {
            let resp = client.get(url).send().await?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await?;
            check(status, &body)
        };
        for _ in 0..warmup {
            one().await?;
        }
        let (u0, s0, sc0) = cpu_now()?;
        let start = Instant::now();
        let mut n = 0u64;
        loop {
            let more = match window {
                Window::Requests(total) => n < total,
                Window::Duration(d) => start.elapsed() < d,
            };
            if !more {
                break;
            }
            one().await?;
            n += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        let (u1, s1, sc1) = cpu_now()?;
        let per = |ns: u64| ns.checked_div(n).unwrap_or(0);
        println!(
            "result client=reqwest requests={n} secs={secs:.3} req_per_s={:.0} cpu_ns_per_req={} user_ns_per_req={} sys_ns_per_req={} sched_ns_per_req={} threads={}",
            n as f64 / secs,
            per(u1 - u0 + s1 - s0),
            per(u1 - u0),
            per(s1 - s0),
            per(sc1 - sc0),
            threads(),
        );
        Ok(())
    })
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("http-clients: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Res<()> {
    let mut argv = std::env::args().skip(1);
    match argv.next().as_deref() {
        Some("report") => return report(&argv.next().ok_or("usage: http-clients report FILE.tsv")?),
        Some("callgrind") => {
            let usage = "usage: http-clients callgrind OUT_SHORT OUT_LONG REQUESTS_SHORT REQUESTS_LONG";
            let args: Vec<String> = argv.collect();
            if args.len() != 4 {
                return Err(usage.into());
            }
            return callgrind(&args[0], &args[1], args[2].parse()?, args[3].parse()?);
        }
        _ => {}
    }
    let usage = "usage: http-clients --client hvws|hvws-blocking|ureq|reqwest --url http://127.0.0.1:PORT/hello\n                    (--requests N | --duration S) [--warmup N]";
    let (mut client, mut url, mut window, mut warmup) = (None, None, None, 1000u64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value; {usage}"));
        match arg.as_str() {
            "--client" => client = Some(value()?),
            "--url" => url = Some(value()?),
            "--requests" => window = Some(Window::Requests(value()?.parse()?)),
            "--duration" => window = Some(Window::Duration(Duration::from_secs_f64(value()?.parse()?))),
            "--warmup" => warmup = value()?.parse()?,
            "-h" | "--help" => {
                println!("{usage}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; {usage}").into()),
        }
    }
    let url = url.ok_or(usage)?;
    let window = window.unwrap_or(Window::Duration(Duration::from_secs(4)));
    match client.as_deref() {
        Some("hvws") => hvws_pumped(&url, warmup, window),
        Some("hvws-blocking") => hvws_blocking(&url, warmup, window),
        Some("ureq") => ureq(&url, warmup, window),
        Some("reqwest") => reqwest(&url, warmup, window),
        _ => Err(usage.into()),
    }
}
