//! The router's fuzz entry point (`fuzz/fuzz_targets/router.rs`), also
//! replayed by `tests/fuzz_regressions.rs`: random patterns registered,
//! random requests answered, each answer checked against a naive model of
//! the precedence rules (every pattern tried in turn, the most specific
//! match kept) and against CORS's invariants.

#[path = "fuzzing_multipart.rs"]
mod multipart;
pub use multipart::{multipart, multipart_seeds};

use super::router::{decode_param, parse_pattern, Segment};
use super::{allow_list, Cors, Routes};
use crate::context::Context;
use crate::handle::ServerHandle;
use crate::proto::http::{HttpRequest, HttpResponse, Method};
use crate::table::Core;
use crate::ServerConfig;

const METHODS: [Method; 7] = [
    Method::Get,
    Method::Post,
    Method::Put,
    Method::Patch,
    Method::Delete,
    Method::Head,
    Method::Options,
];

fn method(i: u8) -> Method {
    METHODS
        .get(usize::from(i % 8))
        .cloned()
        .unwrap_or_else(|| Method::Other("PURGE".into()))
}

/// A registered route as the model sees it: the method (`None` for ANY)
/// and the parsed pattern.
struct Registered {
    method: Option<Method>,
    pattern: String,
    segments: Vec<Segment>,
}

/// How specific a match is, segment by segment (literal 2, parameter 1,
/// wildcard 0): the larger, the more specific.
type Rank = Vec<u8>;

/// The rank of `segments`' match of `path`, with its decoded captures;
/// `None` if it does not match.
fn naive_match(segments: &[Segment], path: &str) -> Option<(Rank, Vec<(String, String)>)> {
    let parts: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let (mut rank, mut captures) = (Vec::new(), Vec::new());
    for (i, seg) in segments.iter().enumerate() {
        let part = *parts.get(i)?;
        match seg {
            Segment::Literal(lit) if lit == part => rank.push(2),
            Segment::Literal(_) => return None,
            Segment::Param(_) if part.is_empty() => return None,
            Segment::Param(name) => {
                rank.push(1);
                captures.push((name.clone(), decode_param(part)));
            }
            Segment::Wildcard(name) => {
                rank.push(0);
                captures.push((name.clone(), decode_param(&parts[i..].join("/"))));
                return Some((rank, captures));
            }
        }
    }
    (segments.len() == parts.len()).then_some((rank, captures))
}

/// What a route's handler answers: which route it is and what it got.
fn echo(method: &str, pattern: &str, req: &HttpRequest) -> String {
    format!("{method} {pattern} {:?}", req.params())
}

/// Registers routes, WebSocket paths and a CORS policy from `data`, then
/// answers requests, checking each answer. `data` is lines; each line's
/// first byte says what the rest is:
///
/// - `b % 4 == 0`: a route for the rest as pattern, method `(b / 4) % 9`
///   (`8` is ANY);
/// - `b % 4 == 1`: a WebSocket path;
/// - `b % 4 == 2`: CORS allowing the rest as origin, plus any origin if
///   `b & 0x10`, credentials if `b & 0x20`, a header list if `b & 0x40`;
/// - `b % 4 == 3`: a request for the rest as target, method `(b / 4) % 8`,
///   with `Origin: https://a.example` if `b & 0x20`, as a preflight if
///   also `b & 0x40`.
///
/// A before-middleware answers 403 to paths that contain `/deny`.
pub fn router(data: &[u8]) {
    let mut routes: Routes<()> = Routes::default();
    let mut model: Vec<Registered> = Vec::new();
    let mut ws: Vec<Vec<Segment>> = Vec::new();
    let mut requests = Vec::new();
    let mut cors = None;
    for line in data.split(|&b| b == b'\n') {
        let Some((&op, rest)) = line.split_first() else {
            continue;
        };
        let rest = String::from_utf8_lossy(rest).into_owned();
        match op % 4 {
            0 => {
                let m = (op / 4) % 9;
                let m = (m < 8).then(|| method(m));
                let (name, pattern) = (m.as_ref().map_or("ANY", Method::as_str).to_owned(), rest.clone());
                let handler = move |_: &mut (), _: &mut Context<'_>, req: &HttpRequest| {
                    HttpResponse::text(echo(&name, &pattern, req))
                };
                match &m {
                    Some(m) => routes.route(m.clone(), &rest, handler),
                    None => routes.any(&rest, handler),
                };
                let refused = routes.error.take();
                if let Ok(segments) = parse_pattern(&rest) {
                    if refused.is_none() {
                        model.retain(|r| !(r.method == m && r.pattern == rest));
                        model.push(Registered {
                            method: m,
                            pattern: rest,
                            segments,
                        });
                    }
                } else {
                    assert!(refused.is_some(), "a malformed pattern {rest:?} was accepted");
                }
            }
            1 => {
                routes.websocket(&rest);
                if routes.error.take().is_none() {
                    ws.push(parse_pattern(&rest).expect("accepted, so it parses"));
                }
            }
            2 => {
                let mut c = Cors::new().allow_origin(&rest).allow_credentials(op & 0x20 != 0);
                if op & 0x10 != 0 {
                    c = c.allow_any_origin();
                }
                if op & 0x40 != 0 {
                    c = c.allow_headers(&["Content-Type"]);
                }
                routes.cors(c.clone());
                cors = Some(c);
            }
            _ => requests.push((op, rest)),
        }
    }
    routes.before(|_, _, req| req.path().contains("/deny").then(|| HttpResponse::error(403)));

    let (handle, _commands) = ServerHandle::new();
    let mut core = Core::new(ServerConfig::default(), handle);
    for (op, target) in requests {
        if target.contains(['\r', '\n', ' ']) || target.is_empty() {
            continue;
        }
        let mut builder = HttpRequest::builder(method(op / 4), &target);
        let with_origin = op & 0x20 != 0;
        if with_origin {
            builder = builder.header("Origin", "https://a.example");
            if op & 0x40 != 0 {
                builder = builder.header("Access-Control-Request-Method", "PUT");
            }
        }
        let mut req = builder.build();
        let resp = routes.handle(&mut (), &mut Context { core: &mut core }, &mut req);
        check_cors(cors.is_some(), &req, &resp);
        if cors.is_some() && Cors::is_preflight(&req) {
            assert_eq!(resp.status(), 204, "a preflight");
            continue;
        }
        if req.path().contains("/deny") {
            assert_eq!(resp.status(), 403, "the before-middleware answers first");
            continue;
        }
        check_route(&model, &ws, &req, &resp);
    }
}

