//! The route table that [`HvWebServer::on_init`](crate::HvWebServer::on_init)
//! fills: HTTP routes and the paths that accept WebSocket upgrades. The
//! request and response types live in `proto::http`.

use std::fmt;

mod cookies;
mod file_name;
mod form;
mod limits;
mod multipart;
mod upload;

pub use form::Form;
pub use limits::{FormError, FormLimits};
pub use multipart::MultipartParser;
pub use upload::{FormFile, UploadError};

use crate::context::Context;
use crate::proto::http::{HttpRequest, HttpResponse, Method};

/// A route handler: reads and changes the server's state `H`, may send to
/// WebSocket channels through the [`Context`], and returns the response.
pub type RouteHandler<H> = Box<dyn FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send>;

struct Route<H> {
    method: Method,
    pattern: String,
    handler: RouteHandler<H>,
}

/// The route table: HTTP routes and the paths that accept WebSocket upgrades.
///
/// Patterns are exact paths (`/ping`) or a prefix ending in `*`
/// (`/static/*`). If no WebSocket path is registered with
/// [`Routes::websocket`], upgrades are accepted on every path.
pub struct Routes<H> {
    routes: Vec<Route<H>>,
    ws_paths: Vec<String>,
}

impl<H> fmt::Debug for Routes<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|r| format!("{} {}", r.method, r.pattern))
            .collect();
        f.debug_struct("Routes")
            .field("routes", &routes)
            .field("ws_paths", &self.ws_paths)
            .finish()
    }
}

impl<H> Default for Routes<H> {
    fn default() -> Self {
        Routes {
            routes: Vec::new(),
            ws_paths: Vec::new(),
        }
    }
}

/// What the route table says about a request.
pub(crate) enum RouteMatch<'r, H> {
    Found(&'r mut RouteHandler<H>),
    /// The path exists, with these methods only.
    MethodNotAllowed(String),
    /// The path takes WebSocket upgrades only.
    WebSocketOnly,
    NotFound,
}

fn matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

impl<H> Routes<H> {
    /// Registers `handler` for `method` on `pattern`. A later registration of
    /// the same method and pattern replaces the earlier one.
    pub fn route<F>(&mut self, method: Method, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.routes.retain(|r| !(r.method == method && r.pattern == pattern));
        self.routes.push(Route {
            method,
            pattern: pattern.to_owned(),
            handler: Box::new(handler),
        });
        self
    }

    /// Registers a GET route (also answers HEAD, without the body).
    pub fn get<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Get, pattern, handler)
    }

    /// Registers a POST route.
    pub fn post<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Post, pattern, handler)
    }

    /// Registers a PUT route.
    pub fn put<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Put, pattern, handler)
    }

    /// Registers a PATCH route.
    pub fn patch<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Patch, pattern, handler)
    }

    /// Registers a DELETE route.
    pub fn delete<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Delete, pattern, handler)
    }

    /// Registers a HEAD route (overrides the GET route's automatic HEAD).
    pub fn head<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Head, pattern, handler)
    }

    /// Registers an OPTIONS route.
    pub fn options<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Options, pattern, handler)
    }

    /// Declares `pattern` a WebSocket endpoint. Once any is declared, upgrades
    /// to other paths are refused with 404, and a plain GET to a WebSocket-only
    /// path gets 400.
    pub fn websocket(&mut self, pattern: &str) -> &mut Self {
        self.ws_paths.push(pattern.to_owned());
        self
    }

    /// Whether an upgrade to `path` is allowed.
    pub(crate) fn accepts_websocket(&self, path: &str) -> bool {
        self.ws_paths.is_empty() || self.ws_paths.iter().any(|p| matches(p, path))
    }

    pub(crate) fn find(&mut self, method: &Method, path: &str) -> RouteMatch<'_, H> {
        let pick = |want: &Method| {
            self.routes
                .iter()
                .position(|r| &r.method == want && matches(&r.pattern, path))
        };
        let idx = pick(method).or_else(|| (*method == Method::Head).then(|| pick(&Method::Get)).flatten());
        if let Some(i) = idx {
            return RouteMatch::Found(&mut self.routes[i].handler);
        }
        let mut allowed: Vec<&str> = self
            .routes
            .iter()
            .filter(|r| matches(&r.pattern, path))
            .map(|r| r.method.as_str())
            .collect();
        if !allowed.is_empty() {
            if allowed.contains(&"GET") && !allowed.contains(&"HEAD") {
                allowed.push("HEAD");
            }
            return RouteMatch::MethodNotAllowed(allowed.join(", "));
        }
        if self.ws_paths.iter().any(|p| matches(p, path)) {
            return RouteMatch::WebSocketOnly;
        }
        RouteMatch::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_lookup() {
        let mut routes: Routes<()> = Routes::default();
        routes
            .get("/ping", |_, _, _| HttpResponse::text("pong"))
            .post("/items", |_, _, _| HttpResponse::new(201))
            .get("/static/*", |_, _, _| HttpResponse::text("file"))
            .websocket("/chat");
        assert!(matches!(routes.find(&Method::Get, "/ping"), RouteMatch::Found(_)));
        assert!(matches!(routes.find(&Method::Head, "/ping"), RouteMatch::Found(_)));
        assert!(matches!(
            routes.find(&Method::Get, "/static/a/b.css"),
            RouteMatch::Found(_)
        ));
        match routes.find(&Method::Delete, "/ping") {
            RouteMatch::MethodNotAllowed(allow) => assert_eq!(allow, "GET, HEAD"),
            _ => panic!("expected 405"),
        }
        assert!(matches!(routes.find(&Method::Get, "/chat"), RouteMatch::WebSocketOnly));
        assert!(matches!(routes.find(&Method::Get, "/nope"), RouteMatch::NotFound));
        assert!(routes.accepts_websocket("/chat"));
        assert!(!routes.accepts_websocket("/ping"));
        assert!(Routes::<()>::default().accepts_websocket("/anything"));
    }
}
