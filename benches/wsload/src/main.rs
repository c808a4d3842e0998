//! wsload: a single-threaded WebSocket load generator on raw mio sockets,
//! for any server that speaks the `echo_server` protocol (`/echo` echoes
//! every message, `/broadcast` sends every message to every `/broadcast`
//! connection). Frames are pre-encoded and masked, many go out per `write`,
//! and replies are parsed no further than needed to count and time them.
//!
//! ```text
//! wsload echo      --addr 127.0.0.1:9001 --pid PID --conns 100 --inflight 16 --size 32 [--binary]
//! wsload broadcast --addr 127.0.0.1:9001 --pid PID --receivers 1000 --senders 1 --size 32 --window 16
//! wsload topics    --addr 127.0.0.1:9001 --pid PID --topics 1000 --receivers 10000 --senders 0 --size 32 --window 256 [--broadcast] [--syscalls]
//! wsload game      --addr 127.0.0.1:9001 --pid PID --clients 1000 --rate 20 --snapshot 1024 [--input 64] [--flood]
//! wsload idle      --addr 127.0.0.1:9001 --pid PID --conns 10000
//! wsload echo      ... --conns 100 --inflight 16 --json [--offer | --deflate]
//! wsload broadcast ... --receivers 1000 --senders 1 --window 16 --json [--offer | --deflate]
//! wsload idle      ... --conns 5000 [--offer | --deflate] [--active] [--browser-headers]
//! wsload churn     --addr 127.0.0.1:9001 --pid PID --lanes 16
//! wsload http-hello  --addr 127.0.0.1:9001 --pid PID --conns 50 --depth 16
//! wsload http-static --addr 127.0.0.1:9001 --pid PID --conns 4 --file DIR/1mib.bin
//! wsload report    results.tsv [--a hvws] [--b tokio-tungstenite] [--only TEXT] [--except TEXT] [--target "WORKLOAD METRIC <= 0.65"]...
//! wsload matrix    results.tsv --servers A,B,C [--ratio "WORKLOAD METRIC A / B <= 1.5"]...
//! wsload certs     --dir DIR      (writes DIR/ca.pem, cert.pem, key.pem for a wss server)
//! ```
//!
//! `--json` sends ~1.2 KB game-state snapshots (JSON text, 64 ticks in turn)
//! instead of fixed S-byte messages, and checks every reply byte for byte;
//! `--deflate` offers permessage-deflate (as browsers do), fails unless the
//! server accepts it, and compresses what it sends (see `json.rs`);
//! `--offer` makes the same offer but expects the server to decline it
//! (compression off, measured with the same handshake).
//!
//! `topics` is broadcast over topics (see `topics.rs`): R receivers spread
//! over T topics on `/pub?topic=tK` (hvws-echo), each message published to
//! the sender's topic; `--broadcast` runs the same load on `/broadcast`.
//!
//! `--syscalls` counts the server's syscalls over the measuring window
//! with `perf stat` (see `syscalls.rs`) instead of its CPU time: `topics`
//! then reports writes per delivery and per tick.
//!
//! `game` is the game-loop benchmark (see `game.rs`): C clients sending
//! small inputs R times a second to a server that sends each of them one
//! snapshot per frame; server CPU %, snapshots per second per client,
//! input-to-next-snapshot latency, the server's frame tick times.
//!
//! `http-hello` and `http-static` are HTTP/1.1 workloads (see `http.rs`):
//! `GET /hello` pipelined D deep on C keep-alive connections, and
//! downloads of `/static/<name of --file>` (whose bytes the responses must
//! match) on C connections.
//!
//! `--tls CA.pem` makes any workload speak wss: TLS on rustls (ring
//! provider, TLS 1.3 by default, no session resumption) trusting only that
//! CA, with the server's certificate checked against the address's IP.
//!
//! Common flags: `--warmup S` (default 1) and `--duration S` (default 4)
//! seconds; `--pid` is the server's process, whose CPU time (utime + stime
//! from `/proc/PID/stat`) over the measuring window is divided by the
//! operations done in it. With `--out FILE --server NAME --round N
//! --workload NAME` each metric is appended to FILE as a tab-separated line
//! `server round workload metric value`, which `report` summarizes.

mod broadcast;
mod browser;
mod certs;
mod churn;
mod echo;
mod game;
mod hist;
mod http;
mod idle;
mod json;
mod json_bcast;
mod json_echo;
mod pmd;
mod procfs;
mod report;
mod snapshot;
mod sock;
mod storm;
mod syscalls;
mod topics;
mod ws;

use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use procfs::CpuMark;

