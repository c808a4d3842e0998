//! Cross-origin resource sharing (the Fetch standard's CORS protocol), as
//! dasHV's `allow_cors`: which other sites' pages may call this server
//! from a browser, answered on every response by the router.

use std::time::Duration;

use crate::proto::http::{HttpRequest, HttpResponse, Method};

/// Which other origins' pages may read this server's responses, and how:
/// give it to [`Routes::cors`](crate::Routes::cors).
///
/// - A **preflight** (an `OPTIONS` request with `Origin` and
///   `Access-Control-Request-Method`) is answered `204 No Content` before
///   any routing or middleware (a browser sends no credentials with it, so
///   an auth middleware would only refuse it). From an allowed origin it
///   carries `Access-Control-Allow-Origin`, `-Allow-Methods`,
///   `-Allow-Headers`, and `-Max-Age` and `-Allow-Credentials` when set.
///   From another origin it is a bare 204: the browser then refuses to
///   send the real request, and the answer tells that origin nothing.
/// - **Other responses** to an allowed origin get
///   `Access-Control-Allow-Origin`, `-Allow-Credentials` and
///   `-Expose-Headers` as set; a response that already has
///   `Access-Control-Allow-Origin` (its handler decided) is left alone.
/// - A request without `Origin` gets no CORS headers. Every response
///   says `Vary: Origin` (unless any origin is allowed without
///   credentials: then the answer is `*` for all), those to other origins
///   and to requests without one included, so a cache keeps one copy per
///   origin and never hands one origin's answer to another.
///
/// ```
/// use std::time::Duration;
/// use hvws::{Cors, HttpResponse, Method, Routes};
///
/// let mut routes: Routes<()> = Routes::default();
/// routes
///     .cors(
///         Cors::new()
///             .allow_origin("https://game.example")
///             .allow_methods(&[Method::Get, Method::Post])
///             .allow_headers(&["Content-Type", "Authorization"])
///             .expose_headers(&["X-Request-Id"])
///             .allow_credentials(true)
///             .max_age(Duration::from_secs(600)),
///     )
///     .post("/api/score", |_, _, _| HttpResponse::new(204));
/// ```
#[derive(Clone, Debug)]
pub struct Cors {
    /// Allowed origins, as browsers send them (scheme://host[:port]).
    origins: Vec<String>,
    any_origin: bool,
    /// `Access-Control-Allow-Methods`, joined once.
    methods: String,
    /// `Access-Control-Allow-Headers`, joined once; `None` echoes what the
    /// preflight asks for.
    headers: Option<String>,
    /// `Access-Control-Expose-Headers`, joined once.
    expose: Option<String>,
    credentials: bool,
    /// `Access-Control-Max-Age` in seconds.
    max_age: Option<u64>,
}

impl Default for Cors {
    fn default() -> Cors {
        Cors::new()
    }
}

fn join<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items.into_iter().collect::<Vec<_>>().join(", ")
}

impl Cors {
    /// A policy that allows no origin yet (add some with
    /// [`Cors::allow_origin`] or [`Cors::allow_any_origin`]); methods GET,
    /// HEAD, POST, PUT, PATCH and DELETE; whatever request headers a
    /// preflight asks for; nothing exposed; no credentials; no max age
    /// (browsers then cache a preflight for 5 seconds).
    pub fn new() -> Cors {
        let methods = [
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
        ];
        Cors {
            origins: Vec::new(),
            any_origin: false,
            methods: join(methods.iter().map(Method::as_str)),
            headers: None,
            expose: None,
            credentials: false,
            max_age: None,
        }
    }

    /// Allows `origin` (`https://game.example`, `http://localhost:8080`:
    /// scheme, host and port, as a browser's `Origin` header has them;
    /// compared without regard to ASCII case). Call once per origin.
    pub fn allow_origin(mut self, origin: &str) -> Cors {
        self.origins.push(origin.trim_end_matches('/').to_owned());
        self
    }

