//! Listening sockets: made with the backlog a reconnect storm needs and,
//! where the kernel passes it on, Nagle already off for every connection
//! they accept.

use std::io;
use std::net::SocketAddr;

use mio::net::TcpListener;

/// Connections the kernel completes and queues for a listener before the
/// server accepts them: a reconnect storm's burst. std's and mio's `bind`
/// ask for 128, and past the queue the kernel drops SYNs, which clients
/// resend only after a second; Linux caps this at `net.core.somaxconn`
/// (4096 by default since 5.4).
const LISTEN_BACKLOG: i32 = 4096;

/// Whether accepted sockets inherit `TCP_NODELAY` from their listener, so
/// `accept` need not set it on each: one syscall of the six a connection
/// costs the server in a reconnect storm (accept, setsockopt, epoll_ctl,
/// read, write, close). Linux copies a listener's TCP options to the
/// connections it accepts (pinned by a test below); elsewhere each
/// accepted socket gets its own call.
pub(super) const NODELAY_INHERITED: bool = cfg!(target_os = "linux");

/// A listener with [`LISTEN_BACKLOG`], and with `reuse_port` one that
/// shares its port (`SO_REUSEPORT`: the kernel hashes each new connection
/// to one of the sockets bound to it). mio's `TcpListener` can set neither
/// before listening, so socket2 makes the socket.
pub(super) fn bind_listener(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std's and mio's listeners do: a restarted server may bind while
    // its old connections sit in TIME_WAIT.
    sock.set_reuse_address(true)?;
    if reuse_port {
        sock.set_reuse_port(true)?;
    }
    sock.set_nonblocking(true)?;
    if NODELAY_INHERITED {
        sock.set_tcp_nodelay(true)?;
    }
    sock.bind(&addr.into())?;
    sock.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(sock.into()))
}

#[cfg(test)]
mod tests {
    /// What `accept` relies on to skip a `setsockopt` per connection: a
    /// socket accepted from our listener already has Nagle off.
    #[test]
    fn accepted_sockets_have_nagle_off() {
        let listener = super::bind_listener("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let accepted = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        if !super::NODELAY_INHERITED {
            accepted.set_nodelay(true).unwrap();
        }
        assert!(accepted.nodelay().unwrap());
    }
}
