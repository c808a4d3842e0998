//! Connecting an exchange: resolving its host (or its proxy's), the next
//! address after a refusal, a proxy's `CONNECT` tunnel, then TLS.

use std::io;
use std::net::ToSocketAddrs;
use std::time::Instant;

use super::url::Origin;
use super::wire::hop_headers;
use super::{Conn, ConnState, HttpClient, HvHttpClient, TunnelSetup};
use crate::driver::{ClientReady, FlushResult, ReadResult};
use crate::error::HttpClientError;
use crate::proto::http_client::{Exchange, ExchangeTimers, RequestHead};
use crate::proto::proxy::{Tunnel, TunnelState};

impl<H: HvHttpClient> HttpClient<H> {
    /// Resolves the request's host (or its proxy's) and starts connecting
    /// to it.
    pub(super) fn open(&mut self, key: usize, origin: Origin, now: Instant) {
        let proxy = match self
            .config
            .proxy
            .as_ref()
            .map(|p| p.resolve(&origin.host, origin.secure))
        {
            Some(Ok(p)) => p,
            Some(Err(e)) => return self.finish_err(key, crate::error::proxy_error(e)),
            None => None,
        };
        let (host, port) = match &proxy {
            Some(p) => (p.host.as_str(), p.port),
            None => (origin.host.as_str(), origin.port),
        };
        let dns = |source| HttpClientError::Dns {
            host: host.to_owned(),
            source,
        };
        let addrs: Vec<_> = match (host, port).to_socket_addrs() {
            Ok(addrs) => addrs.collect(),
            Err(source) => return self.finish_err(key, dns(source)),
        };
        if addrs.is_empty() {
            let error = dns(io::Error::new(io::ErrorKind::NotFound, "no address"));
            return self.finish_err(key, error);
        }
        let ck = self.conns.vacant_key();
        let mut last = None;
        for (i, &addr) in addrs.iter().enumerate() {
            match self.io.connect(ck, addr) {
                Ok(()) => {
                    self.conns.insert(Conn {
                        origin,
                        state: ConnState::Connecting,
                        addrs,
                        addr: i,
                        req: None,
                        exchange: None,
                        reused: false,
                        read_owed: false,
                        proxy,
                        tunnel: None,
                    });
                    return self.start(ck, key, now);
                }
                Err(e) => last = Some(connect_error(addr, e)),
            }
        }
        self.finish_err(key, last.expect("at least one address"));
    }

    /// Puts request `key` on connection `ck` (new, or idle from the pool).
    pub(super) fn start(&mut self, ck: usize, key: usize, now: Instant) {
        let p = &mut self.reqs[key];
        let conn = &mut self.conns[ck];
        let connected = conn.state != ConnState::Connecting;
        let timers = ExchangeTimers {
            connect: (!connected).then(|| now + p.connect_timeout),
            total: p.deadline,
        };
        // Plain http through a proxy: the whole URL is the target.
        let absolute = match &conn.proxy {
            Some(_) if !conn.origin.secure => Some(p.prepared.url.to_string()),
            _ => None,
        };
        let proxy_auth = conn
            .proxy
            .as_ref()
            .and_then(|e| e.basic.as_deref())
            .filter(|_| absolute.is_some());
        let headers = hop_headers(&p.prepared, self.jar.as_ref(), proxy_auth);
        let head = RequestHead {
            method: p.prepared.method.as_str(),
            target: absolute.as_deref().unwrap_or(&p.prepared.url.target),
            host: &p.prepared.url.authority,
            headers: &headers,
            body: p.prepared.body.as_deref(),
        };
        match Exchange::new(&head, p.limits, timers, connected) {
            Ok(exchange) => {
                conn.reused = connected;
                conn.exchange = Some(exchange);
                conn.req = Some(key);
                if connected {
                    conn.state = ConnState::Busy;
                }
                p.conn = Some(ck);
            }
            Err(e) => {
                // `prepare` encoded it once already; kept for safety.
                if connected {
                    conn.state = ConnState::Idle { since: now };
                } else {
                    self.close_conn(ck);
                }
                self.finish_err(key, HttpClientError::InvalidRequest(e.to_string()));
            }
        }
    }

    pub(super) fn on_ready(&mut self, ck: usize, ready: ClientReady, now: Instant) {
        let Some(conn) = self.conns.get(ck) else { return };
        match conn.state {
            ConnState::Connecting if conn.tunnel.is_some() => self.pump_tunnel(ck),
            ConnState::Connecting if ready.readable || ready.writable => match self.io.check_connected(ck) {
                Ok(true) => self.connected(ck),
                Ok(false) => {}
                Err(e) => self.connect_failed(ck, e),
            },
            ConnState::Connecting => {}
            ConnState::Busy if ready.readable => self.read(ck, now, ready.closed),
            ConnState::Busy => {}
            ConnState::Idle { .. } if ready.readable => self.check_idle(ck),
            ConnState::Idle { .. } => {}
        }
    }