    /// Allows every origin. Without credentials the answer is
    /// `Access-Control-Allow-Origin: *`; with
    /// [`Cors::allow_credentials`] each origin is named back (browsers
    /// refuse `*` with credentials), which lets any site act with the
    /// user's cookies: combine the two only for data that is public anyway.
    pub fn allow_any_origin(mut self) -> Cors {
        self.any_origin = true;
        self
    }

    /// The methods a preflight allows (replacing the default list).
    /// Browsers allow GET, HEAD and POST with simple headers whatever this
    /// says; the route table still answers 405 to a method it lacks.
    pub fn allow_methods(mut self, methods: &[Method]) -> Cors {
        self.methods = join(methods.iter().map(Method::as_str));
        self
    }

    /// The request headers a preflight allows. By default a preflight gets
    /// back the headers it asked for; with a list, it gets the list, and the
    /// browser refuses a request that needs a header not on it.
    pub fn allow_headers(mut self, headers: &[&str]) -> Cors {
        self.headers = Some(join(headers.iter().copied()));
        self
    }

    /// Response headers, beyond the CORS-safelisted ones
    /// (`Content-Type`, `Content-Length`, `Cache-Control`, ...), that the
    /// calling page may read.
    pub fn expose_headers(mut self, headers: &[&str]) -> Cors {
        self.expose = (!headers.is_empty()).then(|| join(headers.iter().copied()));
        self
    }

    /// Whether pages may send cookies and HTTP authentication with their
    /// requests and read the answers (`Access-Control-Allow-Credentials:
    /// true`). Off by default.
    pub fn allow_credentials(mut self, allow: bool) -> Cors {
        self.credentials = allow;
        self
    }

    /// How long a browser may cache a preflight's answer
    /// (`Access-Control-Max-Age`, whole seconds; browsers cap it, Chromium
    /// at 2 hours).
    pub fn max_age(mut self, age: Duration) -> Cors {
        self.max_age = Some(age.as_secs());
        self
    }

    /// Whether the answer depends on the request's origin: unless every
    /// origin gets `*`, a cache must key it on `Origin`.
    fn varies(&self) -> bool {
        !self.any_origin || self.credentials
    }

    fn allows(&self, origin: &str) -> bool {
        self.any_origin || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// What `Access-Control-Allow-Origin` says to `origin`.
    fn allow_origin_value<'o>(&self, origin: &'o str) -> &'o str {
        if self.varies() {
            origin
        } else {
            "*"
        }
    }

    /// Whether `req` is a CORS preflight.
    pub(crate) fn is_preflight(req: &HttpRequest) -> bool {
        *req.method() == Method::Options
            && req.header("origin").is_some()
            && req.header("access-control-request-method").is_some()
    }

    /// The answer to a preflight, `None` for other requests.
    pub(crate) fn preflight(&self, req: &HttpRequest) -> Option<HttpResponse> {
        if !Cors::is_preflight(req) {
            return None;
        }
        let origin = req.header("origin")?;
        let allowed = self.allows(origin);
        let asked = req
            .header("access-control-request-headers")
            .filter(|h| !h.trim().is_empty());
        // Without a list, the answer names the headers asked for, so it
        // depends on them too.
        let echo = asked.filter(|_| allowed && self.headers.is_none());
        let vary = match (self.varies(), echo.is_some()) {
            (true, true) => Some("Origin, Access-Control-Request-Headers"),
            (true, false) => Some("Origin"),
            (false, true) => Some("Access-Control-Request-Headers"),
            (false, false) => None,
        };
        let mut resp = HttpResponse::new(204);
        if let Some(vary) = vary {
            resp = resp.with_header("Vary", vary);
        }
        if !allowed {
            log::debug!("{}: CORS preflight from {origin:?}, not allowed", req.peer_addr());
            return Some(resp);
        }
        resp = resp
            .with_header("Access-Control-Allow-Origin", self.allow_origin_value(origin))
            .with_header("Access-Control-Allow-Methods", &self.methods);
        if let Some(headers) = self.headers.as_deref().or(echo) {
            resp = resp.with_header("Access-Control-Allow-Headers", headers);
        }
        if let Some(secs) = self.max_age {
            resp = resp.with_header("Access-Control-Max-Age", &secs.to_string());
        }
        if self.credentials {
            resp = resp.with_header("Access-Control-Allow-Credentials", "true");
        }
        Some(resp)
    }

    /// Adds the CORS headers to the response to a request that is not a
    /// preflight (its answer has them already).
    pub(crate) fn apply(&self, req: &HttpRequest, resp: &mut HttpResponse) {
        if Cors::is_preflight(req) {
            return;
        }
        // Even without an Origin: a cache must not hand this answer (with
        // no CORS headers) to a request that has one (the Fetch standard's
        // advice on `Vary`).
        if self.varies() {
            add_vary(resp, "Origin");
        }
        let Some(origin) = req.header("origin") else {
            return;
        };
        if !self.allows(origin) || resp.header("access-control-allow-origin").is_some() {
            return;
        }
        resp.set_header("Access-Control-Allow-Origin", self.allow_origin_value(origin));
        if self.credentials {
            resp.set_header("Access-Control-Allow-Credentials", "true");
        }
        if let Some(expose) = &self.expose {
            resp.set_header("Access-Control-Expose-Headers", expose);
        }
    }
}

