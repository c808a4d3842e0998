//! A cookie jar for the HTTP client (RFC 6265 §5.3-5.4, with two rules of
//! its successor, RFC 6265bis): `Set-Cookie` lines stored per response,
//! the `Cookie` header made for a request. Sans-IO like the rest of
//! `proto`: the caller says which URL a response came from or a request
//! goes to, as `(secure, host, path)`, and what time it is; nothing here
//! reads the clock.
//!
//! The rules kept:
//!
//! - **Domain.** Without a `Domain` attribute a cookie is *host-only*: sent
//!   back to the host that set it and no other. With one (a leading dot is
//!   ignored), it is sent to that domain and its subdomains, and is only
//!   accepted if the setting host is inside it. An IP address only matches
//!   itself. There is no public-suffix list: a `Domain` without a dot
//!   (`com`, `localhost`) is refused unless it is the host itself, but
//!   `Domain=co.uk` from `a.co.uk` is accepted; a game client talks to its
//!   own servers, where this matters little.
//! - **Path.** Without a `Path` (or one not starting with `/`) the default
//!   is the request path's directory (`/a/b` → `/a`). A cookie is sent on a
//!   request whose path is its path or below it, at a `/` (path `/a`
//!   matches `/a`, `/a/` and `/a/b`, not `/ab`).
//! - **Secure.** Sent over `https://` only; and (RFC 6265bis) a `Secure`
//!   cookie set over plain `http://` is refused, as are `__Secure-` and
//!   `__Host-` names that break their prefix's rules.
//! - **Expiry.** `Max-Age` wins over `Expires`; either in the past deletes
//!   the stored cookie of that name, domain and path. Without either, a
//!   cookie lives as long as the jar.
//! - **Replacement.** A cookie with the name, domain and path of a stored
//!   one replaces it (keeping its place in the order).
//! - **Order.** Longer paths first, then older cookies first, in one
//!   `Cookie` header (`a=1; b=2`).
//!
//! Caps: a cookie over 4096 bytes (name, value and attributes) is refused;
//! a domain keeps 50 cookies and the jar 3000 (RFC 6265 §6.1's minimums),
//! the oldest going first. Values are stored and sent back byte for byte
//! (no percent-decoding); one with control characters is refused, since it
//! could not be sent back.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use cookie::Cookie;

/// Longest `Set-Cookie` value kept.
pub const MAX_COOKIE_SIZE: usize = 4096;
/// Cookies kept per domain; the oldest goes when a new one comes.
pub const MAX_PER_DOMAIN: usize = 50;
/// Cookies kept in all.
pub const MAX_COOKIES: usize = 3000;

/// One cookie in a [`CookieJar`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCookie {
    name: String,
    value: String,
    domain: String,
    host_only: bool,
    path: String,
    secure: bool,
    http_only: bool,
    expires: Option<SystemTime>,
    /// Creation order (for sorting the header).
    seq: u64,
}

impl StoredCookie {
    /// The name, as the server set it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value, as the server set it (quotes and percent-escapes kept).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The domain it is sent to: the host that set it for a host-only
    /// cookie, else the `Domain` attribute (lower case, no leading dot).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Whether it goes to [`StoredCookie::domain`] only (no `Domain`
    /// attribute), not to its subdomains.
    pub fn host_only(&self) -> bool {
        self.host_only
    }

    /// The path it is sent under.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether it is sent over `https://` only.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Whether the server marked it `HttpOnly` (meaningful to browsers;
    /// kept for the record).
    pub fn http_only(&self) -> bool {
        self.http_only
    }

    /// When it expires; `None` lives as long as the jar.
    pub fn expires(&self) -> Option<SystemTime> {
        self.expires
    }

    /// Whether it has expired at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }

    /// Whether it goes with a request to `host` and `path`, over https if
    /// `secure`, at `now`.
    pub fn matches(&self, secure: bool, host: &str, path: &str, now: SystemTime) -> bool {
        (secure || !self.secure)
            && !self.is_expired(now)
            && if self.host_only {
                host.eq_ignore_ascii_case(&self.domain)
            } else {
                domain_match(host, &self.domain)
            }
            && path_match(path, &self.path)
    }
}

