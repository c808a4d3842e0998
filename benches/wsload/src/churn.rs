//! churn: L lanes, each doing connect, handshake on `/echo`, one echo,
//! close handshake (our close, the server's close), then dropping the
//! socket, over and over. Under TLS each connection also makes a full TLS
//! handshake (no resumption), and the socket is dropped without a
//! `close_notify` once the server's close frame is in. One connection is done when the server's close
//! frame arrives.

use std::net::SocketAddr;
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};

use crate::hist::Hist;
use crate::sock::{Sock, Tls};
use crate::ws::{self, masked_frame, CLOSE, TEXT};
use crate::{Common, Metrics, Window};

/// The churn workload's parameters.
#[derive(Debug, Clone)]
pub struct Churn {
    /// Connections in progress at once.
    pub lanes: usize,
}

/// Payload of the one echo each connection does.
const PING: &[u8] = b"hello, churn";

#[derive(PartialEq, Eq)]
enum Step {
    Connecting,
    Handshake,
    Echo,
    Close,
}

struct Lane {
    sock: Sock,
    gen: usize,
    step: Step,
    started: u64,
    rx: Vec<u8>,
}

/// Lanes are told apart by the low bits of a token, connections of one
/// lane by the high ones, so a late event for a dropped socket is ignored.
const LANE_BITS: usize = 16;
const GEN_MASK: usize = usize::MAX >> LANE_BITS;

fn start(poll: &Poll, addr: SocketAddr, tls: &Tls, lane: usize, gen: usize) -> Result<Sock, String> {
    let mut s = Sock::connect(addr, tls).map_err(|e| format!("connect: {e}"))?;
    poll.registry()
        .register(
            &mut s.tcp,
            Token(lane | gen << LANE_BITS),
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|e| format!("register: {e}"))?;
    Ok(s)
}

/// Runs the workload and returns its metrics.
pub fn run(c: &Common, o: &Churn) -> Result<Metrics, String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let request = ws::upgrade_request("/echo", None);
    let mut echo = Vec::new();
    masked_frame(&mut echo, TEXT, PING);
    let echo_reply = 2 + PING.len();
    let mut close = Vec::new();
    masked_frame(&mut close, CLOSE, &1000u16.to_be_bytes());
    let mut win = Window::new(c);
    let mut lanes = Vec::with_capacity(o.lanes);
    for lane in 0..o.lanes {
        lanes.push(Lane {
            sock: start(&poll, c.addr, &c.tls, lane, 0)?,
            gen: 0,
            step: Step::Connecting,
            started: win.now_ns(),
            rx: Vec::with_capacity(512),
        });
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 << 10];
    let mut hist = Hist::default();
    let mut done: u64 = 0;
    loop {
        if win.tick()? {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .map_err(|e| e.to_string())?;
        let now = win.now_ns();
        let measuring = win.measuring();
        for ev in events.iter() {
            let (i, gen) = (ev.token().0 & ((1 << LANE_BITS) - 1), ev.token().0 >> LANE_BITS);
            let lane = &mut lanes[i];
            if lane.gen != gen {
                continue;
            }
            if lane.step == Step::Connecting {
                if !lane.sock.connected().map_err(|e| format!("connect: {e}"))? {
                    continue;
                }
                lane.sock.set_nodelay();
                if lane.sock.write_some(&request).map_err(|e| format!("write: {e}"))? != request.len() {
                    return Err("short write of the upgrade request".into());
                }
                lane.step = Step::Handshake;
            }
            if ev.is_writable() {
                lane.sock.flush().map_err(|e| format!("write: {e}"))?;
            }
            let rx = &mut lane.rx;
            let alive = lane
                .sock
                .read_chunks(&mut buf, |chunk| rx.extend_from_slice(chunk))
                .map_err(|e| format!("read: {e}"))?;
            loop {
                match lane.step {
                    Step::Handshake => {
                        let Some(end) = ws::head_end(&lane.rx) else { break };
                        ws::check_101(&lane.rx[..end])?;
                        lane.rx.drain(..end);
                        write_all(&mut lane.sock, &echo)?;
                        lane.step = Step::Echo;
                    }
                    Step::Echo => {
                        if lane.rx.len() < echo_reply {
                            break;
                        }
                        if lane.rx[0] != TEXT || &lane.rx[2..echo_reply] != PING {
                            return Err("the echo is not what we sent".into());
                        }
                        lane.rx.drain(..echo_reply);
                        write_all(&mut lane.sock, &close)?;
                        lane.step = Step::Close;
                    }
                    Step::Close => {
                        if lane.rx.len() < 2 || lane.rx.len() < 2 + (lane.rx[1] & 0x7f) as usize {
                            break;
                        }
                        if lane.rx[0] != CLOSE {
                            return Err("expected the server's close frame".into());
                        }
                        if measuring {
                            done += 1;
                            hist.record(now.saturating_sub(lane.started));
                        }
                        lane.gen = (lane.gen + 1) & GEN_MASK;
                        lane.rx.clear();
                        // Dropping the old socket closes it (and removes it from the poller).
                        lane.sock = start(&poll, c.addr, &c.tls, i, lane.gen)?;
                        lane.step = Step::Connecting;
                        lane.started = now;
                        break;
                    }
                    Step::Connecting => break,
                }
            }
            if !alive && lane.step != Step::Connecting {
                return Err("server closed a connection before its close frame".into());
            }
        }
    }
    let secs = win.elapsed();
    let mut m = Metrics::default();
    m.push("conns_per_s", done as f64 / secs);
    m.push("conn_p50_us", hist.quantile_us(0.5));
    m.push("conn_p99_us", hist.quantile_us(0.99));
    if let Some(cpu) = win.cpu() {
        m.push("cpu_us_per_conn", cpu * 1e6 / done.max(1) as f64);
    }
    Ok(m)
}

fn write_all(sock: &mut Sock, data: &[u8]) -> Result<(), String> {
    if sock.write_some(data).map_err(|e| format!("write: {e}"))? != data.len() {
        return Err("short write of a small frame".into());
    }
    Ok(())
}