/// Settings every workload shares.
#[derive(Debug, Clone)]
pub struct Common {
    /// The server.
    pub addr: SocketAddr,
    /// The server's process, for CPU time and RSS.
    pub pid: Option<u32>,
    /// Load before measuring starts.
    pub warmup: Duration,
    /// The measuring window.
    pub duration: Duration,
    /// TLS (`--tls CA.pem`: wss, trusting that CA) or plain TCP.
    pub tls: sock::Tls,
    /// `--syscalls`: count the server's syscalls in the window (with
    /// `perf`), and report no CPU time.
    pub syscalls: bool,
}

/// Named results of one run, in the order they were pushed.
#[derive(Debug, Default)]
pub struct Metrics(Vec<(&'static str, f64)>);

impl Metrics {
    /// Adds one result.
    pub fn push(&mut self, name: &'static str, value: f64) {
        self.0.push((name, value));
    }
}

/// The warm-up and measuring phases of a run, with the server's CPU time
/// read at both ends of the measuring window.
#[derive(Debug)]
pub struct Window {
    start: Instant,
    warmup_end: Instant,
    end: Instant,
    pid: Option<u32>,
    mark: Option<(Instant, CpuMark)>,
    result: Option<(f64, Option<f64>)>,
    /// With `--syscalls`: counting (`Err`) or counted (`Ok`).
    syscalls: Option<Result<syscalls::Counts, syscalls::Counter>>,
    count_syscalls: bool,
}

impl Window {
    /// Starts the warm-up now.
    pub fn new(c: &Common) -> Window {
        let start = Instant::now();
        Window {
            start,
            warmup_end: start + c.warmup,
            end: start + c.warmup + c.duration,
            pid: c.pid,
            mark: None,
            result: None,
            syscalls: None,
            count_syscalls: c.syscalls && c.pid.is_some(),
        }
    }

    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Moves to the next phase when its time has come; true once the
    /// measuring window is over.
    pub fn tick(&mut self) -> Result<bool, String> {
        if self.result.is_some() {
            return Ok(true);
        }
        let now = Instant::now();
        if self.mark.is_none() && now >= self.warmup_end {
            if let (true, Some(pid)) = (self.count_syscalls, self.pid) {
                self.syscalls = Some(Err(syscalls::Counter::start(pid, self.end - now)?));
            }
            self.mark = Some((Instant::now(), CpuMark::now(self.pid)?));
        }
        if let Some((t0, cpu)) = self.mark {
            if now >= self.end {
                let cpu = cpu.since(self.pid)?;
                self.result = Some((t0.elapsed().as_secs_f64(), cpu));
                if let Some(Err(counter)) = self.syscalls.take() {
                    self.syscalls = Some(Ok(counter.finish()?));
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The server's syscalls in the window (with `--syscalls`, after it
    /// closed).
    pub fn syscalls(&self) -> Option<syscalls::Counts> {
        match self.syscalls {
            Some(Ok(c)) => Some(c),
            _ => None,
        }
    }

    /// Whether the measuring window is open.
    pub fn measuring(&self) -> bool {
        self.mark.is_some() && self.result.is_none()
    }

    /// Length of the measuring window in seconds (after it closed).
    pub fn elapsed(&self) -> f64 {
        self.result.map_or(0.0, |r| r.0)
    }

    /// Server CPU seconds in the measuring window (with a PID; none with
    /// `--syscalls`, whose tracing slows every syscall).
    pub fn cpu(&self) -> Option<f64> {
        if self.count_syscalls {
            return None;
        }
        self.result.and_then(|r| r.1)
    }
}

struct Args(Vec<String>);

impl Args {
    fn take(&mut self, flag: &str) -> Option<String> {
        let i = self.0.iter().position(|a| a == flag)?;
        if i + 1 >= self.0.len() {
            return None;
        }
        self.0.remove(i);
        Some(self.0.remove(i))
    }

    fn take_all(&mut self, flag: &str) -> Vec<String> {
        std::iter::from_fn(|| self.take(flag)).collect()
    }

    fn flag(&mut self, flag: &str) -> bool {
        match self.0.iter().position(|a| a == flag) {
            Some(i) => {
                self.0.remove(i);
                true
            }
            None => false,
        }
    }

    fn num<T: std::str::FromStr>(&mut self, flag: &str, default: T) -> Result<T, String> {
        match self.take(flag) {
            Some(v) => v.parse().map_err(|_| format!("{flag}: not a number: {v}")),
            None => Ok(default),
        }
    }

    fn done(self) -> Result<(), String> {
        match self.0.first() {
            Some(a) => Err(format!("unexpected argument {a:?}")),
            None => Ok(()),
        }
    }
}

/// `--offer` (offer permessage-deflate, expect a decline) and `--deflate`
/// (offer it, require it).
fn pmd_flags(a: &mut Args) -> json::Pmd {
    let offer = a.flag("--offer");
    json::Pmd::from_flags(offer, a.flag("--deflate"))
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn run() -> Result<(), String> {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() || argv[0] == "-h" || argv[0] == "--help" {
        println!("{}", USAGE);
        return Ok(());
    }
    let cmd = argv.remove(0);
    let mut a = Args(argv);
    if cmd == "report" {
        let side_a = a.take("--a").unwrap_or_else(|| "hvws".into());
        let side_b = a.take("--b").unwrap_or_else(|| "tokio-tungstenite".into());
        let targets = a.take_all("--target");
        let only = a.take("--only");
        let except = a.take_all("--except");
        let file = a.0.pop().ok_or("report needs a results file")?;
        a.done()?;
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
        // Only the workloads whose name contains `only`, and not `except`.
        let text: String = text
            .lines()
            .filter(|l| {
                let w = l.split('\t').nth(2).unwrap_or_default();
                only.as_ref().is_none_or(|o| w.contains(o.as_str())) && except.iter().all(|x| !w.contains(x.as_str()))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        print!("{}", report::render(&text, &side_a, &side_b, &targets)?);
        return Ok(());
    }
    if cmd == "matrix" {
        let servers: Vec<String> = a
            .take("--servers")
            .ok_or("matrix needs --servers A,B,...")?
            .split(',')
            .map(String::from)
            .collect();
        let ratios = a.take_all("--ratio");
        let file = a.0.pop().ok_or("matrix needs a results file")?;
        a.done()?;
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
        print!("{}", report::render_matrix(&text, &servers, &ratios)?);
        return Ok(());
    }
    if cmd == "certs" {
        let dir = a.take("--dir").ok_or("certs needs --dir DIR")?;
        a.done()?;
        certs::make(std::path::Path::new(&dir))?;
        println!("{dir}: ca.pem, cert.pem, key.pem");
        return Ok(());
    }
    let common = Common {
        addr: a
            .take("--addr")
            .unwrap_or_else(|| "127.0.0.1:9001".into())
            .parse()
            .map_err(|e| format!("--addr: {e}"))?,
        pid: a
            .take("--pid")
            .map(|p| p.parse().map_err(|_| "--pid: not a number"))
            .transpose()?,
        warmup: secs(a.num("--warmup", 1.0)?),
        duration: secs(a.num("--duration", 4.0)?),
        tls: a
            .take("--tls")
            .map(|ca| certs::client_config(std::path::Path::new(&ca)))
            .transpose()?,
        syscalls: a.flag("--syscalls"),
    };
    let out = a.take("--out");
    let server = a.take("--server").unwrap_or_else(|| "server".into());
    let round = a.take("--round").unwrap_or_else(|| "1".into());
    let workload = a.take("--workload").unwrap_or_else(|| cmd.clone());
    let metrics = match cmd.as_str() {
        "echo" => {
            let o = echo::Echo {
                conns: a.num("--conns", 100)?,
                inflight: a.num("--inflight", 16)?,
                size: a.num("--size", 32)?,
                binary: a.flag("--binary"),
                json: a.flag("--json"),
                pmd: pmd_flags(&mut a),
            };
            a.done()?;
            if o.json {
                json_echo::run(&common, &o)?
            } else if o.pmd != json::Pmd::Off {
                return Err("--deflate and --offer go with --json".into());
            } else {
                echo::run(&common, &o)?
            }
        }
        "broadcast" => {
            let o = broadcast::Broadcast {
                receivers: a.num("--receivers", 1000)?,
                senders: a.num("--senders", 1)?,
                size: a.num("--size", 32)?,
                window: a.num("--window", 16)?,
                text: a.flag("--text"),
                json: a.flag("--json"),
                pmd: pmd_flags(&mut a),
            };
            a.done()?;
            if o.json {
                json_bcast::run(&common, &o)?
            } else if o.pmd != json::Pmd::Off {
                return Err("--deflate and --offer go with --json".into());
            } else {
                broadcast::run(&common, &o)?
            }
        }
        "topics" => {
            let o = topics::Topics {
                topics: a.num("--topics", 1)?,
                receivers: a.num("--receivers", 1000)?,
                senders: a.num("--senders", 1)?,
                size: a.num("--size", 32)?,
                window: a.num("--window", 16)?,
                text: a.flag("--text"),
                broadcast: a.flag("--broadcast"),
                seed: a.num("--seed", 1)?,
                remote: a
                    .take("--remote")
                    .map(|s| s.parse())
                    .transpose()
                    .map_err(|e| format!("--remote: {e}"))?,
            };
            a.done()?;
            topics::run(&common, &o)?
        }
        "game" => {
            let o = game::Game {
                clients: a.num("--clients", 1000)?,
                rate: a.num("--rate", 20.0)?,
                input: a.num("--input", 64)?,
                snapshot: a.num("--snapshot", 1024)?,
                flood: a.flag("--flood"),
            };
            a.done()?;
            game::run(&common, &o)?
        }
        "idle" => {
            let o = idle::Idle {
                conns: a.num("--conns", 10_000)?,
                pmd: pmd_flags(&mut a),
                active: a.flag("--active"),
                browser: a.flag("--browser-headers"),
            };
            a.done()?;
            idle::run(&common, &o)?
        }
        "storm" => {
            let o = storm::Storm {
                conns: a.num("--conns", 10_000)?,
            };
            a.done()?;
            storm::run(&common, &o)?
        }
        "churn" => {
            let o = churn::Churn {
                lanes: a.num("--lanes", 16)?,
            };
            a.done()?;
            churn::run(&common, &o)?
        }
        "http-hello" => {
            let o = http::HttpLoad {
                conns: a.num("--conns", 50)?,
                depth: a.num("--depth", 16)?,
                path: a.take("--path").unwrap_or_else(|| "/hello".into()),
                body: a.take("--body").unwrap_or_else(|| "Hello, world!".into()).into_bytes(),
                bulk: false,
                browser: a.flag("--browser-headers"),
            };
            a.done()?;
            http::run(&common, &o)?
        }
        "http-static" => {
            let file = a.take("--file").ok_or("http-static needs --file FILE")?;
            let name = std::path::Path::new(&file)
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or("--file: no file name")?
                .to_owned();
            let o = http::HttpLoad {
                conns: a.num("--conns", 4)?,
                depth: a.num("--depth", 1)?,
                path: format!("/static/{name}"),
                body: std::fs::read(&file).map_err(|e| format!("{file}: {e}"))?,
                bulk: true,
                browser: a.flag("--browser-headers"),
            };
            a.done()?;
            http::run(&common, &o)?
        }
        other => return Err(format!("unknown workload {other:?}\n{USAGE}")),
    };
    let line: Vec<String> = metrics.0.iter().map(|(k, v)| format!("{k}={}", fmt_num(*v))).collect();
    println!("{server} {workload} round {round}: {}", line.join(" "));
    if let Some(path) = out {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{path}: {e}"))?;
        for (k, v) in &metrics.0 {
            writeln!(f, "{server}\t{round}\t{workload}\t{k}\t{v}").map_err(|e| format!("{path}: {e}"))?;
        }
    }
    Ok(())
}

/// Three significant digits, without exponent noise.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

const USAGE: &str = "usage: wsload echo|broadcast|topics|game|idle|storm|churn|http-hello|http-static [--addr A] [--pid P] [--warmup S] [--duration S]
         [--tls CA.pem] [--syscalls] [--out FILE --server NAME --round N --workload NAME]
  echo:      --conns C --inflight K (--size S [--binary] | --json [--offer | --deflate])
  broadcast: --receivers C --senders N --window W (--size S [--text] | --json [--offer | --deflate])
  topics:    --topics T --receivers R --senders N --window W --size S [--text] [--broadcast] [--seed X]
             (N = 0: every receiver sends; --broadcast: /broadcast instead of /pub?topic=, T = 1)
  game:      --clients C --rate R --snapshot S [--input BYTES] [--flood]   (/game; the server sends S-byte snapshots)
  idle:      --conns C [--offer | --deflate] [--active] [--browser-headers]
  churn:     --lanes L
  storm:     --conns C   (C connects at once, each a handshake on /echo: connections per second)
  http-hello:  --conns C --depth D [--path P --body TEXT] [--browser-headers]   (GET /hello, D pipelined)
  http-static: --conns C --file FILE [--depth D] [--browser-headers]           (GET /static/<name of FILE>)
       wsload certs --dir DIR
       wsload report FILE [--a NAME] [--b NAME] [--only TEXT] [--except TEXT]... [--target \"WORKLOAD METRIC <=|>= RATIO\"]...
       wsload matrix FILE --servers A,B,... [--ratio \"WORKLOAD METRIC A / B [<=|>= R]\"]...";

fn main() {
    if let Err(e) = run() {
        eprintln!("wsload: {e}");
        std::process::exit(1);
    }
}
