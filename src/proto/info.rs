//! What a server-side WebSocket keeps of its opening handshake.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use super::compact::{Peer, Target};
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

/// Which handshake headers an open channel keeps in its [`ChannelInfo`]
/// for its whole life (`ServerConfig::keep_headers`). The handshake
/// callback (`on_ws_handshake(&HttpRequest)`) always sees every header;
/// this only decides what stays readable afterwards, through
/// [`ChannelInfo::header`].
///
/// A browser's upgrade carries 12-15 headers, about 700 bytes (a
/// `User-Agent`, `Accept-Language`, the `Sec-WebSocket-*` ones, often a
/// `Cookie`): kept, they are most of what an idle channel holds, for
/// headers nearly no application reads after the open.
///
/// ```
/// use hvws::{KeepHeaders, ServerConfig};
/// let config = ServerConfig {
///     // An application that reads its API key after the open.
///     keep_headers: KeepHeaders::only(["X-Api-Key"]),
///     ..ServerConfig::default()
/// };
/// assert!(config.keep_headers.keeps("x-api-key"));
/// assert!(!config.keep_headers.keeps("user-agent"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeepHeaders {
    /// Every header, as before this setting existed: each channel holds
    /// its whole handshake (about 700 bytes for a browser's).
    All,
    /// None: a channel keeps its target, peer address, subprotocol, TLS
    /// details and extensions only. The cheapest; for applications that
    /// read what they need in `on_ws_handshake`.
    None,
    /// Only these headers (names compared case-insensitively; every value
    /// of a repeated one is kept).
    Only(Vec<String>),
}

impl KeepHeaders {
    /// The headers kept by default: what tells who the client is, for
    /// logs, rate limits and bans after the open: `Origin`, and the
    /// client's address as a reverse proxy passes it on
    /// (`X-Forwarded-For`, `X-Real-IP`, `Forwarded`). They are short
    /// (a few dozen bytes), and the proxy ones absent without a proxy.
    pub const DEFAULT_NAMES: &'static [&'static str] = &["origin", "x-forwarded-for", "x-real-ip", "forwarded"];

    /// Keeps only `names` (lower-cased here; compared case-insensitively).
    pub fn only<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> KeepHeaders {
        KeepHeaders::Only(names.into_iter().map(|n| n.as_ref().to_ascii_lowercase()).collect())
    }

    /// Whether a header named `name` is kept.
    pub fn keeps(&self, name: &str) -> bool {
        match self {
            KeepHeaders::All => true,
            KeepHeaders::None => false,
            KeepHeaders::Only(names) => names.iter().any(|n| n.eq_ignore_ascii_case(name)),
        }
    }
}

/// The default is [`KeepHeaders::DEFAULT_NAMES`]: `Origin` and the
/// proxy's client-address headers. Not [`KeepHeaders::All`], since a
/// browser's whole handshake would then be most of every idle channel's
/// memory (measured with a browser-like handshake, 10,000 idle
/// connections: 1,367 bytes each keeping all, 523 keeping none,
/// benches/README.md); not
/// [`KeepHeaders::None`], since the client's real address behind a proxy
/// is what applications most often need after the open. An application
/// that reads another header after the open (an API key, a cookie) lists
/// it, or reads it in `on_ws_handshake`.
impl Default for KeepHeaders {
    fn default() -> Self {
        KeepHeaders::only(KeepHeaders::DEFAULT_NAMES)
    }
}

/// What the server knows about a channel from its opening handshake: path,
/// query, the headers [`KeepHeaders`] kept (lower-cased names), peer
/// address, chosen subprotocol, TLS details, agreed extensions.
///
/// Every open channel keeps one for its whole life, so it is compact: the
/// target (up to 21 bytes; a longer one is boxed), the peer address (IPv4;
/// an IPv6 one is boxed) and the round-trip times inline, and what most
/// channels lack (kept headers, a subprotocol, TLS, extensions) in one
/// box that is not allocated when there is none. The kept headers share one
/// string, cut by an array of offsets, instead of a `String` per name and
/// per value; the owned pairs [`ChannelInfo::headers`] returns are built on
/// its first call.
#[derive(Clone, Debug)]
pub struct ChannelInfo {
    /// The request target (path and query), inline when short, and where
    /// its path ends (before `?`).
    target: Target,
    /// Round trips timed by the server's pings.
    rtt: super::rtt::Rtt,
    peer: Peer,
    /// What most channels lack; `None` when they lack all of it.
    more: Option<Box<More>>,
}