    /// TCP is up: a tunnel through the proxy for `https://`, or straight
    /// on to the transport.
    pub(super) fn connected(&mut self, ck: usize) {
        let conn = &mut self.conns[ck];
        if let (true, Some(proxy)) = (conn.origin.secure, &conn.proxy) {
            conn.tunnel = Some(Box::new(TunnelSetup {
                tunnel: Tunnel::new(),
                request: Tunnel::request(&tunnel_authority(&conn.origin), proxy.basic.as_deref()),
            }));
            return self.pump_tunnel(ck);
        }
        self.transport_ready(ck);
    }

    /// Writes the rest of the `CONNECT` and reads the proxy's answer; once
    /// the tunnel is open the connection goes on as if TCP had just
    /// connected to the server.
    pub(super) fn pump_tunnel(&mut self, ck: usize) {
        let HttpClient { conns, io, .. } = self;
        let Some(conn) = conns.get_mut(ck) else { return };
        let Some(setup) = conn.tunnel.as_mut() else { return };
        let proxy = conn.proxy.as_ref().map_or("?", |p| p.shown.as_str());
        let closed = || {
            HttpClientError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("proxy {proxy} closed the connection before answering CONNECT"),
            ))
        };
        let outcome = 'outcome: {
            if !setup.request.is_empty() {
                if let FlushResult::Failed(e) = io.write(ck, &mut setup.request) {
                    break 'outcome Err(HttpClientError::Io(e));
                }
            }
            loop {
                match io.read(ck) {
                    ReadResult::Data(n) => match setup.tunnel.handle_input(&io.buf[..n]) {
                        Ok(TunnelState::Waiting) => {}
                        Ok(TunnelState::Open) => break 'outcome Ok(true),
                        Err(source) => {
                            break 'outcome Err(HttpClientError::Proxy {
                                proxy: proxy.to_owned(),
                                source,
                            })
                        }
                    },
                    ReadResult::WouldBlock => break 'outcome Ok(false),
                    ReadResult::Eof => break 'outcome Err(closed()),
                    ReadResult::Failed(e) => break 'outcome Err(HttpClientError::Io(e)),
                }
            }
        };
        match outcome {
            Ok(false) => {}
            Ok(true) => {
                log::debug!("{proxy} opened a tunnel to {}", tunnel_authority(&conn.origin));
                conn.tunnel = None;
                self.transport_ready(ck);
            }
            Err(error) => self.fail_conn(ck, error, false),
        }
    }

    /// The byte pipe reaches the server: TLS for `https://`, then the
    /// request may go.
    pub(super) fn transport_ready(&mut self, ck: usize) {
        #[cfg(feature = "tls")]
        if self.conns[ck].origin.secure {
            let host = self.conns[ck].origin.host.clone();
            match self.tls_layer(&host) {
                Ok(layer) => self.io.start_tls(ck, layer),
                Err(e) => return self.fail_conn(ck, e, false),
            }
        }
        let conn = &mut self.conns[ck];
        conn.state = ConnState::Busy;
        if let Some(ex) = conn.exchange.as_mut() {
            ex.handle_connected();
        }
    }

    #[cfg(feature = "tls")]
    pub(super) fn tls_layer(&mut self, host: &str) -> Result<crate::proto::tls::TlsLayer, HttpClientError> {
        let config = match &self.tls {
            Some(c) => c.clone(),
            None => self.tls.insert(self.config.tls.build()?).clone(),
        };
        crate::proto::tls::TlsLayer::client(config, host, 64 << 10).map_err(|e| {
            let (kind, reason) = crate::proto::tls::describe(&e, host);
            HttpClientError::Tls {
                host: host.to_owned(),
                kind,
                reason,
            }
        })
    }

    /// The connect failed: the host's next address, or the request fails.
    pub(super) fn connect_failed(&mut self, ck: usize, e: io::Error) {
        let conn = &mut self.conns[ck];
        let mut error = connect_error(conn.addrs[conn.addr], e);
        while conn.addr + 1 < conn.addrs.len() {
            conn.addr += 1;
            let addr = conn.addrs[conn.addr];
            match self.io.connect(ck, addr) {
                Ok(()) => return,
                Err(e) => error = connect_error(addr, e),
            }
        }
        self.fail_conn(ck, error, false);
    }
}

/// `host:port` for `CONNECT`, an IPv6 address in brackets.
fn tunnel_authority(origin: &Origin) -> String {
    if origin.host.contains(':') {
        format!("[{}]:{}", origin.host, origin.port)
    } else {
        format!("{}:{}", origin.host, origin.port)
    }
}

fn connect_error(addr: std::net::SocketAddr, e: io::Error) -> HttpClientError {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        HttpClientError::Refused { addr }
    } else {
        HttpClientError::Connect { addr, source: e }
    }
}
