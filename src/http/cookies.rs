//! Cookies: reading the request's `Cookie` headers and adding `Set-Cookie`
//! headers to a response. The `Cookie` type is the `cookie` crate's,
//! re-exported as [`hvws::cookie`](crate::cookie), so its builder sets the
//! attributes (path, domain, max-age, expires, secure, http-only,
//! same-site).
//!
//! Names and values are percent-encoded when set and decoded when read, so
//! any string survives the round trip through a browser, `;`, `,`, spaces,
//! quotes and non-ASCII text included (the `cookie` crate's `encoded()` set).

use std::borrow::Cow;

use cookie::time::{Duration, OffsetDateTime};
use cookie::Cookie;
use percent_encoding::percent_decode_str;

use crate::proto::http::{HttpRequest, HttpResponse};

impl HttpRequest {
    /// The value of cookie `name`, percent-decoded; the first if the browser
    /// sent several (it sends the one with the longest path first).
    ///
    /// ```
    /// use hvws::{HttpRequest, Method};
    /// let req = HttpRequest::builder(Method::Get, "/")
    ///     .header("Cookie", "session=abc123; theme=\"dark\"; note=a%3Bb")
    ///     .build();
    /// assert_eq!(req.cookie("session").as_deref(), Some("abc123"));
    /// assert_eq!(req.cookie("theme").as_deref(), Some("dark"));
    /// assert_eq!(req.cookie("note").as_deref(), Some("a;b"));
    /// assert_eq!(req.cookie("missing"), None);
    /// ```
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookie_pairs()
            .find(|(n, _)| decode(n) == name)
            .map(|(_, v)| decode(v).into_owned())
    }

    /// Every cookie as (name, value), percent-decoded, in the order of the
    /// `Cookie` headers and of the pairs within each. Pairs without `=` or
    /// with an empty name are skipped; names and values are trimmed, and a
    /// value in double quotes loses its quotes.
    ///
    /// ```
    /// use hvws::{HttpRequest, Method};
    /// let req = HttpRequest::builder(Method::Get, "/")
    ///     .header("Cookie", "a=1; junk; =2")
    ///     .header("Cookie", "b = 3 ")
    ///     .build();
    /// assert_eq!(req.cookies(), [("a".to_owned(), "1".to_owned()), ("b".to_owned(), "3".to_owned())]);
    /// ```
    pub fn cookies(&self) -> Vec<(String, String)> {
        self.cookie_pairs()
            .map(|(n, v)| (decode(n).into_owned(), decode(v).into_owned()))
            .collect()
    }

    /// The raw (name, value) pairs of every `Cookie` header.
    fn cookie_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.header_values("cookie").flat_map(split_cookie_header)
    }
}

/// Splits one `Cookie` header value into (name, value) pairs: tolerant of
/// extra spaces and malformed pairs, which are skipped rather than failing
/// the whole header (one bad cookie set by another app on the same domain
/// must not log the user out of this one).
fn split_cookie_header(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        let name = name.trim_matches([' ', '\t']);
        let value = value.trim_matches([' ', '\t']);
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) => inner,
            None => value,
        };
        (!name.is_empty()).then_some((name, value))
    })
}

/// Percent-decodes a cookie name or value. Bytes that do not decode to
/// UTF-8 leave the text as sent: a cookie some other code set with a stray
/// `%` must still be readable.
fn decode(s: &str) -> Cow<'_, str> {
    match percent_decode_str(s).decode_utf8() {
        Ok(decoded) => decoded,
        Err(_) => Cow::Borrowed(s),
    }
}

impl HttpResponse {
    /// Adds a `Set-Cookie` header for `cookie` (a [`Cookie`] or its
    /// builder); call it once per cookie. Name and value are
    /// percent-encoded ([`HttpRequest::cookie`] decodes them), and control
    /// characters are dropped from the attributes, so a path or domain taken
    /// from user input cannot split the header.
    ///
    /// ```
    /// use hvws::cookie::{time::Duration, Cookie, SameSite};
    /// use hvws::HttpResponse;
    ///
    /// let resp = HttpResponse::text("logged in").with_cookie(
    ///     Cookie::build(("session", "abc123"))
    ///         .path("/")
    ///         .max_age(Duration::hours(1))
    ///         .http_only(true)
    ///         .secure(true)
    ///         .same_site(SameSite::Lax),
    /// );
    /// assert_eq!(
    ///     resp.header("set-cookie"),
    ///     Some("session=abc123; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=3600")
    /// );
    /// ```
    pub fn with_cookie<'c>(self, cookie: impl Into<Cookie<'c>>) -> HttpResponse {
        let cookie: Cookie<'c> = cookie.into();
        let line: String = cookie
            .encoded()
            .to_string()
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        self.with_header("Set-Cookie", &line)
    }

    /// Adds a `Set-Cookie` header that deletes cookie `name` set with
    /// `path`: an empty value, `Max-Age=0` and an `Expires` in 1970 (for
    /// browsers that predate Max-Age). A cookie set with a `Domain` is
    /// removed only by a removal with the same domain: build that one with
    /// [`with_cookie`](HttpResponse::with_cookie) and
    /// `Cookie::build((name, "")).domain(..).path(..).max_age(Duration::ZERO)`.
    ///
    /// ```
    /// let resp = hvws::HttpResponse::redirect(303, "/").remove_cookie("session", "/");
    /// assert_eq!(
    ///     resp.header("set-cookie"),
    ///     Some("session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    /// );
    /// ```
    pub fn remove_cookie(self, name: &str, path: &str) -> HttpResponse {
        self.with_cookie(
            Cookie::build((name, ""))
                .path(path)
                .max_age(Duration::ZERO)
                .expires(OffsetDateTime::UNIX_EPOCH),
        )
    }
}