/// The rarer parts of a [`ChannelInfo`].
#[derive(Clone, Debug, Default)]
struct More {
    /// Each kept header's name and value, back to back.
    text: Box<str>,
    /// Where each piece of `text` ends: the name and the value of each
    /// header in turn.
    ends: Box<[u32]>,
    protocol: Option<String>,
    tls: Option<TlsInfo>,
    /// The extensions agreed (the `Sec-WebSocket-Extensions` answer), one
    /// of the few answers kept for the whole process.
    extensions: Option<&'static str>,
    /// `headers()` as owned pairs, made when first asked for.
    owned_headers: OnceLock<Vec<(String, String)>>,
}

impl More {
    fn is_empty(&self) -> bool {
        self.ends.is_empty() && self.protocol.is_none() && self.tls.is_none() && self.extensions.is_none()
    }
}

impl ChannelInfo {
    /// Keeps what a channel needs of its accepted upgrade request, with
    /// every header ([`KeepHeaders::All`]).
    pub fn new(request: &HttpRequest, protocol: Option<String>) -> ChannelInfo {
        ChannelInfo::with_headers(request, protocol, &KeepHeaders::All)
    }

    /// Keeps what a channel needs of its accepted upgrade request, and the
    /// headers `keep` names.
    pub fn with_headers(request: &HttpRequest, protocol: Option<String>, keep: &KeepHeaders) -> ChannelInfo {
        let kept = || {
            request
                .header_pairs()
                .filter(|(k, _)| keep.keeps(k))
                .flat_map(|(k, v)| [k, v])
        };
        let mut text = String::with_capacity(kept().map(str::len).sum());
        let mut ends = Vec::with_capacity(kept().count());
        for piece in kept() {
            text.push_str(piece);
            ends.push(text.len());
        }
        // Offsets fit in u32: heads are capped far below 4 GiB by
        // `max_request_head`. Were one not, its headers would be dropped
        // rather than mis-sliced.
        let ends: Box<[u32]> = ends
            .iter()
            .map(|&e| u32::try_from(e))
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        if ends.is_empty() {
            text = String::new();
        }
        let target = request.target();
        let target = target.get(..u32::MAX as usize).unwrap_or(target);
        let more = More {
            text: text.into_boxed_str(),
            ends,
            protocol,
            tls: request.tls.as_deref().cloned(),
            ..More::default()
        };
        ChannelInfo {
            target: Target::new(target, request.path().len()),
            rtt: Default::default(),
            peer: Peer::new(request.peer_addr()),
            more: (!more.is_empty()).then(|| Box::new(more)),
        }
    }

