//! What lies between the client's TCP connect and its WebSocket handshake:
//! an HTTP proxy's `CONNECT` tunnel, if one is configured, then TLS for
//! `wss://`. Both happen inside `process_event_que`, without blocking; the
//! connection core sees a connected byte pipe once they are set up (TLS's
//! own handshake runs under the WebSocket handshake: rustls holds the
//! upgrade request until it is done).

use std::io;

use super::proxy::Endpoint;
use super::url::Target;
use crate::config::ClientConfig;
use crate::driver::{ClientIo, FlushResult, ReadResult};
use crate::error::ClientError;
use crate::proto::proxy::{Tunnel, TunnelState};

/// Where setting up the transport is.
#[derive(Debug)]
pub(super) enum Step {
    /// Waiting for the proxy.
    Waiting,
    /// The pipe to the server is ready: the WebSocket handshake may start.
    Ready,
    Failed(ClientError),
}

/// A `CONNECT` in progress.
#[derive(Debug)]
struct Pending {
    tunnel: Tunnel,
    /// What is left to write of the request.
    request: Vec<u8>,
    proxy: String,
}

#[derive(Debug, Default)]
pub(super) struct Transport {
    /// Built on the first `wss://` connect and kept for reconnects.
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// The proxy to go through for the current attempt.
    proxy: Option<Endpoint>,
    pending: Option<Pending>,
}

impl Transport {
    /// Plans an attempt to reach `target`: returns the host and port to
    /// connect TCP to (the proxy's, if one applies).
    pub fn plan(&mut self, config: &ClientConfig, target: &Target) -> Result<(String, u16), ClientError> {
        self.pending = None;
        self.proxy = match &config.proxy {
            Some(p) => p.resolve(&target.host, target.secure)?,
            None => None,
        };
        Ok(match &self.proxy {
            Some(p) => {
                log::debug!("connecting to {}:{} through {}", target.host, target.port, p.shown);
                (p.host.clone(), p.port)
            }
            None => (target.host.clone(), target.port),
        })
    }

    /// Whether a `CONNECT` is in progress.
    pub fn is_tunneling(&self) -> bool {
        self.pending.is_some()
    }

    /// TCP is connected: ask the proxy for the tunnel, or start TLS.
    pub fn connected(&mut self, io: &mut ClientIo, config: &ClientConfig, target: &Target) -> Step {
        match &self.proxy {
            Some(p) => {
                // The tunnel goes to the target's host and port, whatever
                // the URL's authority looked like.
                let host = if target.host.contains(':') {
                    format!("[{}]", target.host)
                } else {
                    target.host.clone()
                };
                self.pending = Some(Pending {
                    tunnel: Tunnel::new(),
                    request: Tunnel::request(&format!("{host}:{}", target.port), p.basic.as_deref()),
                    proxy: p.shown.clone(),
                });
                self.pump(io, config, target)
            }
            None => self.start(io, config, target),
        }
    }

    /// Writes the rest of the `CONNECT` and reads the proxy's answer.
    pub fn pump(&mut self, io: &mut ClientIo, config: &ClientConfig, target: &Target) -> Step {
        let Some(p) = self.pending.as_mut() else {
            return Step::Waiting;
        };
        let proxy_error = |proxy: &str, source| ClientError::Proxy {
            proxy: proxy.to_owned(),
            source,
        };
        if !p.request.is_empty() {
            if let FlushResult::Failed(e) = io.write(&mut p.request) {
                return Step::Failed(ClientError::Io(e));
            }
        }
        loop {
            match io.read() {
                ReadResult::Data(n) => match p.tunnel.handle_input(&io.buf[..n]) {
                    Ok(TunnelState::Waiting) => {}
                    Ok(TunnelState::Open) => {
                        log::debug!("{} opened a tunnel to {}:{}", p.proxy, target.host, target.port);
                        self.pending = None;
                        return self.start(io, config, target);
                    }
                    Err(e) => return Step::Failed(proxy_error(&p.proxy, e)),
                },
                ReadResult::WouldBlock => return Step::Waiting,
                ReadResult::Eof => {
                    return Step::Failed(ClientError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("proxy {} closed the connection before answering CONNECT", p.proxy),
                    )))
                }
                ReadResult::Failed(e) => return Step::Failed(ClientError::Io(e)),
            }
        }
    }

    /// The pipe reaches the server: start TLS for `wss://`.
    fn start(&mut self, io: &mut ClientIo, config: &ClientConfig, target: &Target) -> Step {
        if !target.secure {
            return Step::Ready;
        }
        #[cfg(feature = "tls")]
        {
            let tls = match &self.tls {
                Some(tls) => tls.clone(),
                None => match config.tls.build() {
                    Ok(tls) => self.tls.insert(tls).clone(),
                    Err(e) => return Step::Failed(e.into()),
                },
            };
            // rustls holds at most this much unsent: the rest waits in the
            // connection's queue, where the write cap sees it.
            let limit = config.max_write_buffer.clamp(16 << 10, 64 << 10);
            match crate::proto::tls::TlsLayer::client(tls, &target.host, limit) {
                Ok(layer) => io.start_tls(layer),
                Err(e) => {
                    let (kind, reason) = crate::proto::tls::describe(&e, &target.host);
                    return Step::Failed(ClientError::Tls {
                        host: target.host.clone(),
                        kind,
                        reason,
                    });
                }
            }
            Step::Ready
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = (io, config);
            // parse_url refuses wss:// without the feature.
            Step::Failed(ClientError::UnsupportedScheme("wss".into()))
        }
    }
}

/// A socket error as the application should see it: a TLS failure (an
/// untrusted certificate, say) in words, anything else as I/O.
pub(super) fn io_error(e: io::Error, host: &str) -> ClientError {
    #[cfg(feature = "tls")]
    if let Some(tls) = crate::proto::tls::tls_error(&e) {
        let (kind, reason) = crate::proto::tls::describe(tls, host);
        return ClientError::Tls {
            host: host.to_owned(),
            kind,
            reason,
        };
    }
    let _ = host;
    ClientError::Io(e)
}
