//! The route table answering requests, read as traces: request in,
//! status, headers and the handler that ran out.

use std::time::{Duration, Instant};

use super::*;
use crate::handle::ServerHandle;
use crate::table::Core;
use crate::ServerConfig;

/// A route table on a state that records what ran, with a connection
/// table for the contexts.
struct Table {
    routes: Routes<Vec<String>>,
    ran: Vec<String>,
    core: Core,
}

impl Table {
    fn new(build: impl FnOnce(&mut Routes<Vec<String>>)) -> Table {
        let mut routes = Routes::default();
        build(&mut routes);
        routes.check().expect("valid routes");
        Table {
            routes,
            ran: Vec::new(),
            core: Core::new(ServerConfig::default(), ServerHandle::new().0),
        }
    }

    /// `METHOD target` with `headers`: the response, and the request as
    /// the handler saw it.
    #[track_caller]
    fn ask(&mut self, method: &str, target: &str, headers: &[(&str, &str)]) -> (HttpResponse, HttpRequest) {
        let mut b = HttpRequest::builder(Method::parse(method), target);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        let mut req = b.build();
        let mut ctx = Context { core: &mut self.core };
        let resp = self.routes.handle(&mut self.ran, &mut ctx, &mut req);
        (resp, req)
    }

    /// `METHOD target`: status and body as text.
    #[track_caller]
    fn get(&mut self, method: &str, target: &str) -> (u16, String) {
        let (resp, _) = self.ask(method, target, &[]);
        (resp.status(), String::from_utf8_lossy(resp.body()).into_owned())
    }
}

/// A handler that answers `name` and the parameters it got.
fn named(name: &'static str) -> impl FnMut(&mut Vec<String>, &mut Context<'_>, &HttpRequest) -> HttpResponse {
    move |ran, _, req| {
        ran.push(name.to_owned());
        let params: Vec<String> = req.params().iter().map(|(k, v)| format!("{k}={v}")).collect();
        HttpResponse::text(format!("{name} {}", params.join(" ")).trim_end().to_owned())
    }
}

fn ok(body: &str) -> (u16, String) {
    (200, body.to_owned())
}

#[test]
fn params_precedence_and_backtracking() {
    let mut t = Table::new(|r| {
        r.get("/users/new", named("new"))
            .get("/users/:id", named("user"))
            .get("/users/:id/posts/:post_id", named("post"))
            .get("/users/*rest", named("rest"));
    });
    assert_eq!(t.get("GET", "/users/new"), ok("new"));
    assert_eq!(t.get("GET", "/users/42?x=1"), ok("user id=42"));
    assert_eq!(t.get("GET", "/users/new/posts/7"), ok("post id=new post_id=7"));
    assert_eq!(t.get("GET", "/users/new/comments"), ok("rest rest=new/comments"));
    assert_eq!(t.get("GET", "/users/"), ok("rest rest="));
    assert_eq!(t.get("GET", "/users").0, 404);
    assert_eq!(t.ran, ["new", "user", "post", "rest", "rest"]);
}

#[test]
fn values_are_percent_decoded_after_matching() {
    let mut t = Table::new(|r| {
        r.get("/files/:name", named("one"))
            .get("/files/:name/meta", named("meta"))
            .get("/static/*", named("static"));
    });
    // `%2F` stays inside its segment, then decodes to `/`.
    assert_eq!(t.get("GET", "/files/a%2Fb"), ok("one name=a/b"));
    assert_eq!(t.get("GET", "/files/a%2Fb/meta"), ok("meta name=a/b"));
    assert_eq!(t.get("GET", "/files/caf%C3%A9%20x+y"), ok("one name=café x+y"));
    // The unnamed wildcard of `prefix*` patterns, as before.
    assert_eq!(t.get("GET", "/static/css/a%20b.css"), ok("static *=css/a b.css"));
    let (_, req) = t.ask("GET", "/files/a%2Fb", &[]);
    assert_eq!(req.param("name"), Some("a/b"));
}

#[test]
fn any_head_and_other_methods() {
    let mut t = Table::new(|r| {
        r.any("/echo", named("any"))
            .post("/echo", named("post"))
            .get("/page", named("page"))
            .head("/both", named("head"))
            .get("/both", named("get"))
            .any("/anything", named("anything"))
            .route(Method::Other("PURGE".into()), "/cache/*key", named("purge"));
    });
    assert_eq!(t.get("POST", "/echo"), ok("post"));
    assert_eq!(t.get("DELETE", "/echo"), ok("any"));
    assert_eq!(t.get("BREW", "/echo"), ok("any"));
    assert_eq!(t.get("HEAD", "/page"), ok("page"), "HEAD falls back to GET");
    assert_eq!(t.get("HEAD", "/both"), ok("head"), "a HEAD route wins over GET");
    assert_eq!(t.get("HEAD", "/anything"), ok("anything"));
    assert_eq!(t.get("PURGE", "/cache/a/b"), ok("purge key=a/b"));
    assert_eq!(t.get("GET", "/cache/a").0, 405);
}

