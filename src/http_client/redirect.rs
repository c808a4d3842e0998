//! Following redirects: where the next request goes and what it keeps.
//! Never from https to http; `Authorization` and `Cookie` stay behind on
//! a hop to another origin; 303 (and 301/302 after a POST) become a GET
//! without a body, as browsers and curl do.

use super::request::Prepared;
use crate::error::HttpClientError;
use crate::proto::http::Method;
use crate::proto::http_client::ResponseHead;

/// Headers that carry credentials, dropped on a cross-origin hop.
const CREDENTIALS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];
/// Headers about the body, dropped when the hop turns into a GET.
const BODY_HEADERS: [&str; 3] = ["content-type", "content-length", "content-encoding"];

/// The request to send next if `head` is a redirect to follow: `None` for
/// a response to hand over (not a redirect, no `Location`, following
/// off), or why the redirect cannot be followed. `hops` is the number
/// already followed.
pub(crate) fn next(
    current: &Prepared,
    head: &ResponseHead,
    follow: bool,
    hops: u32,
    max: u32,
) -> Option<Result<Prepared, HttpClientError>> {
    let status = head.status();
    if !follow || !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = head.header("location")?;
    if hops >= max {
        return Some(Err(HttpClientError::TooManyRedirects {
            limit: max,
            location: location.to_owned(),
        }));
    }
    let url = match current.url.join(location) {
        Ok(url) => url,
        Err(e) => {
            return Some(Err(HttpClientError::BadResponse(format!(
                "redirect to an unusable Location {location:?}: {e}"
            ))))
        }
    };
    if current.url.origin.secure && !url.origin.secure {
        return Some(Err(HttpClientError::InsecureRedirect {
            location: url.to_string(),
        }));
    }
    let mut next = current.clone();
    let to_get = match status {
        303 => next.method != Method::Head,
        301 | 302 => next.method == Method::Post,
        _ => false,
    };
    if to_get {
        next.method = Method::Get;
        next.body = None;
        next.headers
            .retain(|(k, _)| !BODY_HEADERS.iter().any(|h| k.eq_ignore_ascii_case(h)));
    }
    if url.origin != current.url.origin {
        next.headers
            .retain(|(k, _)| !CREDENTIALS.iter().any(|h| k.eq_ignore_ascii_case(h)));
    }
    next.url = url;
    Some(Ok(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientRequest;

    fn head(status: u16, location: &str) -> ResponseHead {
        let wire = format!("HTTP/1.1 {status} X\r\nLocation: {location}\r\n\r\n");
        ResponseHead::parse(wire.as_bytes()).unwrap().unwrap().0
    }

    fn header<'a>(p: &'a Prepared, name: &str) -> Option<&'a str> {
        p.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn same_origin_keeps_credentials_cross_origin_drops_them() {
        let p = ClientRequest::get("http://a:1/x")
            .bearer_auth("t")
            .header("Cookie", "s=1")
            .prepare()
            .unwrap();
        let same = next(&p, &head(302, "/y"), true, 0, 5).unwrap().unwrap();
        assert_eq!(same.url.to_string(), "http://a:1/y");
        assert_eq!(header(&same, "authorization"), Some("Bearer t"));
        let other = next(&p, &head(301, "http://b:1/y"), true, 0, 5).unwrap().unwrap();
        assert_eq!(
            (header(&other, "authorization"), header(&other, "cookie")),
            (None, None)
        );
        assert_eq!(header(&other, "accept"), Some("*/*"), "other headers stay");
        let port = next(&p, &head(307, "http://a:2/y"), true, 0, 5).unwrap().unwrap();
        assert_eq!(header(&port, "authorization"), None, "another port is another origin");
    }

    #[test]
    fn methods_after_a_redirect() {
        let post = ClientRequest::post("http://a/form").body_text("x").prepare().unwrap();
        for (status, method, body) in [
            (303, Method::Get, None),
            (302, Method::Get, None),
            (301, Method::Get, None),
            (307, Method::Post, Some(&b"x"[..])),
            (308, Method::Post, Some(&b"x"[..])),
        ] {
            let n = next(&post, &head(status, "/done"), true, 0, 5).unwrap().unwrap();
            assert_eq!(
                (n.method.clone(), n.body.as_deref()),
                (method.clone(), body),
                "{status}"
            );
            assert_eq!(header(&n, "content-type").is_some(), body.is_some(), "{status}");
        }
    }

    #[test]
    fn what_is_not_followed() {
        let p = ClientRequest::get("http://a/").prepare().unwrap();
        assert!(next(&p, &head(200, "/x"), true, 0, 5).is_none());
        assert!(
            next(&p, &head(302, "/x"), false, 0, 5).is_none(),
            "allow_redirect(false)"
        );
        let no_location = ResponseHead::parse(b"HTTP/1.1 302 Found\r\n\r\n").unwrap().unwrap().0;
        assert!(next(&p, &no_location, true, 0, 5).is_none());
        assert!(matches!(
            next(&p, &head(302, "/x"), true, 5, 5),
            Some(Err(HttpClientError::TooManyRedirects { limit: 5, .. }))
        ));
        assert!(matches!(
            next(&p, &head(302, "ftp://x/"), true, 0, 5),
            Some(Err(HttpClientError::BadResponse(_)))
        ));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn https_never_goes_to_http() {
        let p = ClientRequest::get("https://a/").prepare().unwrap();
        assert!(matches!(
            next(&p, &head(301, "http://a/"), true, 0, 5),
            Some(Err(HttpClientError::InsecureRedirect { .. }))
        ));
        let up = ClientRequest::get("http://a/").prepare().unwrap();
        assert!(next(&up, &head(301, "https://a/"), true, 0, 5).unwrap().is_ok());
    }
}
