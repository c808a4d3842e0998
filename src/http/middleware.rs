//! What runs around the route handlers: before-middleware (with the
//! application's state, may answer early) and the response chain that
//! every answer passes through (CORS headers, after-middleware, the access
//! log).
//!
//! The response chain holds no application state on purpose: an answer
//! may be given after its tick, from another thread (a deferred
//! response), so the core keeps a clone of the chain and applies it
//! wherever the answer is finished.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::cors::Cors;
use crate::context::Context;
use crate::proto::http::{HttpRequest, HttpResponse};

/// A before-middleware: may look at (and change) the request, the
/// application's state and the channels, and answer early with `Some`.
pub(crate) type Before<H> = Box<dyn FnMut(&mut H, &mut Context<'_>, &mut HttpRequest) -> Option<HttpResponse> + Send>;

/// An after-middleware: sees each request with its finished response.
pub(crate) type After = Arc<dyn Fn(&HttpRequest, &mut HttpResponse) + Send + Sync>;

/// Everything that finishes a response, in this order: CORS headers (so
/// after-middleware sees and may change them), after-middleware in
/// registration order, the access log line (so it logs what is sent).
/// Cheap to clone: the core keeps one for answers given later.
#[derive(Clone, Default)]
pub(crate) struct ResponseChain {
    pub(crate) cors: Option<Arc<Cors>>,
    pub(crate) after: Vec<After>,
    pub(crate) access_log: bool,
}

impl fmt::Debug for ResponseChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseChain")
            .field("cors", &self.cors)
            .field("after", &self.after.len())
            .field("access_log", &self.access_log)
            .finish()
    }
}

impl ResponseChain {
    /// Finishes `resp`, the answer to `req`, `elapsed()` after the request
    /// was read (for the access log; asked only when it is written, since
    /// reading the clock costs more than the rest of an empty chain). A
    /// deferred placeholder is left alone: the real answer goes through
    /// here when it is given.
    pub(crate) fn apply(&self, req: &HttpRequest, resp: &mut HttpResponse, elapsed: impl FnOnce() -> Duration) {
        if resp.is_deferred() {
            return;
        }
        if let Some(cors) = &self.cors {
            cors.apply(req, resp);
        }
        for after in &self.after {
            after(req, resp);
        }
        if self.access_log {
            log::info!(
                target: "hvws::access",
                "{} \"{} {} HTTP/1.{}\" {} {} {:.3}ms",
                req.peer_addr(),
                req.method(),
                req.target(),
                req.minor_version(),
                resp.status(),
                resp.body_len(),
                elapsed().as_secs_f64() * 1e3,
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::RefCell;
    use std::sync::Once;

    use super::*;
    use crate::proto::http::Method;

    thread_local! {
        /// The access lines logged on this thread (tests run in parallel).
        static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    struct Capture;

    impl log::Log for Capture {
        fn enabled(&self, m: &log::Metadata<'_>) -> bool {
            m.target() == "hvws::access"
        }
        fn log(&self, r: &log::Record<'_>) {
            if self.enabled(r.metadata()) {
                LINES.with(|l| l.borrow_mut().push(r.args().to_string()));
            }
        }
        fn flush(&self) {}
    }

    /// The access lines `f` logs.
    pub(crate) fn access_lines(f: impl FnOnce()) -> Vec<String> {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            // Another test binary's logger cannot be here: this is the
            // lib's only one.
            log::set_logger(&Capture).expect("no other logger in the lib tests");
            log::set_max_level(log::LevelFilter::Info);
        });
        LINES.with(|l| l.borrow_mut().clear());
        f();
        LINES.with(|l| std::mem::take(&mut *l.borrow_mut()))
    }

    fn req() -> HttpRequest {
        HttpRequest::builder(Method::Get, "/users/7?full=1")
            .peer("10.0.0.2:4321".parse().unwrap())
            .build()
    }

    #[test]
    fn after_middleware_in_order_then_the_log() {
        let mut chain = ResponseChain::default();
        chain.after.push(Arc::new(|_, r| r.set_header("X-Trace", "1")));
        chain.after.push(Arc::new(|req, r| {
            let seen = format!("{} {}", r.header("x-trace").unwrap_or("-"), req.path());
            r.set_header("X-Trace", &seen);
        }));
        chain.access_log = true;
        let mut resp = HttpResponse::text("hello");
        let lines = access_lines(|| chain.apply(&req(), &mut resp, || Duration::from_micros(1500)));
        assert_eq!(resp.header("x-trace"), Some("1 /users/7"));
        assert_eq!(lines, [r#"10.0.0.2:4321 "GET /users/7?full=1 HTTP/1.1" 200 5 1.500ms"#]);
    }

    #[test]
    fn the_log_is_off_by_default_and_deferred_answers_wait() {
        let mut chain = ResponseChain::default();
        chain.after.push(Arc::new(|_, r| r.set_header("X-After", "yes")));
        let mut resp = HttpResponse::text("x");
        let lines = access_lines(|| chain.apply(&req(), &mut resp, || Duration::ZERO));
        assert!(lines.is_empty(), "{lines:?}");
        assert_eq!(resp.header("x-after"), Some("yes"));

        chain.access_log = true;
        let mut deferred = HttpResponse::deferred();
        let lines = access_lines(|| chain.apply(&req(), &mut deferred, || Duration::ZERO));
        assert!(lines.is_empty(), "{lines:?}");
        assert_eq!(deferred.header("x-after"), None);
    }

    #[test]
    fn cors_comes_before_after_middleware() {
        let mut chain = ResponseChain {
            cors: Some(Arc::new(Cors::new().allow_origin("https://a.example"))),
            ..ResponseChain::default()
        };
        chain.after.push(Arc::new(|_, r| {
            let acao = r.header("access-control-allow-origin").map(str::to_owned);
            r.set_header("X-Saw", acao.as_deref().unwrap_or("none"));
        }));
        let req = HttpRequest::builder(Method::Get, "/")
            .header("Origin", "https://a.example")
            .build();
        let mut resp = HttpResponse::new(200);
        chain.apply(&req, &mut resp, || Duration::ZERO);
        assert_eq!(resp.header("x-saw"), Some("https://a.example"));
    }
}
