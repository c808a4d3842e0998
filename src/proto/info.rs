//! What a server-side WebSocket keeps of its opening handshake.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use super::http::{query_pairs, HttpRequest};

/// What a TLS handshake agreed on, for a connection that came over TLS
/// (https/wss): kept in its [`HttpRequest`] and [`ChannelInfo`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// The host name the client asked for (SNI), if it sent one (clients
    /// connecting to an IP address do not).
    pub sni: Option<String>,
    /// The application protocol agreed by ALPN (`http/1.1`), if any.
    pub alpn: Option<String>,
    /// The protocol version, as `TLSv1_3`.
    pub version: String,
    /// The cipher suite, as `TLS13_AES_128_GCM_SHA256`.
    pub cipher_suite: String,
}

/// What the server knows about a channel from its opening handshake: path,
/// query, headers (lower-cased names), peer address, chosen subprotocol.
///
/// Every open channel keeps one for its whole life, so it is compact: the
/// request target and all header names and values share one string, cut by
/// an array of offsets, instead of a `String` per name and per value
/// (measured: about 430 bytes less per idle connection for a five-header
/// handshake, more for a browser's; see benches/README.md). The owned pairs
/// [`ChannelInfo::headers`] returns are built on its first call.
#[derive(Clone, Debug)]
pub struct ChannelInfo {
    /// The target, then each header's name and value, back to back.
    text: Box<str>,
    /// Where each piece of `text` ends: the target, then the name and the
    /// value of each header in turn.
    ends: Box<[u32]>,
    /// Length of the target's path (before `?`).
    path_len: u32,
    peer: SocketAddr,
    protocol: Option<String>,
    tls: Option<Box<TlsInfo>>,
    /// The extensions agreed (the `Sec-WebSocket-Extensions` answer), one
    /// of the few answers kept for the whole process.
    extensions: Option<&'static str>,
    /// `headers()` as owned pairs, made when first asked for.
    owned_headers: OnceLock<Vec<(String, String)>>,
    /// Round trips timed by the server's pings.
    rtt: super::rtt::Rtt,
}

