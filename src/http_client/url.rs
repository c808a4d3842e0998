//! `http://` and `https://` URLs: where a request goes, what its `Host`
//! and request target are, and where a redirect's `Location` leads.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::HttpClientError;

/// What a query parameter or form value keeps as is: the unreserved
/// characters of RFC 3986.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes `s` for a query string or an urlencoded form.
pub(crate) fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, VALUE).to_string()
}

/// Where connections are pooled: the same scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    pub secure: bool,
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url {
    pub origin: Origin,
    /// `Host` header value: the URL's authority without user info.
    pub authority: String,
    /// Path and query.
    pub target: String,
    /// `user:password` from the URL, percent-decoded.
    pub userinfo: Option<(String, String)>,
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.origin.secure { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority, self.target)
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, HttpClientError> {
        let bad = |reason| HttpClientError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let url_trimmed = url.trim();
        let (scheme, rest) = url_trimmed
            .split_once("://")
            .ok_or_else(|| bad("missing scheme (http:// or https://)"))?;
        let secure = if scheme.eq_ignore_ascii_case("http") {
            false
        } else if scheme.eq_ignore_ascii_case("https") && cfg!(feature = "tls") {
            true
        } else {
            return Err(HttpClientError::UnsupportedScheme(scheme.to_owned()));
        };
        // The fragment is the client's own business; it is never sent.
        let rest = rest.split('#').next().unwrap_or("");
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let target = if target.starts_with('?') {
            format!("/{target}")
        } else {
            target.to_owned()
        };
        if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("spaces or control characters in the path (percent-encode them)"));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                (Some((decode(user), decode(pass))), h)
            }
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed [ in host"))?;
            match after {
                "" => (h, None),
                p => (h, Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?)),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        if host
            .bytes()
            .any(|b| b <= b' ' || matches!(b, b'/' | b'\\' | b'@' | 0x7f))
        {
            return Err(bad("invalid character in host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("invalid port"))?,
            None if secure => 443,
            None => 80,
        };
        Ok(Url {
            origin: Origin {
                secure,
                host: host.to_ascii_lowercase(),
                port,
            },
            authority: hostport.to_owned(),
            target,
            userinfo,
        })
    }

    /// Adds `name=value` (percent-encoded) to the query.
    pub fn add_param(&mut self, name: &str, value: &str) {
        let sep = if self.target.contains('?') {
            if self.target.ends_with('?') || self.target.ends_with('&') {
                ""
            } else {
                "&"
            }
        } else {
            "?"
        };
        self.target = format!(
            "{}{sep}{}={}",
            self.target,
            encode_component(name),
            encode_component(value)
        );
    }

    /// Where a redirect's `Location` leads from here (RFC 3986 §5.2, for
    /// the forms servers send: absolute, scheme-relative, absolute path,
    /// relative path, query only).
    pub fn join(&self, location: &str) -> Result<Url, HttpClientError> {
        let location = location.trim();
        if has_scheme(location) {
            return Url::parse(location);
        }
        let scheme = if self.origin.secure { "https" } else { "http" };
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("{scheme}://{rest}"));
        }
        let path = self.target.split('?').next().unwrap_or("/");
        let target = if location.starts_with('/') {
            location.to_owned()
        } else if location.starts_with('?') {
            format!("{path}{location}")
        } else if location.is_empty() {
            self.target.clone()
        } else {
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            let dir = if dir.is_empty() { "/" } else { dir };
            normalize(&format!("{dir}{location}"))
        };
        Url::parse(&format!("{scheme}://{}{target}", self.authority))
    }
}

/// Whether `location` starts with `scheme://` (RFC 3986 §3.1: a letter,
/// then letters, digits, `+`, `-`, `.`). A relative reference may carry
/// `://` further on, in its query (`login?next=https://...`).
fn has_scheme(location: &str) -> bool {
    location.split_once("://").is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// Removes `.` and `..` segments from a path (query left as is).
fn normalize(target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *seg {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut s = format!("/{}", out.join("/"));
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:8080/a/b?x=1#frag").unwrap();
        assert_eq!(
            (
                u.origin.host.as_str(),
                u.origin.port,
                u.authority.as_str(),
                u.target.as_str()
            ),
            ("127.0.0.1", 8080, "127.0.0.1:8080", "/a/b?x=1")
        );
        let u = Url::parse("HTTP://Example.COM?q").unwrap();
        assert_eq!(
            (u.origin.host.as_str(), u.origin.port, u.target.as_str()),
            ("example.com", 80, "/?q")
        );
        let u = Url::parse("http://u%40x:p%3A@[::1]:81/").unwrap();
        assert_eq!(u.userinfo, Some(("u@x".to_owned(), "p:".to_owned())));
        assert_eq!((u.origin.host.as_str(), u.authority.as_str()), ("::1", "[::1]:81"));
        assert!(matches!(
            Url::parse("ftp://a/"),
            Err(HttpClientError::UnsupportedScheme(_))
        ));
        for bad in [
            "a/b",
            "http://",
            "http://:80/",
            "http://h:x/",
            "http://h/a b",
            "http://[::1/",
        ] {
            assert!(
                matches!(Url::parse(bad), Err(HttpClientError::InvalidUrl { .. })),
                "{bad}"
            );
        }
        if cfg!(feature = "tls") {
            assert_eq!(Url::parse("https://h/").unwrap().origin.port, 443);
        } else {
            assert!(matches!(
                Url::parse("https://h/"),
                Err(HttpClientError::UnsupportedScheme(_))
            ));
        }
    }

    #[test]
    fn params_are_percent_encoded() {
        let mut u = Url::parse("http://h/s").unwrap();
        u.add_param("q", "a b&c=d/é");
        u.add_param("page", "2");
        assert_eq!(u.target, "/s?q=a%20b%26c%3Dd%2F%C3%A9&page=2");
    }

    #[test]
    fn redirect_locations() {
        let base = Url::parse("http://h:81/a/b/c?x=1").unwrap();
        let join = |l: &str| base.join(l).unwrap().to_string();
        assert_eq!(join("http://other/x"), "http://other/x");
        assert_eq!(join("//cdn/img"), "http://cdn/img");
        assert_eq!(join("/root?y"), "http://h:81/root?y");
        assert_eq!(join("d"), "http://h:81/a/b/d");
        assert_eq!(join("../d?z=2"), "http://h:81/a/d?z=2");
        assert_eq!(join("./"), "http://h:81/a/b/");
        assert_eq!(join("?only"), "http://h:81/a/b/c?only");
        assert_eq!(join("../../../../x"), "http://h:81/x");
        // `://` in the query of a relative reference does not make it absolute.
        assert_eq!(join("login?next=http://x/y"), "http://h:81/a/b/login?next=http://x/y");
        assert_eq!(
            join("?return=https://game.example/"),
            "http://h:81/a/b/c?return=https://game.example/"
        );
        assert_eq!(join("HTTP://Other:82/x"), "http://Other:82/x");
    }
}