    /// (name, value) of every kept header, borrowed from `text`.
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let (text, ends): (&str, &[u32]) = match &self.more {
            Some(m) => (&m.text, &m.ends),
            None => ("", &[]),
        };
        ends.chunks_exact(2).enumerate().map(move |(i, nv)| {
            let start = if i == 0 { 0 } else { ends[2 * i - 1] as usize };
            let (name_end, value_end) = (nv[0] as usize, nv[1] as usize);
            (&text[start..name_end], &text[name_end..value_end])
        })
    }

    /// The handshake's request target: path and query (`/chat?room=1`).
    pub fn target(&self) -> &str {
        self.target.as_str()
    }

    /// The request path (`/chat`).
    pub fn path(&self) -> &str {
        &self.target()[..self.target.path_len()]
    }

    /// The raw query string without `?`, or `""`.
    pub fn query(&self) -> &str {
        self.target().get(self.target.path_len() + 1..).unwrap_or("")
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_pairs(self.query()).find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Every value of a kept handshake header that may appear more than
    /// once, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The extensions the handshake agreed, as the server answered them
    /// (`permessage-deflate; server_no_context_takeover`, say); `None` for
    /// none.
    pub fn extensions(&self) -> Option<&str> {
        self.more.as_ref().and_then(|m| m.extensions)
    }

    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) fn set_extensions(&mut self, value: &'static str) {
        self.more.get_or_insert_with(Default::default).extensions = Some(value);
    }

    /// A kept handshake header by name (case-insensitive): `None` if the
    /// request had none, or if [`KeepHeaders`] did not keep it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.pairs().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// Every kept handshake header as (lower-cased name, value).
    pub fn headers(&self) -> &[(String, String)] {
        match &self.more {
            Some(m) => m
                .owned_headers
                .get_or_init(|| self.pairs().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()),
            None => &[],
        }
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer.get()
    }

    /// The subprotocol chosen in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.more.as_ref().and_then(|m| m.protocol.as_deref())
    }

    /// The round-trip time the server's latest answered ping measured, if
    /// any (pings go out when `ping_interval` is set, to a peer silent for
    /// that long: a client that sends every frame is never pinged, so it
    /// gets no figure here; ping it yourself with `Context::ping` and time
    /// the pong in `on_ws_pong` if a game needs one). It runs from the tick that queued the ping to the tick
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
        self.more.as_ref().and_then(|m| m.tls.as_ref())
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

    fn kept(raw: &str, keep: &KeepHeaders) -> ChannelInfo {
        let head = parse_head(raw.as_bytes(), "10.1.2.3:4567".parse().unwrap(), 8192, 0)
            .unwrap()
            .unwrap();
        ChannelInfo::with_headers(&head.request, None, keep)
    }

    const BROWSER: &str = "GET /play?room=7 HTTP/1.1\r\nHost: game.example\r\nOrigin: https://game.example\r\n\
        User-Agent: Mozilla/5.0\r\nCookie: session=abc\r\nX-Forwarded-For: 203.0.113.9\r\nX-Twice: 1\r\nX-Twice: 2\r\n\r\n";

    #[test]
    fn keeps_only_the_listed_headers_case_insensitively() {
        let i = kept(BROWSER, &KeepHeaders::only(["USER-AGENT", "x-twice"]));
        assert_eq!(i.header("user-agent"), Some("Mozilla/5.0"));
        assert_eq!(i.header("User-Agent"), Some("Mozilla/5.0"));
        assert_eq!(i.header_values("x-twice").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(i.header("cookie"), None, "not listed, not kept");
        assert_eq!(i.header("host"), None);
        assert_eq!(i.headers().len(), 3);
        // The rest of the handshake stays whatever the policy.
        assert_eq!((i.target(), i.path(), i.query()), ("/play?room=7", "/play", "room=7"));
        assert_eq!(i.peer_addr().to_string(), "10.1.2.3:4567");
        // A policy built by hand, with names in any case.
        let i = kept(BROWSER, &KeepHeaders::Only(vec!["Cookie".into()]));
        assert_eq!(i.header("COOKIE"), Some("session=abc"));
    }

    #[test]
    fn the_default_keeps_origin_and_the_proxy_headers() {
        let i = kept(BROWSER, &KeepHeaders::default());
        let names: Vec<&str> = i.headers().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["origin", "x-forwarded-for"]);
        assert_eq!(i.header("x-forwarded-for"), Some("203.0.113.9"));
        assert_eq!(i.header("user-agent"), None);
    }

    #[test]
    fn keeping_none_allocates_nothing_for_a_short_target() {
        let i = kept(BROWSER, &KeepHeaders::None);
        assert!(i.more.is_none(), "no headers, protocol, TLS or extensions: no box");
        assert!(matches!(i.target, Target::Inline { .. }), "/play?room=7 is kept inline");
        assert!(matches!(i.peer, Peer::V4 { .. }));
        assert!(i.headers().is_empty());
        assert_eq!(i.header("origin"), None);
        assert_eq!(i.query_param("room").as_deref(), Some("7"));
        let all = kept(BROWSER, &KeepHeaders::All);
        assert_eq!(all.headers().len(), 7);
        assert_eq!(all.header("cookie"), Some("session=abc"));
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