#[cfg(test)]
mod tests {
    use cookie::SameSite;

    use super::*;
    use crate::proto::http::Method;

    #[track_caller]
    fn cookies_of(headers: &[&str]) -> Vec<(String, String)> {
        let mut b = HttpRequest::builder(Method::Get, "/");
        for h in headers {
            b = b.header("Cookie", h);
        }
        b.build().cookies()
    }

    #[track_caller]
    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[track_caller]
    fn set_cookie(cookie: impl Into<Cookie<'static>>) -> String {
        let resp = HttpResponse::new(200).with_cookie(cookie);
        resp.header("set-cookie").expect("a Set-Cookie header").to_owned()
    }

    #[test]
    fn request_cookies_in_header_order() {
        assert_eq!(
            cookies_of(&["a=1; b=2", "c=3"]),
            pairs(&[("a", "1"), ("b", "2"), ("c", "3")])
        );
        assert_eq!(cookies_of(&[]), pairs(&[]));
        assert_eq!(cookies_of(&[""]), pairs(&[]));
    }

    #[test]
    fn malformed_pairs_are_skipped_and_spaces_trimmed() {
        assert_eq!(
            cookies_of(&[" a = 1 ;;novalue; =x;\tb=\t2;c=;d==e"]),
            pairs(&[("a", "1"), ("b", "2"), ("c", ""), ("d", "=e")])
        );
    }

    #[test]
    fn quoted_values_keep_their_content() {
        assert_eq!(
            cookies_of(&[r#"q="hello world"; e=""; lone="; inner=a"b"#]),
            pairs(&[("q", "hello world"), ("e", ""), ("lone", "\""), ("inner", "a\"b")])
        );
    }

    #[test]
    fn values_are_percent_decoded_unless_that_breaks_utf8() {
        assert_eq!(
            cookies_of(&["n=caf%C3%A9; raw=50%off; bad=%FF%FE; plus=a+b"]),
            pairs(&[("n", "café"), ("raw", "50%off"), ("bad", "%FF%FE"), ("plus", "a+b")])
        );
    }

    #[test]
    fn cookie_lookup_takes_the_first_of_repeated_names() {
        let req = HttpRequest::builder(Method::Get, "/")
            .header("Cookie", "id=specific; id=general")
            .header("X-Other", "id=nope")
            .build();
        assert_eq!(req.cookie("id").as_deref(), Some("specific"));
        assert_eq!(req.cookie("ID"), None, "names are case-sensitive");
        let none = HttpRequest::builder(Method::Get, "/").build();
        assert_eq!(none.cookie("id"), None);
    }

    #[test]
    fn set_cookie_with_each_attribute() {
        assert_eq!(set_cookie(("a", "1")), "a=1");
        assert_eq!(set_cookie(Cookie::build(("a", "1")).path("/app")), "a=1; Path=/app");
        assert_eq!(
            set_cookie(Cookie::build(("a", "1")).domain("example.com")),
            "a=1; Domain=example.com"
        );
        assert_eq!(
            set_cookie(Cookie::build(("a", "1")).max_age(Duration::minutes(5))),
            "a=1; Max-Age=300"
        );
        assert_eq!(
            set_cookie(Cookie::build(("a", "1")).expires(OffsetDateTime::from_unix_timestamp(1_893_553_445).unwrap())),
            "a=1; Expires=Wed, 02 Jan 2030 03:04:05 GMT"
        );
        assert_eq!(set_cookie(Cookie::build(("a", "1")).http_only(true)), "a=1; HttpOnly");
        assert_eq!(set_cookie(Cookie::build(("a", "1")).secure(true)), "a=1; Secure");
        assert_eq!(
            set_cookie(Cookie::build(("a", "1")).same_site(SameSite::Strict)),
            "a=1; SameSite=Strict"
        );
        // SameSite=None is ignored by browsers without Secure; the cookie
        // crate adds it unless told otherwise.
        assert_eq!(
            set_cookie(Cookie::build(("a", "1")).same_site(SameSite::None)),
            "a=1; SameSite=None; Secure"
        );
    }

    #[test]
    fn several_cookies_give_several_headers() {
        let resp = HttpResponse::text("x")
            .with_cookie(("a", "1"))
            .with_cookie(("b", "2"))
            .remove_cookie("old", "/");
        let set: Vec<&str> = resp
            .headers()
            .iter()
            .filter(|(k, _)| k == "Set-Cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            set,
            [
                "a=1",
                "b=2",
                "old=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
            ]
        );
    }

    #[test]
    fn values_are_encoded_and_read_back() {
        let value = "a b;c,d\"é=%";
        let line = set_cookie(Cookie::new("k", value));
        assert_eq!(line, "k=a%20b%3Bc%2Cd%22%C3%A9%3D%25");
        let req = HttpRequest::builder(Method::Get, "/").header("Cookie", &line).build();
        assert_eq!(req.cookie("k").as_deref(), Some(value));
    }

    #[test]
    fn control_characters_cannot_split_the_header() {
        let line = set_cookie(Cookie::build(("a", "1")).path("/x\r\nSet-Cookie: evil=1"));
        assert_eq!(line, "a=1; Path=/xSet-Cookie: evil=1");
        assert!(!line.contains(['\r', '\n']));
    }
}
