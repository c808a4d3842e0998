//! `ws://` and `wss://` URLs: what the client connects to and what it asks
//! for.

use crate::error::ClientError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Target {
    pub host: String,
    pub port: u16,
    /// `Host` header value.
    pub authority: String,
    /// Path and query.
    pub resource: String,
    /// `wss://`: TLS to the server.
    pub secure: bool,
}

pub(super) fn parse_url(url: &str) -> Result<Target, ClientError> {
    let bad = |reason| ClientError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("missing scheme (ws://)"))?;
    let secure = if scheme.eq_ignore_ascii_case("ws") {
        false
    } else if scheme.eq_ignore_ascii_case("wss") && cfg!(feature = "tls") {
        true
    } else {
        return Err(ClientError::UnsupportedScheme(scheme.to_owned()));
    };
    let (authority, resource) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let resource = if resource.starts_with('?') {
        format!("/{resource}")
    } else {
        resource.to_owned()
    };
    if authority.contains('@') {
        return Err(bad("user info in the URL is not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed [ in host"))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad("invalid port"))?,
        None if secure => 443,
        None => 80,
    };
    Ok(Target {
        host: host.to_owned(),
        port,
        authority: authority.to_owned(),
        resource,
        secure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("ws://127.0.0.1:9001/chat?x=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.authority.as_str(), t.resource.as_str()),
            ("127.0.0.1", 9001, "127.0.0.1:9001", "/chat?x=1")
        );
        let t = parse_url("WS://example.com").unwrap();
        assert_eq!((t.port, t.resource.as_str()), (80, "/"));
        let t = parse_url("ws://[::1]:8080?q").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.resource.as_str()), ("::1", 8080, "/?q"));
        if cfg!(feature = "tls") {
            let t = parse_url("wss://example.com/x").unwrap();
            assert_eq!((t.port, t.secure, t.authority.as_str()), (443, true, "example.com"));
        } else {
            assert!(matches!(parse_url("wss://a/"), Err(ClientError::UnsupportedScheme(s)) if s == "wss"));
        }
        assert!(matches!(parse_url("http://a/"), Err(ClientError::UnsupportedScheme(_))));
        for bad in ["127.0.0.1:80/x", "ws://:80/", "ws://a:notaport/", "ws://u@h/"] {
            assert!(matches!(parse_url(bad), Err(ClientError::InvalidUrl { .. })), "{bad}");
        }
    }
}
