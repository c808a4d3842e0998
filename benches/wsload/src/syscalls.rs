//! The server's syscalls over the measuring window (`--syscalls`): `perf
//! stat` counting the syscall-entry tracepoints of the server process
//! (every thread), started when the window opens and lasting as long.
//!
//! Needs `perf` and permission to trace the server (root, or
//! `perf_event_paranoid` <= 1). Tracing makes every syscall of the server
//! take the kernel's slow path, so a run with `--syscalls` reports no CPU
//! time: count syscalls and measure CPU in separate runs.
//!
//! hvws (through mio and std) writes to a socket with `send` (the
//! `sendto` syscall), reads with `recv` (`recvfrom`) and makes one
//! `epoll_wait` per tick, so: writes = `sendto` + `sendmsg` + `write` +
//! `writev`, ticks = `epoll_wait` + `epoll_pwait`. (`/proc/PID/io`'s
//! `syscw` would be cheaper, but it counts only `write`/`writev`-style
//! calls, not `sendto`: 0 for this server.)

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The tracepoints counted, and which total each adds to.
const EVENTS: [(&str, Kind); 8] = [
    ("sendto", Kind::Write),
    ("sendmsg", Kind::Write),
    ("write", Kind::Write),
    ("writev", Kind::Write),
    ("recvfrom", Kind::Read),
    ("read", Kind::Read),
    ("epoll_wait", Kind::Poll),
    ("epoll_pwait", Kind::Poll),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Write,
    Read,
    Poll,
}

/// Syscalls the server made in the window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// `sendto`, `sendmsg`, `write`, `writev`.
    pub writes: u64,
    /// `recvfrom`, `read`.
    pub reads: u64,
    /// `epoll_wait`, `epoll_pwait`: one per tick of an hvws server.
    pub polls: u64,
}

/// A running `perf stat`.
#[derive(Debug)]
pub struct Counter {
    child: Child,
    file: PathBuf,
}

impl Counter {
    /// Starts counting `pid`'s syscalls for `window`.
    pub fn start(pid: u32, window: Duration) -> Result<Counter, String> {
        let file = std::env::temp_dir().join(format!("wsload-syscalls-{}.csv", std::process::id()));
        let events: Vec<String> = EVENTS.iter().map(|(e, _)| format!("syscalls:sys_enter_{e}")).collect();
        let child = Command::new("perf")
            .args(["stat", "-x", ",", "-o"])
            .arg(&file)
            .arg("-e")
            .arg(events.join(","))
            .args(["-p", &pid.to_string(), "--", "sleep"])
            .arg(format!("{}", window.as_secs_f64()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("--syscalls: perf: {e}"))?;
        Ok(Counter { child, file })
    }

    /// Waits for the count to end and reads it.
    pub fn finish(mut self) -> Result<Counts, String> {
        let status = self.child.wait().map_err(|e| format!("perf: {e}"))?;
        let text = std::fs::read_to_string(&self.file).map_err(|e| format!("perf output: {e}"))?;
        let _ = std::fs::remove_file(&self.file);
        if !status.success() {
            return Err(format!("perf stat failed ({status}): {text}"));
        }
        parse(&text)
    }
}

/// Reads `perf stat -x ,` output: `VALUE,UNIT,EVENT,...` per event.
fn parse(text: &str) -> Result<Counts, String> {
    let mut c = Counts::default();
    let mut seen = 0;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(value), Some(event)) = (f.first(), f.get(2)) else {
            continue;
        };
        let Some(name) = event.strip_prefix("syscalls:sys_enter_") else {
            continue;
        };
        let Some(&(_, kind)) = EVENTS.iter().find(|(e, _)| *e == name) else {
            continue;
        };
        let Ok(n) = value.parse::<u64>() else {
            return Err(format!("perf could not count {event}: {line}"));
        };
        seen += 1;
        match kind {
            Kind::Write => c.writes += n,
            Kind::Read => c.reads += n,
            Kind::Poll => c.polls += n,
        }
    }
    if seen == 0 {
        return Err(format!("no syscall counts in perf's output: {text}"));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_perf_csv() {
        let text = "# started on Mon\n\n1200,,syscalls:sys_enter_sendto,4000000000,100.00,,\n\
                    3,,syscalls:sys_enter_write,4000000000,100.00,,\n\
                    500,,syscalls:sys_enter_recvfrom,4000000000,100.00,,\n\
                    40,,syscalls:sys_enter_epoll_wait,4000000000,100.00,,\n";
        let c = parse(text).unwrap();
        assert_eq!((c.writes, c.reads, c.polls), (1203, 500, 40));
        assert!(parse("<not supported>,,syscalls:sys_enter_sendto,0,0,,\n").is_err());
    }
}