/// Adds `token` to the response's `Vary`, unless it is there (or `*`).
fn add_vary(resp: &mut HttpResponse, token: &str) {
    match resp.header("vary") {
        None => resp.set_header("Vary", token),
        Some(have) => {
            let listed = have
                .split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.eq_ignore_ascii_case(token));
            if !listed {
                let merged = format!("{have}, {token}");
                resp.set_header("Vary", &merged);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "https://a.example";

    fn preflight(origin: &str, asked_headers: Option<&str>) -> HttpRequest {
        let b = HttpRequest::builder(Method::Options, "/api/score")
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "PUT");
        match asked_headers {
            Some(h) => b.header("Access-Control-Request-Headers", h),
            None => b,
        }
        .build()
    }

    fn get(origin: Option<&str>) -> HttpRequest {
        let b = HttpRequest::builder(Method::Get, "/api/score");
        match origin {
            Some(o) => b.header("Origin", o),
            None => b,
        }
        .build()
    }

    /// The headers of `resp`, as (name, value) strings.
    fn headers(resp: &HttpResponse) -> Vec<(&str, &str)> {
        resp.headers().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    /// The answer to a simple request from `origin` with `cors`.
    fn simple(cors: &Cors, origin: Option<&str>, resp: HttpResponse) -> HttpResponse {
        let mut resp = resp;
        cors.apply(&get(origin), &mut resp);
        resp
    }

    #[test]
    fn preflight_from_an_allowed_origin() {
        let cors = Cors::new()
            .allow_origin("https://b.example")
            .allow_origin("https://A.example/")
            .allow_methods(&[Method::Get, Method::Put])
            .allow_credentials(true)
            .max_age(Duration::from_secs(600));
        let resp = cors.preflight(&preflight(A, Some("content-type, x-token"))).unwrap();
        assert_eq!(resp.status(), 204);
        assert_eq!(
            headers(&resp),
            [
                ("Vary", "Origin, Access-Control-Request-Headers"),
                ("Access-Control-Allow-Origin", A),
                ("Access-Control-Allow-Methods", "GET, PUT"),
                ("Access-Control-Allow-Headers", "content-type, x-token"),
                ("Access-Control-Max-Age", "600"),
                ("Access-Control-Allow-Credentials", "true"),
            ]
        );
    }

    #[test]
    fn preflight_with_a_header_list_and_defaults() {
        let cors = Cors::new().allow_origin(A).allow_headers(&["Content-Type"]);
        let resp = cors.preflight(&preflight(A, Some("x-other"))).unwrap();
        assert_eq!(
            headers(&resp),
            [
                ("Vary", "Origin"),
                ("Access-Control-Allow-Origin", A),
                ("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE"),
                ("Access-Control-Allow-Headers", "Content-Type"),
            ],
            "the list, whatever was asked: the browser refuses x-other"
        );
        let resp = Cors::new().allow_origin(A).preflight(&preflight(A, None)).unwrap();
        assert_eq!(resp.header("access-control-allow-headers"), None);
    }

    #[test]
    fn preflight_from_another_origin_is_a_bare_204() {
        let cors = Cors::new().allow_origin(A);
        let resp = cors
            .preflight(&preflight("https://evil.example", Some("x-token")))
            .unwrap();
        assert_eq!((resp.status(), headers(&resp)), (204, vec![("Vary", "Origin")]));
        // Not preflights: a plain OPTIONS, a GET.
        let plain = HttpRequest::builder(Method::Options, "/").header("Origin", A).build();
        assert!(cors.preflight(&plain).is_none());
        assert!(cors.preflight(&get(Some(A))).is_none());
    }

    #[test]
    fn simple_requests() {
        let cors = Cors::new()
            .allow_origin(A)
            .expose_headers(&["X-Request-Id", "X-Rate"])
            .allow_credentials(true);
        let resp = simple(&cors, Some(A), HttpResponse::text("hi"));
        assert_eq!(
            &headers(&resp)[1..],
            [
                ("Vary", "Origin"),
                ("Access-Control-Allow-Origin", A),
                ("Access-Control-Allow-Credentials", "true"),
                ("Access-Control-Expose-Headers", "X-Request-Id, X-Rate"),
            ]
        );
        // Another origin: only Vary, so a cache does not hand it A's copy.
        let resp = simple(&cors, Some("https://evil.example"), HttpResponse::new(200));
        assert_eq!(headers(&resp), [("Vary", "Origin")]);
        // No Origin: not a CORS request, but a cache must still tell the
        // two apart.
        assert_eq!(
            headers(&simple(&cors, None, HttpResponse::new(200))),
            [("Vary", "Origin")]
        );
        let any = Cors::new().allow_any_origin();
        assert_eq!(headers(&simple(&any, None, HttpResponse::new(200))), []);
    }

    #[test]
    fn any_origin_with_and_without_credentials() {
        let any = Cors::new().allow_any_origin();
        let resp = simple(&any, Some(A), HttpResponse::new(200));
        assert_eq!(
            headers(&resp),
            [("Access-Control-Allow-Origin", "*")],
            "no Vary: the same for all"
        );
        let resp = any.preflight(&preflight(A, None)).unwrap();
        assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
        assert_eq!(resp.header("vary"), None);

        let creds = Cors::new().allow_any_origin().allow_credentials(true);
        let resp = simple(&creds, Some(A), HttpResponse::new(200));
        assert_eq!(
            headers(&resp),
            [
                ("Vary", "Origin"),
                ("Access-Control-Allow-Origin", A),
                ("Access-Control-Allow-Credentials", "true"),
            ],
            "never `*` with credentials"
        );
    }

    #[test]
    fn vary_merges_and_handlers_decide() {
        let cors = Cors::new().allow_origin(A);
        let resp = simple(
            &cors,
            Some(A),
            HttpResponse::new(200).with_header("Vary", "Accept-Encoding"),
        );
        assert_eq!(resp.header("vary"), Some("Accept-Encoding, Origin"));
        let resp = simple(&cors, Some(A), HttpResponse::new(200).with_header("vary", "origin"));
        assert_eq!(resp.header("vary"), Some("origin"));
        let resp = simple(&cors, Some(A), HttpResponse::new(200).with_header("Vary", "*"));
        assert_eq!(resp.header("vary"), Some("*"));
        let own = HttpResponse::new(200).with_header("Access-Control-Allow-Origin", "https://c.example");
        let resp = simple(&cors, Some(A), own);
        assert_eq!(resp.header("access-control-allow-origin"), Some("https://c.example"));
    }

    #[test]
    fn no_origin_allowed_yet() {
        let resp = simple(&Cors::default(), Some(A), HttpResponse::new(200));
        assert_eq!(headers(&resp), [("Vary", "Origin")]);
    }
}