/// Why a `Set-Cookie` line was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieRejected {
    /// Not `name=value[; attributes]`, or an empty name.
    #[error("not a cookie")]
    Malformed,
    /// Over [`MAX_COOKIE_SIZE`] bytes.
    #[error("over {MAX_COOKIE_SIZE} bytes")]
    TooLarge,
    /// Control characters in the name or value.
    #[error("control characters in the name or value")]
    InvalidBytes,
    /// A `Domain` that the setting host is not inside, or a single label.
    #[error("Domain attribute not matching the host")]
    ForeignDomain,
    /// `Secure` (or a `__Secure-`/`__Host-` name) from a plain-http
    /// response, or a `__Host-` cookie with a `Domain` or a path other
    /// than `/`.
    #[error("Secure cookie or prefix rule broken")]
    Insecure,
}

/// Cookies received, for the requests that follow: see the module docs for
/// the rules.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hvws::proto::http_client::CookieJar;
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let mut jar = CookieJar::new();
/// jar.store(false, "api.example.com", "/login", "session=abc; Path=/; HttpOnly", now).unwrap();
/// jar.store(false, "api.example.com", "/login", "theme=dark; Domain=example.com; Max-Age=60", now).unwrap();
/// assert_eq!(jar.header(false, "api.example.com", "/scores", now).as_deref(), Some("session=abc; theme=dark"));
/// // Host-only: `session` does not go to another host of the domain.
/// assert_eq!(jar.header(false, "www.example.com", "/", now).as_deref(), Some("theme=dark"));
/// // A minute later `theme` has expired.
/// let later = now + Duration::from_secs(61);
/// assert_eq!(jar.header(false, "www.example.com", "/", later), None);
/// ```
#[derive(Clone, Debug, Default)]
pub struct CookieJar {
    cookies: Vec<StoredCookie>,
    next_seq: u64,
}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> CookieJar {
        CookieJar::default()
    }

    /// Stores the cookie of one `Set-Cookie` value received from `host`
    /// for a request to `path` (without the query), over https if
    /// `secure`, at `now`. A cookie that expires at once deletes its
    /// stored namesake and is not stored (that is `Ok` too).
    pub fn store(
        &mut self,
        secure: bool,
        host: &str,
        path: &str,
        set_cookie: &str,
        now: SystemTime,
    ) -> Result<(), CookieRejected> {
        if set_cookie.len() > MAX_COOKIE_SIZE {
            return Err(CookieRejected::TooLarge);
        }
        let parsed = Cookie::parse(set_cookie).map_err(|_| CookieRejected::Malformed)?;
        let (name, value) = (parsed.name(), parsed.value());
        let clean = |s: &str| !s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f);
        if !clean(name) || !clean(value) {
            return Err(CookieRejected::InvalidBytes);
        }
        let host = host.to_ascii_lowercase();
        let (domain, host_only) = match parsed.domain().map(str::to_ascii_lowercase) {
            None => (host.clone(), true),
            Some(d) if d == host => (d, false),
            Some(d) if !d.contains('.') || !domain_match(&host, &d) => return Err(CookieRejected::ForeignDomain),
            Some(d) => (d, false),
        };
        let path = match parsed.path() {
            Some(p) if p.starts_with('/') => p.to_owned(),
            _ => default_path(path).to_owned(),
        };
        let is_secure = parsed.secure() == Some(true);
        if is_secure && !secure {
            return Err(CookieRejected::Insecure);
        }
        if name.starts_with("__Secure-") && !(is_secure && secure) {
            return Err(CookieRejected::Insecure);
        }
        if name.starts_with("__Host-") && !(is_secure && secure && parsed.domain().is_none() && path == "/") {
            return Err(CookieRejected::Insecure);
        }
        let expires = match parsed.max_age() {
            Some(age) => match u64::try_from(age.whole_seconds()) {
                // `None` past what SystemTime holds: never.
                Ok(s) if s > 0 => now.checked_add(Duration::from_secs(s)),
                _ => Some(now),
            },
            None => parsed
                .expires_datetime()
                .map(|at| match u64::try_from(at.unix_timestamp()) {
                    Ok(s) => SystemTime::UNIX_EPOCH + Duration::from_secs(s),
                    Err(_) => SystemTime::UNIX_EPOCH,
                }),
        };
        if expires.is_some_and(|at| at <= now) {
            self.cookies
                .retain(|c| !(c.name == name && c.domain == domain && c.path == path));
            return Ok(());
        }
        self.insert(StoredCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            domain,
            host_only,
            path,
            secure: is_secure,
            http_only: parsed.http_only() == Some(true),
            expires,
            seq: self.next_seq,
        });
        Ok(())
    }

    fn insert(&mut self, mut cookie: StoredCookie) {
        if let Some(old) = self
            .cookies
            .iter_mut()
            .find(|c| c.name == cookie.name && c.domain == cookie.domain && c.path == cookie.path)
        {
            cookie.seq = old.seq;
            *old = cookie;
            return;
        }
        self.next_seq += 1;
        let in_domain = self.cookies.iter().filter(|c| c.domain == cookie.domain).count();
        if in_domain >= MAX_PER_DOMAIN {
            self.evict_oldest(Some(&cookie.domain));
        } else if self.cookies.len() >= MAX_COOKIES {
            self.evict_oldest(None);
        }
        self.cookies.push(cookie);
    }

    fn evict_oldest(&mut self, domain: Option<&str>) {
        let oldest = self
            .cookies
            .iter()
            .enumerate()
            .filter(|(_, c)| domain.is_none_or(|d| c.domain == d))
            .min_by_key(|(_, c)| c.seq)
            .map(|(i, _)| i);
        if let Some(i) = oldest {
            self.cookies.remove(i);
        }
    }

    /// The `Cookie` header value for a request to `host` and `path`
    /// (without the query), over https if `secure`, at `now`; `None` when
    /// no cookie matches.
    pub fn header(&self, secure: bool, host: &str, path: &str, now: SystemTime) -> Option<String> {
        let mut matching: Vec<&StoredCookie> = self
            .cookies
            .iter()
            .filter(|c| c.matches(secure, host, path, now))
            .collect();
        if matching.is_empty() {
            return None;
        }
        matching.sort_by(|a, b| b.path.len().cmp(&a.path.len()).then(a.seq.cmp(&b.seq)));
        let mut out = String::new();
        for c in matching {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(&c.name);
            out.push('=');
            out.push_str(&c.value);
        }
        Some(out)
    }

    /// Every cookie held, in the order they were first set; expired ones
    /// stay until [`CookieJar::remove_expired`] or the next store.
    pub fn iter(&self) -> impl Iterator<Item = &StoredCookie> {
        self.cookies.iter()
    }

    /// The first cookie named `name` not expired at `now`, for any domain.
    pub fn get(&self, name: &str, now: SystemTime) -> Option<&StoredCookie> {
        self.cookies.iter().find(|c| c.name == name && !c.is_expired(now))
    }

    /// Drops the cookies expired at `now`.
    pub fn remove_expired(&mut self, now: SystemTime) {
        self.cookies.retain(|c| !c.is_expired(now));
    }

    /// Cookies held (expired ones included until removed).
    pub fn len(&self) -> usize {
        self.cookies.len()
    }

    /// Whether the jar is empty.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Drops every cookie.
    pub fn clear(&mut self) {
        self.cookies.clear();
    }
}

/// RFC 6265 §5.1.3: `host` is `domain` or a subdomain of it (not when
/// `host` is an IP address).
pub fn domain_match(host: &str, domain: &str) -> bool {
    if host.eq_ignore_ascii_case(domain) {
        return true;
    }
    if host.parse::<IpAddr>().is_ok() || domain.is_empty() {
        return false;
    }
    host.len() > domain.len()
        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
        && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
}

/// RFC 6265 §5.1.4: `request_path` is `cookie_path` or below it.
pub fn path_match(request_path: &str, cookie_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

/// RFC 6265 §5.1.4: the directory of a request path, the default `Path`.
pub fn default_path(request_path: &str) -> &str {
    if !request_path.starts_with('/') {
        return "/";
    }
    match request_path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &request_path[..i],
    }
}

#[cfg(test)]
#[path = "cookies_tests.rs"]
mod tests;
