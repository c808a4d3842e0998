//! Which HTTP proxy a client goes through: one given by URL, or the one the
//! environment names (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`), only when
//! asked for.

use data_encoding::BASE64;

use crate::error::ClientError;

/// An HTTP proxy for a [`WebSocketClient`](crate::WebSocketClient) or an
/// [`HttpClient`](crate::HttpClient): the client connects to it, asks for a
/// tunnel with `CONNECT host:port`, and then speaks TLS and the WebSocket
/// handshake (or the HTTPS request) through it. A plain `http://` request
/// of the HTTP client is sent to the proxy itself instead, with the whole
/// URL as its target (`GET http://host/path HTTP/1.1`) and
/// `Proxy-Authorization` when the proxy has credentials.
///
/// ```
/// use hvws::{ClientConfig, Proxy};
///
/// let config = ClientConfig {
///     proxy: Some(Proxy::http("http://user:secret@proxy.example:3128")?),
///     ..ClientConfig::default()
/// };
/// // Or as curl does, from HTTPS_PROXY / HTTP_PROXY / NO_PROXY:
/// let from_env = ClientConfig::default().proxy_from_env();
/// # let _ = (config, from_env);
/// # Ok::<(), hvws::ClientError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    kind: Kind,
}

#[derive(Clone, PartialEq, Eq)]
enum Kind {
    Fixed(Endpoint),
    FromEnv,
}

/// A proxy's address and credentials.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub host: String,
    pub port: u16,
    /// base64 of `user:password`, for `Proxy-Authorization: Basic`.
    pub basic: Option<String>,
    /// The URL without credentials, for messages.
    pub shown: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the credentials.
        match &self.kind {
            Kind::Fixed(e) => write!(
                f,
                "Proxy({}{})",
                e.shown,
                if e.basic.is_some() { ", with credentials" } else { "" }
            ),
            Kind::FromEnv => write!(f, "Proxy(from environment)"),
        }
    }
}

impl Proxy {
    /// The proxy at `url`: `http://[user:password@]host[:port]` (port 80
    /// if none is given; user and password percent-decoded).
    pub fn http(url: &str) -> Result<Proxy, ClientError> {
        Ok(Proxy {
            kind: Kind::Fixed(parse_proxy_url(url)?),
        })
    }

    /// Adds (or replaces) Basic credentials.
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Proxy {
        if let Kind::Fixed(e) = &mut self.kind {
            e.basic = Some(BASE64.encode(format!("{user}:{password}").as_bytes()));
        }
        self
    }

    /// The proxy the environment names for each URL, as curl reads it:
    /// `HTTPS_PROXY` for `wss://` and `https://`, `HTTP_PROXY` for `ws://`
    /// and `http://` (lower-case names first, then `ALL_PROXY`), none for
    /// hosts matched by `NO_PROXY`.
    pub fn from_env() -> Proxy {
        Proxy { kind: Kind::FromEnv }
    }

    /// The proxy to use for `host:port`, if any.
    pub(crate) fn resolve(&self, host: &str, secure: bool) -> Result<Option<Endpoint>, ClientError> {
        match &self.kind {
            Kind::Fixed(e) => Ok(Some(e.clone())),
            Kind::FromEnv => {
                let var = |names: &[&str]| {
                    names
                        .iter()
                        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
                };
                let no_proxy = var(&["no_proxy", "NO_PROXY"]).unwrap_or_default();
                if bypasses(&no_proxy, host) {
                    return Ok(None);
                }
                let url = if secure {
                    var(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"])
                } else {
                    var(&["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"])
                };
                url.map(|u| parse_proxy_url(&u)).transpose()
            }
        }
    }
}

/// Whether `NO_PROXY` (comma-separated hosts, domains with or without a
/// leading dot, `*`) exempts `host`.
fn bypasses(no_proxy: &str, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    no_proxy
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            // A port in the entry is ignored, as most tools do.
            let entry = match entry.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
                _ => entry,
            };
            let domain = entry.trim_start_matches('.').to_ascii_lowercase();
            host == domain || host.ends_with(&format!(".{domain}"))
        })
}

fn parse_proxy_url(url: &str) -> Result<Endpoint, ClientError> {
    let bad = |reason| ClientError::InvalidUrl {
        url: redact(url),
        reason,
    };
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some(_) => return Err(bad("a proxy URL must start with http://")),
        // curl accepts a bare host:port; so do we.
        None => url,
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed [ in host"))?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(bad("missing proxy host"));
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad("invalid proxy port"))?,
        None => 80,
    };
    let basic = userinfo.map(|u| {
        let (user, pass) = u.split_once(':').unwrap_or((u, ""));
        BASE64.encode(format!("{}:{}", percent_decode(user), percent_decode(pass)).as_bytes())
    });
    Ok(Endpoint {
        host: host.to_owned(),
        port,
        basic,
        shown: format!("http://{hostport}"),
    })
}

/// The URL with any credentials cut out, for an error message.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

fn percent_decode(s: &str) -> String {
    String::from_utf8_lossy(&crate::proto::http::percent_decode_bytes(s.as_bytes(), false)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        let e = parse_proxy_url("http://127.0.0.1:3128").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.basic.as_deref()), ("127.0.0.1", 3128, None));
        let e = parse_proxy_url("http://us%40er:p%3Ass@proxy:8080/").unwrap();
        assert_eq!(
            BASE64.decode(e.basic.unwrap().as_bytes()).unwrap(),
            b"us@er:p:ss".to_vec()
        );
        assert_eq!(e.shown, "http://proxy:8080");
        assert_eq!(parse_proxy_url("proxy.lan").unwrap().port, 80);
        let err = parse_proxy_url("socks5://u:secret@h:1").unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
        assert!(parse_proxy_url("http://:3128").is_err());
        let shown = format!("{:?}", Proxy::http("http://u:secret@h:1").unwrap());
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn from_env_reads_the_variables_for_the_scheme_and_no_proxy() {
        // The only test in this binary that touches these variables.
        std::env::set_var("https_proxy", "http://u:p@secure-proxy:3128");
        std::env::set_var("http_proxy", "plain-proxy:8080");
        std::env::set_var("no_proxy", "localhost,.internal");
        let p = Proxy::from_env();
        let secure = p.resolve("example.com", true).unwrap().unwrap();
        assert_eq!(
            (secure.host.as_str(), secure.port, secure.basic.is_some()),
            ("secure-proxy", 3128, true)
        );
        let plain = p.resolve("example.com", false).unwrap().unwrap();
        assert_eq!((plain.host.as_str(), plain.port), ("plain-proxy", 8080));
        assert!(p.resolve("db.internal", true).unwrap().is_none());
        assert!(p.resolve("localhost", false).unwrap().is_none());
        for v in ["https_proxy", "http_proxy", "no_proxy"] {
            std::env::remove_var(v);
        }
    }

    #[test]
    fn no_proxy_matching() {
        assert!(bypasses("localhost,.corp.example", "api.corp.example"));
        assert!(bypasses("corp.example", "corp.example"));
        assert!(bypasses("corp.example", "a.corp.example"));
        assert!(!bypasses("corp.example", "notcorp.example"));
        assert!(bypasses("*", "anything"));
        assert!(bypasses("127.0.0.1:8080, ::1", "127.0.0.1"));
        assert!(bypasses("::1", "[::1]"));
        assert!(!bypasses("", "example.com"));
    }
}