/// The answer is what the model says: the most specific route for the
/// method, else 405 / OPTIONS 204 with the union of the path's methods,
/// else 400 for a WebSocket path, else 404.
fn check_route(model: &[Registered], ws: &[Vec<Segment>], req: &HttpRequest, resp: &HttpResponse) {
    let method = req.method();
    let answers = |m: &Option<Method>| match m {
        None => 1,
        Some(m) if m == method => 3,
        Some(Method::Get) if *method == Method::Head => 2,
        Some(_) => 0,
    };
    let best = model
        .iter()
        .filter_map(|r| Some((naive_match(&r.segments, req.path())?, r)))
        .filter(|(_, r)| answers(&r.method) > 0)
        .max_by(|((a, _), ra), ((b, _), rb)| a.cmp(b).then(answers(&ra.method).cmp(&answers(&rb.method))));
    if let Some(((_, captures), r)) = best {
        let name = r.method.as_ref().map_or("ANY", Method::as_str);
        assert_eq!(req.params(), captures, "{method} {}", req.path());
        let want = echo(name, &r.pattern, req);
        assert_eq!(
            (resp.status(), resp.body()),
            (200, want.as_bytes()),
            "{method} {}",
            req.path()
        );
        return;
    }
    let methods: Vec<&Method> = model
        .iter()
        .filter(|r| naive_match(&r.segments, req.path()).is_some())
        .filter_map(|r| r.method.as_ref())
        .collect();
    let want = if !methods.is_empty() {
        let options = *method == Method::Options;
        let status = if options { 204 } else { 405 };
        assert_eq!(resp.header("allow"), Some(allow_list(methods, options).as_str()));
        status
    } else if ws.iter().any(|w| naive_match(w, req.path()).is_some()) {
        400
    } else {
        404
    };
    assert_eq!(resp.status(), want, "{method} {}", req.path());
}

/// No CORS header without an `Origin` or a policy; never `*` with
/// credentials; `Vary: Origin` whenever the answer depends on it.
fn check_cors(policy: bool, req: &HttpRequest, resp: &HttpResponse) {
    let acao = resp.header("access-control-allow-origin");
    let any_cors = resp
        .headers()
        .iter()
        .any(|(k, _)| k.to_ascii_lowercase().starts_with("access-control-"));
    if !policy || req.header("origin").is_none() {
        assert!(!any_cors, "CORS headers without a policy and an Origin: {resp:?}");
        return;
    }
    if resp.header("access-control-allow-credentials").is_some() {
        assert_ne!(acao, Some("*"), "`*` with credentials");
    }
    if acao.is_some_and(|o| o != "*") {
        assert!(resp.header("vary").is_some_and(|v| v.contains("Origin")), "{resp:?}");
    }
}