#[test]
fn a_method_picks_its_branch() {
    let mut t = Table::new(|r| {
        r.get("/users/new", named("form")).delete("/users/:id", named("delete"));
    });
    assert_eq!(t.get("DELETE", "/users/new"), ok("delete id=new"));
    let (resp, _) = t.ask("PUT", "/users/new", &[]);
    assert_eq!((resp.status(), resp.header("allow")), (405, Some("GET, HEAD, DELETE")));
}

#[test]
fn method_not_allowed_and_options() {
    let mut t = Table::new(|r| {
        r.route(Method::Other("PURGE".into()), "/items/:id", named("purge"))
            .delete("/items/:id", named("delete"))
            .post("/items/:id", named("post"))
            .get("/items/:id", named("get"))
            .route(Method::Other("LOCK".into()), "/items/:id", named("lock"))
            .options("/custom", named("options"))
            .websocket("/chat");
    });
    let (resp, _) = t.ask("PUT", "/items/1", &[]);
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.header("allow"), Some("GET, HEAD, POST, DELETE, LOCK, PURGE"));
    assert_eq!(resp.body(), b"Method Not Allowed");

    let (resp, _) = t.ask("OPTIONS", "/items/1", &[]);
    assert_eq!((resp.status(), resp.body()), (204, &b""[..]));
    assert_eq!(
        resp.header("allow"),
        Some("GET, HEAD, POST, DELETE, OPTIONS, LOCK, PURGE")
    );

    assert_eq!(t.get("OPTIONS", "/custom"), ok("options"));
    assert_eq!(t.get("OPTIONS", "/nothing").0, 404);
    assert_eq!(
        t.get("GET", "/chat"),
        (400, "this path accepts WebSocket upgrades only".to_owned())
    );
    assert_eq!(t.get("GET", "/chat/x").0, 404);
    assert!(t.routes.accepts_websocket("/chat"));
    assert!(!t.routes.accepts_websocket("/items/1"));
    assert_eq!(t.ran, ["options"], "only the OPTIONS route ran");
}

#[test]
fn websocket_paths_use_the_same_patterns() {
    let mut routes: Routes<()> = Routes::default();
    assert!(routes.accepts_websocket("/anything"), "no paths: every path");
    routes.websocket("/rooms/:room").websocket("/game/*");
    assert!(routes.accepts_websocket("/rooms/lobby"));
    assert!(routes.accepts_websocket("/game/"));
    assert!(!routes.accepts_websocket("/rooms/"));
    assert!(!routes.accepts_websocket("/rooms/a/b"));
    assert!(!routes.accepts_websocket("/game"));
}

#[test]
fn registration_mistakes_are_kept_first_first() {
    let mut routes: Routes<()> = Routes::default();
    routes
        .get("/users/:id", |_, _, _| HttpResponse::new(200))
        .get("/ok", |_, _, _| HttpResponse::new(200));
    assert_eq!(routes.check(), Ok(()));
    routes
        .get("/users/:name/x", |_, _, _| HttpResponse::new(200))
        .websocket("chat")
        .get("/ok2", |_, _, _| HttpResponse::new(200));
    assert_eq!(
        routes.check(),
        Err(RouteError::ParamConflict {
            pattern: "/users/:name/x".into(),
            existing: "id".into(),
            new: "name".into()
        })
    );

    // Every kind, from routes and from WebSocket paths.
    type Is = fn(RouteError) -> bool;
    let kinds: [(&str, Is); 6] = [
        ("no-slash", |e| matches!(e, RouteError::NoLeadingSlash { .. })),
        ("/a/:", |e| matches!(e, RouteError::EmptyParamName { .. })),
        ("/a/:b-c", |e| matches!(e, RouteError::InvalidParamName { .. })),
        ("/a/:b/:b", |e| matches!(e, RouteError::DuplicateParamName { .. })),
        ("/a/*b/c", |e| matches!(e, RouteError::MisplacedWildcard { .. })),
        ("/users/:name", |e| matches!(e, RouteError::ParamConflict { .. })),
    ];
    for (pattern, is) in kinds {
        let mut routes: Routes<()> = Routes::default();
        routes.get("/users/:id", |_, _, _| HttpResponse::new(200));
        routes.post(pattern, |_, _, _| HttpResponse::new(200));
        assert!(is(routes.check().unwrap_err()), "route {pattern}");
        let mut routes: Routes<()> = Routes::default();
        routes.websocket("/users/:id").websocket(pattern);
        assert!(is(routes.check().unwrap_err()), "websocket {pattern}");
    }
}

#[test]
fn registering_again_replaces() {
    let mut t = Table::new(|r| {
        r.get("/v/:x", named("first"))
            .get("/v/:x", named("second"))
            .any("/v/:x", named("any"));
    });
    assert_eq!(t.get("GET", "/v/1"), ok("second x=1"));
    assert_eq!(t.get("POST", "/v/1"), ok("any x=1"));
    assert_eq!(format!("{:?}", t.routes).matches("/v/:x").count(), 2, "{:?}", t.routes);
}