impl ChannelInfo {
    /// Keeps what a channel needs of its accepted upgrade request.
    pub fn new(request: &HttpRequest, protocol: Option<String>) -> ChannelInfo {
        let pieces = || {
            std::iter::once(request.target())
                .chain(request.headers().iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))
        };
        let mut text = String::with_capacity(pieces().map(str::len).sum());
        let mut ends = Vec::with_capacity(1 + 2 * request.headers().len());
        for piece in pieces() {
            text.push_str(piece);
            ends.push(text.len());
        }
        // Offsets fit in u32: heads are capped far below 4 GiB by
        // `max_request_head`. Were one not, its headers would be dropped
        // rather than mis-sliced.
        let ends: Box<[u32]> = match ends.iter().map(|&e| u32::try_from(e)).collect::<Result<_, _>>() {
            Ok(ends) => ends,
            Err(_) => {
                text.truncate(request.target().len().min(u32::MAX as usize));
                Box::new([text.len() as u32])
            }
        };
        let path_len = request.path().len().min(ends[0] as usize) as u32;
        ChannelInfo {
            text: text.into_boxed_str(),
            ends,
            path_len,
            peer: request.peer_addr(),
            protocol,
            tls: request.tls.clone(),
            extensions: None,
            owned_headers: OnceLock::new(),
            rtt: Default::default(),
        }
    }

    /// (name, value) of every header, borrowed from `text`.
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.ends[1..]
            .chunks_exact(2)
            .zip(self.ends.iter().step_by(2))
            .map(|(nv, &start)| {
                let (start, name_end, value_end) = (start as usize, nv[0] as usize, nv[1] as usize);
                (&self.text[start..name_end], &self.text[name_end..value_end])
            })
    }

    /// The handshake's request target: path and query (`/chat?room=1`).
    pub fn target(&self) -> &str {
        &self.text[..self.ends[0] as usize]
    }

    /// The request path (`/chat`).
    pub fn path(&self) -> &str {
        &self.text[..self.path_len as usize]
    }

    /// The raw query string without `?`, or `""`.
    pub fn query(&self) -> &str {
        self.target().get(self.path_len as usize + 1..).unwrap_or("")
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_pairs(self.query()).find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Every value of a handshake header that may appear more than once
    /// (`Sec-WebSocket-Extensions`, say), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The extensions the handshake agreed, as the server answered them
    /// (`permessage-deflate; server_no_context_takeover`, say); `None` for
    /// none.
    pub fn extensions(&self) -> Option<&str> {
        self.extensions
    }

    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) fn set_extensions(&mut self, value: &'static str) {
        self.extensions = Some(value);
    }

    /// A handshake header by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.pairs().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// Every handshake header as (lower-cased name, value).
    pub fn headers(&self) -> &[(String, String)] {
        self.owned_headers
            .get_or_init(|| self.pairs().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The subprotocol chosen in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The round-trip time the server's latest answered ping measured, if
    /// any (pings go out when `ping_interval` is set, to a peer silent for
    /// that long). It runs from the tick that queued the ping to the tick
    /// that read its pong, so it includes the time the pong waited for a
    /// tick: up to one frame of the loop, on top of the network and the
    /// peer. Only a pong with the ping's own payload counts (not an
    /// unsolicited one, nor one answering an application's ping).
    ///
    /// ```
    /// # use hvws::{Channel, Context};
    /// fn lag_report(ctx: &Context<'_>, ch: Channel) -> String {
    ///     match ctx.info(ch).and_then(|i| i.rtt()) {
    ///         Some(rtt) => format!("{} ms", rtt.as_millis()),
    ///         None => "not measured yet".into(),
    ///     }
    /// }
    /// ```
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt.latest()
    }

    /// The round-trip time smoothed over the pongs as TCP's SRTT does
    /// (RFC 6298: each pong moves it an eighth of the way to its
    /// [`ChannelInfo::rtt`]; the first sets it): steadier than the latest
    /// for display or for a lag allowance.
    ///
    /// ```
    /// # use hvws::ChannelInfo;
    /// fn lag_allowance(info: &ChannelInfo) -> std::time::Duration {
    ///     info.smoothed_rtt().unwrap_or(std::time::Duration::from_millis(100)) / 2
    /// }
    /// ```
    pub fn smoothed_rtt(&self) -> Option<Duration> {
        self.rtt.smoothed()
    }

    /// A pong answered the server's ping after `rtt`.
    pub(crate) fn record_rtt(&mut self, rtt: Duration) {
        self.rtt.sample(rtt);
    }

    /// What TLS agreed on (SNI, ALPN, version), for a `wss://` channel;
    /// `None` for a plain one.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http1::parse_head;

    fn info(raw: &str, protocol: Option<&str>) -> ChannelInfo {
        let head = parse_head(raw.as_bytes(), "10.1.2.3:4567".parse().unwrap(), 8192, 0)
            .unwrap()
            .unwrap();
        ChannelInfo::new(&head.request, protocol.map(str::to_owned))
    }

    #[test]
    fn keeps_everything_the_request_had() {
        let i = info(
            "GET /chat?room=a%20b&x HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Twice: 1\r\nX-Twice: 2\r\n\r\n",
            Some("chat"),
        );
        assert_eq!(i.target(), "/chat?room=a%20b&x");
        assert_eq!(i.path(), "/chat");
        assert_eq!(i.query(), "room=a%20b&x");
        assert_eq!(i.query_param("room").as_deref(), Some("a b"));
        assert_eq!(i.query_param("x").as_deref(), Some(""));
        assert_eq!(i.header("HOST"), Some("h"));
        assert_eq!(i.header("x-empty"), Some(""));
        assert_eq!(i.header("x-twice"), Some("1"));
        assert_eq!(i.header("nope"), None);
        let pairs: Vec<(&str, &str)> = i.headers().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [("host", "h"), ("x-empty", ""), ("x-twice", "1"), ("x-twice", "2")]
        );
        assert_eq!(i.peer_addr().to_string(), "10.1.2.3:4567");
        assert_eq!(i.protocol(), Some("chat"));
    }

    #[test]
    fn no_query_no_headers() {
        let i = info("GET / HTTP/1.1\r\n\r\n", None);
        assert_eq!((i.target(), i.path(), i.query()), ("/", "/", ""));
        assert!(i.headers().is_empty());
        assert_eq!(i.header("host"), None);
        assert_eq!(i.protocol(), None);
    }
}
