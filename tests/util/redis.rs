//! A redis-server for the Redis tests: the URL `tests/redis/run.sh` gives
//! (`HVWS_REDIS_URL`), or one of a test's own that it can kill and start
//! again on the same port.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a redis-server may take to listen.
const DEADLINE: Duration = Duration::from_secs(10);

/// The Redis to use, or `None` (after saying so) to skip; a failure
/// instead when `HVWS_REDIS_REQUIRED=1` (as `tests/redis/run.sh` sets).
pub fn redis_url(test: &str) -> Option<String> {
    match std::env::var("HVWS_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("HVWS_REDIS_REQUIRED").as_deref() != Ok("1"),
                "HVWS_REDIS_REQUIRED=1 but HVWS_REDIS_URL is not set"
            );
            eprintln!("{test}: skipped, HVWS_REDIS_URL is not set (bash tests/redis/run.sh sets it)");
            None
        }
    }
}

/// A redis-server of the test's own, killed by its handle when dropped.
pub struct OwnRedis {
    child: Option<Child>,
    pub port: u16,
}

impl OwnRedis {
    pub fn start(port: u16) -> OwnRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server in PATH (tests/redis/run.sh installs it)");
        let deadline = Instant::now() + DEADLINE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        OwnRedis {
            child: Some(child),
            port,
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