#[test]
fn middleware_order_and_early_answers() {
    let mut t = Table::new(|r| {
        r.before(|ran, _, req| {
            ran.push(format!("auth {}", req.param("id").unwrap_or("-")));
            (req.header("authorization").is_none()).then(|| HttpResponse::error(401))
        })
        .before(|ran, _, _| {
            ran.push("limit".into());
            None
        })
        .get("/users/:id", named("user"))
        .after(|_, resp| resp.set_header("X-Order", "1"))
        .after(|req, resp| {
            let order = format!("{},2 {}", resp.header("x-order").unwrap_or("-"), req.method());
            resp.set_header("X-Order", &order);
        });
    });
    let auth = [("Authorization", "Bearer t")];

    let (resp, _) = t.ask("GET", "/users/7", &auth);
    assert_eq!((resp.status(), resp.header("x-order")), (200, Some("1,2 GET")));
    assert_eq!(t.ran, ["auth 7", "limit", "user"]);

    t.ran.clear();
    let (resp, _) = t.ask("GET", "/users/7", &[]);
    assert_eq!((resp.status(), resp.header("x-order")), (401, Some("1,2 GET")));
    assert_eq!(t.ran, ["auth 7"], "an early answer skips the rest");

    // The table's own answers pass the middleware both ways too.
    t.ran.clear();
    let (resp, _) = t.ask("GET", "/nope", &auth);
    assert_eq!((resp.status(), resp.header("x-order")), (404, Some("1,2 GET")));
    let (resp, _) = t.ask("DELETE", "/users/7", &auth);
    assert_eq!((resp.status(), resp.header("x-order")), (405, Some("1,2 DELETE")));
    let (resp, _) = t.ask("OPTIONS", "/users/7", &auth);
    assert_eq!((resp.status(), resp.header("x-order")), (204, Some("1,2 OPTIONS")));
    assert_eq!(t.ran, ["auth -", "limit", "auth -", "limit", "auth -", "limit"]);
}

#[test]
fn preflights_skip_before_middleware() {
    let mut t = Table::new(|r| {
        r.cors(Cors::new().allow_origin("https://a.example"))
            .before(|_, _, _| Some(HttpResponse::error(401)))
            .after(|_, resp| resp.set_header("X-After", "yes"))
            .put("/score", named("score"));
    });
    let (resp, _) = t.ask(
        "OPTIONS",
        "/score",
        &[
            ("Origin", "https://a.example"),
            ("Access-Control-Request-Method", "PUT"),
        ],
    );
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.header("access-control-allow-origin"), Some("https://a.example"));
    assert_eq!(resp.header("x-after"), Some("yes"));
    // Not a preflight (no Access-Control-Request-Method): middleware runs.
    let (resp, _) = t.ask("OPTIONS", "/score", &[("Origin", "https://a.example")]);
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.header("access-control-allow-origin"), Some("https://a.example"));
}

#[test]
fn the_access_log_has_a_line_per_answer() {
    let mut t = Table::new(|r| {
        r.access_log(true).get("/hi", |_, _, _| HttpResponse::text("hello"));
    });
    let lines = super::middleware::tests::access_lines(|| {
        t.get("GET", "/hi?x=1");
        t.get("POST", "/hi");
        t.get("GET", "/missing");
    });
    let trimmed: Vec<&str> = lines.iter().map(|l| l.rsplit_once(' ').unwrap().0).collect();
    assert_eq!(
        trimmed,
        [
            r#"127.0.0.1:1 "GET /hi?x=1 HTTP/1.1" 200 5"#,
            r#"127.0.0.1:1 "POST /hi HTTP/1.1" 405 18"#,
            r#"127.0.0.1:1 "GET /missing HTTP/1.1" 404 9"#,
        ]
    );
    assert!(lines.iter().all(|l| l.ends_with("ms")), "{lines:?}");
}

#[test]
fn a_panic_is_a_500_through_the_chain_unless_the_chain_panicked() {
    let mut routes: Routes<()> = Routes::default();
    routes.after(|_, resp| resp.set_header("X-After", "yes"));
    let req = HttpRequest::builder(Method::Get, "/boom").build();
    let resp = routes.internal_error(&req, Instant::now());
    assert_eq!((resp.status(), resp.header("x-after")), (500, Some("yes")));

    routes.after(|req, _| assert!(req.path() != "/boom", "after-middleware failing"));
    let resp = routes.internal_error(&req, Instant::now());
    assert_eq!((resp.status(), resp.header("x-after")), (500, None));
    assert_eq!(resp.body(), b"Internal Server Error");
}

#[test]
fn deferred_answers_skip_the_chain() {
    let mut t = Table::new(|r| {
        r.get("/later", |_, _, _| HttpResponse::deferred())
            .after(|_, resp| resp.set_header("X-After", "yes"));
    });
    let (resp, _) = t.ask("GET", "/later", &[]);
    assert!(resp.is_deferred());
    assert_eq!(resp.header("x-after"), None);
    let chain = t.routes.response_chain();
    let mut later = HttpResponse::text("done");
    chain.apply(&HttpRequest::builder(Method::Get, "/later").build(), &mut later, || {
        Duration::ZERO
    });
    assert_eq!(later.header("x-after"), Some("yes"));
}
