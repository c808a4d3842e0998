//! Route patterns and the tree that matches paths against them.
//!
//! A pattern is a path whose segments are literals (`users`), named
//! parameters (`:id`, one non-empty segment) or, last, a wildcard (`*path`,
//! the rest of the path, `/`s included, possibly empty; a bare `*` is the
//! unnamed wildcard `*`, as hvws's older `prefix*` patterns had it).
//!
//! Patterns live in a tree of segments, so a lookup costs a walk down the
//! path's depth, whatever the number of routes. At each segment a literal
//! beats a parameter and a parameter beats a wildcard; when the more
//! specific branch dead-ends further down (`/users/new` against
//! `/users/:id/posts`), the walk backs up and tries the next. Since each
//! node is reached at most once per path, a lookup never visits more than
//! the tree's nodes, even when it backtracks.
//!
//! Matching uses the raw (still percent-encoded) segments, so `%2F` never
//! splits a segment; the captured values are decoded afterwards
//! ([`decode_param`]).

use std::fmt;

/// A route pattern that cannot be registered, or that conflicts with one
/// registered before. [`Routes`](crate::Routes) keeps the first one and
/// [`Server::init`](crate::Server::init) fails with it
/// ([`ServerError::InvalidRoute`](crate::ServerError::InvalidRoute)); each
/// variant says how to fix the pattern.
///
/// ```
/// use hvws::{RouteError, Routes, HttpResponse};
/// let mut routes: Routes<()> = Routes::default();
/// routes
///     .get("/users/:id", |_, _, _| HttpResponse::text("a user"))
///     .get("/users/:name/posts", |_, _, _| HttpResponse::text("posts"));
/// assert!(matches!(routes.check(), Err(RouteError::ParamConflict { .. })));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The pattern does not start with `/`. Write the path as a client
    /// sends it: `/health`, not `health`.
    #[error("route pattern {pattern:?} must start with '/'")]
    NoLeadingSlash {
        /// The pattern as given.
        pattern: String,
    },
    /// A `:` segment without a name (`/users/:`). Name it: `/users/:id`.
    #[error("route pattern {pattern:?} has a parameter without a name")]
    EmptyParamName {
        /// The pattern as given.
        pattern: String,
    },
    /// A parameter or wildcard name with characters other than ASCII
    /// letters, digits and `_` (`/files/:name.json`). A parameter takes a
    /// whole segment: match `/files/:file` and split the extension off
    /// [`HttpRequest::param`](crate::HttpRequest::param) in the handler.
    #[error("route pattern {pattern:?}: {name:?} is not a parameter name (use letters, digits and '_')")]
    InvalidParamName {
        /// The pattern as given.
        pattern: String,
        /// The name as written, without its `:` or `*`.
        name: String,
    },
    /// The same name twice in one pattern (`/a/:id/b/:id`). Rename one: a
    /// request holds one value per name.
    #[error("route pattern {pattern:?} names two parameters {name:?}")]
    DuplicateParamName {
        /// The pattern as given.
        pattern: String,
        /// The repeated name.
        name: String,
    },
    /// A wildcard (`*rest`) that is not the last segment, or a `*` inside a
    /// segment (`/api*`). A wildcard takes the rest of the path, so it
    /// ends the pattern, and takes a whole segment: write `/api/*`.
    #[error("route pattern {pattern:?}: a wildcard must be the whole last segment")]
    MisplacedWildcard {
        /// The pattern as given.
        pattern: String,
    },
    /// Two patterns give different names to the parameter (or wildcard) in
    /// the same place (`/users/:id` and `/users/:name/posts`): a request
    /// to `/users/7/posts` could not say which name `7` has. Use one name
    /// in every pattern that shares the prefix.
    #[error("route pattern {pattern:?} names {new:?} the parameter that an earlier pattern names {existing:?}")]
    ParamConflict {
        /// The pattern that was refused.
        pattern: String,
        /// The name registered first.
        existing: String,
        /// The name this pattern used.
        new: String,
    },
}

/// One segment of a parsed pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Must equal the raw path segment.
    Literal(String),
    /// Any one non-empty segment, captured under this name.
    Param(String),
    /// The rest of the path, captured under this name (`*` when unnamed).
    Wildcard(String),
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses `pattern` into segments, checking it on its own (conflicts with
/// other patterns are the tree's business).
pub(crate) fn parse_pattern(pattern: &str) -> Result<Vec<Segment>, RouteError> {
    let owned = || pattern.to_owned();
    let Some(rest) = pattern.strip_prefix('/') else {
        return Err(RouteError::NoLeadingSlash { pattern: owned() });
    };
    let raw: Vec<&str> = rest.split('/').collect();
    let mut segments = Vec::with_capacity(raw.len());
    for (i, seg) in raw.iter().enumerate() {
        let parsed = if let Some(name) = seg.strip_prefix(':') {
            if name.is_empty() {
                return Err(RouteError::EmptyParamName { pattern: owned() });
            }
            Segment::Param(name.to_owned())
        } else if let Some(name) = seg.strip_prefix('*') {
            if i + 1 != raw.len() {
                return Err(RouteError::MisplacedWildcard { pattern: owned() });
            }
            Segment::Wildcard(if name.is_empty() { "*" } else { name }.to_owned())
        } else if seg.contains('*') {
            return Err(RouteError::MisplacedWildcard { pattern: owned() });
        } else {
            Segment::Literal((*seg).to_owned())
        };
        if let Segment::Param(name) | Segment::Wildcard(name) = &parsed {
            if name != "*" && !valid_name(name) {
                return Err(RouteError::InvalidParamName {
                    pattern: owned(),
                    name: name.clone(),
                });
            }
            let seen = segments
                .iter()
                .any(|s| matches!(s, Segment::Param(n) | Segment::Wildcard(n) if n == name));
            if seen {
                return Err(RouteError::DuplicateParamName {
                    pattern: owned(),
                    name: name.clone(),
                });
            }
        }
        segments.push(parsed);
    }
    Ok(segments)
}

/// A node: what the path may continue with after the segments that led
/// here.
#[derive(Default)]
struct Node {
    /// Literal next segments, sorted, for a binary search.
    literals: Vec<(Box<str>, Node)>,
    /// A parameter as the next segment.
    param: Option<(Box<str>, Box<Node>)>,
    /// A wildcard for the rest, and the value of its pattern.
    wildcard: Option<(Box<str>, usize)>,
    /// The value of the pattern that ends here.
    value: Option<usize>,
}

/// A captured parameter: its name in the tree and its raw value in the
/// path.
pub(crate) type Capture<'t, 'p> = (&'t str, &'p str);

/// Patterns to values (indices into the caller's own table).
#[derive(Default)]
pub(crate) struct PathTree {
    root: Node,
    len: usize,
}

impl fmt::Debug for PathTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PathTree").field("patterns", &self.len).finish()
    }
}

/// Splits `rest` (the path after a `/`) into its first segment and what
/// follows the next `/`, if there is one.
impl Node {
    /// The index of the literal child `seg`. A few children are scanned,
    /// lengths first (most differ, and then no byte is compared); many are
    /// searched in their sorted order.
    #[inline]
    fn literal(&self, seg: &str) -> Option<usize> {
        if self.literals.len() <= 8 {
            self.literals
                .iter()
                .position(|(k, _)| k.len() == seg.len() && **k == *seg)
        } else {
            self.literals.binary_search_by(|(k, _)| (**k).cmp(seg)).ok()
        }
    }
}

fn split(rest: &str) -> (&str, Option<&str>) {
    // A byte search: `split_once('/')`'s char searcher was most of a short
    // path's routing.
    match rest.bytes().position(|b| b == b'/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    }
}

impl PathTree {
    /// How many distinct patterns the tree holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The value of `pattern`: the one it has if registered before,
    /// otherwise `new` (then stored). Fails, changing nothing, if a
    /// parameter or wildcard here is named otherwise by an earlier
    /// pattern.
    pub fn insert(&mut self, pattern: &str, segments: &[Segment], new: usize) -> Result<usize, RouteError> {
        self.check_names(pattern, segments)?;
        let mut node = &mut self.root;
        for seg in segments {
            node = match seg {
                Segment::Literal(lit) => {
                    let i = match node.literals.binary_search_by(|(k, _)| (**k).cmp(lit.as_str())) {
                        Ok(i) => i,
                        Err(i) => {
                            node.literals.insert(i, (lit.as_str().into(), Node::default()));
                            i
                        }
                    };
                    &mut node.literals[i].1
                }
                Segment::Param(name) => {
                    &mut node
                        .param
                        .get_or_insert_with(|| (name.as_str().into(), Box::default()))
                        .1
                }
                Segment::Wildcard(name) => {
                    let value = node.wildcard.get_or_insert_with(|| (name.as_str().into(), new)).1;
                    return Ok(self.counted(value, new));
                }
            };
        }
        let value = *node.value.get_or_insert(new);
        Ok(self.counted(value, new))
    }

    /// Counts `value` if it is the `new` one, and returns it.
    fn counted(&mut self, value: usize, new: usize) -> usize {
        if value == new {
            self.len += 1;
        }
        value
    }

    /// Fails if `segments` name a parameter or wildcard unlike the tree.
    fn check_names(&self, pattern: &str, segments: &[Segment]) -> Result<(), RouteError> {
        let conflict = |existing: &str, new: &str| RouteError::ParamConflict {
            pattern: pattern.to_owned(),
            existing: existing.to_owned(),
            new: new.to_owned(),
        };
        let mut node = &self.root;
        for seg in segments {
            node = match seg {
                Segment::Literal(lit) => match node.literals.binary_search_by(|(k, _)| (**k).cmp(lit.as_str())) {
                    Ok(i) => &node.literals[i].1,
                    Err(_) => return Ok(()),
                },
                Segment::Param(name) => match &node.param {
                    Some((have, _)) if **have != **name => return Err(conflict(have, name)),
                    Some((_, child)) => child,
                    None => return Ok(()),
                },
                Segment::Wildcard(name) => {
                    return match &node.wildcard {
                        Some((have, _)) if **have != **name => Err(conflict(have, name)),
                        _ => Ok(()),
                    }
                }
            };
        }
        Ok(())
    }

    /// The most specific pattern that matches `path` and whose value
    /// `accept` takes, with its captures in pattern order. `path` must
    /// start with `/` (anything else matches nothing).
    pub fn lookup<'t, 'p>(
        &'t self,
        path: &'p str,
        accept: &dyn Fn(usize) -> bool,
        captures: &mut Vec<Capture<'t, 'p>>,
    ) -> Option<usize> {
        captures.clear();
        let rest = path.strip_prefix('/')?;
        walk(&self.root, Some(rest), accept, captures)
    }

    /// Calls `found` with the value of every pattern that matches `path`,
    /// most specific first.
    pub fn matching(&self, path: &str, found: &mut dyn FnMut(usize)) {
        if let Some(rest) = path.strip_prefix('/') {
            walk_all(&self.root, Some(rest), found);
        }
    }
}

/// Depth first, literal before parameter before wildcard: the first
/// accepted value is the most specific match.
fn walk<'t, 'p>(
    node: &'t Node,
    rest: Option<&'p str>,
    accept: &dyn Fn(usize) -> bool,
    captures: &mut Vec<Capture<'t, 'p>>,
) -> Option<usize> {
    let Some(rest) = rest else {
        return node.value.filter(|&v| accept(v));
    };
    let (seg, next) = split(rest);
    if let Some(i) = node.literal(seg) {
        if let Some(v) = walk(&node.literals[i].1, next, accept, captures) {
            return Some(v);
        }
    }
    if let Some((name, child)) = &node.param {
        if !seg.is_empty() {
            captures.push((name, seg));
            if let Some(v) = walk(child, next, accept, captures) {
                return Some(v);
            }
            captures.pop();
        }
    }
    match &node.wildcard {
        Some((name, v)) if accept(*v) => {
            captures.push((name, rest));
            Some(*v)
        }
        _ => None,
    }
}

fn walk_all(node: &Node, rest: Option<&str>, found: &mut dyn FnMut(usize)) {
    let Some(rest) = rest else {
        if let Some(v) = node.value {
            found(v);
        }
        return;
    };
    let (seg, next) = split(rest);
    if let Some(i) = node.literal(seg) {
        walk_all(&node.literals[i].1, next, found);
    }
    if let Some((_, child)) = &node.param {
        if !seg.is_empty() {
            walk_all(child, next, found);
        }
    }
    if let Some((_, v)) = node.wildcard {
        found(v);
    }
}

/// Percent-decodes a captured value: `%2F` becomes `/` inside the value
/// (it never split the path), `+` stays `+` (that is a form's rule, not a
/// path's), a `%` without two hex digits stays as it is, and bytes that are
/// not UTF-8 become U+FFFD.
pub(crate) fn decode_param(raw: &str) -> String {
    if !raw.contains('%') {
        return raw.to_owned();
    }
    String::from_utf8_lossy(&crate::proto::http::percent_decode_bytes(raw.as_bytes(), false)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree of `patterns`, each valued by its index.
    fn tree(patterns: &[&str]) -> PathTree {
        let mut t = PathTree::default();
        for (i, p) in patterns.iter().enumerate() {
            let segs = parse_pattern(p).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(t.insert(p, &segs, i), Ok(i), "{p} registered twice");
        }
        t
    }

    /// `path` matches `patterns[want]` with `captures`, or nothing.
    #[track_caller]
    fn hit(t: &PathTree, patterns: &[&str], path: &str, want: Option<(&str, &[(&str, &str)])>) {
        let mut caps = Vec::new();
        let got = t.lookup(path, &|_| true, &mut caps).map(|v| patterns[v]);
        let got = got.map(|p| (p, caps.clone()));
        let want = want.map(|(p, c)| (p, c.to_vec()));
        assert_eq!(got, want, "GET {path}");
    }

    #[test]
    fn literal_beats_param_beats_wildcard() {
        let p = ["/users/new", "/users/:id", "/users/*rest", "/users/:id/posts/:post_id"];
        let t = tree(&p);
        hit(&t, &p, "/users/new", Some(("/users/new", &[])));
        hit(&t, &p, "/users/7", Some(("/users/:id", &[("id", "7")])));
        hit(&t, &p, "/users/7/x", Some(("/users/*rest", &[("rest", "7/x")])));
        hit(
            &t,
            &p,
            "/users/7/posts/9",
            Some(("/users/:id/posts/:post_id", &[("id", "7"), ("post_id", "9")])),
        );
        // The literal `new` dead-ends under /posts: back up to `:id`.
        hit(
            &t,
            &p,
            "/users/new/posts/1",
            Some(("/users/:id/posts/:post_id", &[("id", "new"), ("post_id", "1")])),
        );
        // ... and `:id` dead-ends at /posts/ (an empty segment is no
        // parameter): back up to the wildcard.
        hit(
            &t,
            &p,
            "/users/new/posts/",
            Some(("/users/*rest", &[("rest", "new/posts/")])),
        );
        hit(&t, &p, "/users", None);
    }

    #[test]
    fn wildcard_takes_the_rest_maybe_empty_but_not_the_slash() {
        let p = ["/files/*path", "/*"];
        let t = tree(&p);
        hit(&t, &p, "/files/a/b.txt", Some(("/files/*path", &[("path", "a/b.txt")])));
        hit(&t, &p, "/files/", Some(("/files/*path", &[("path", "")])));
        // `/files` has no segment for the wildcard: the root's takes it.
        hit(&t, &p, "/files", Some(("/*", &[("*", "files")])));
        hit(&t, &p, "/", Some(("/*", &[("*", "")])));
        hit(&t, &p, "files", None);
        hit(&t, &p, "", None);
    }

    #[test]
    fn segments_are_raw_and_trailing_slashes_count() {
        let p = ["/", "/a", "/a/", "/a/:x", "/a//b"];
        let t = tree(&p);
        hit(&t, &p, "/", Some(("/", &[])));
        hit(&t, &p, "/a", Some(("/a", &[])));
        hit(&t, &p, "/a/", Some(("/a/", &[])));
        hit(&t, &p, "/a//b", Some(("/a//b", &[])));
        // `%2F` is not a `/`: one segment, captured raw.
        hit(&t, &p, "/a/b%2Fc", Some(("/a/:x", &[("x", "b%2Fc")])));
        hit(&t, &p, "/A", None);
    }

    #[test]
    fn the_same_pattern_keeps_its_value() {
        let mut t = PathTree::default();
        let segs = parse_pattern("/a/:id").unwrap();
        assert_eq!(t.insert("/a/:id", &segs, 0), Ok(0));
        assert_eq!(t.insert("/a/:id", &segs, 1), Ok(0));
        let segs = parse_pattern("/a/*").unwrap();
        assert_eq!(t.insert("/a/*", &segs, 1), Ok(1));
        assert_eq!(t.insert("/a/*", &segs, 2), Ok(1));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn accept_backtracks_past_a_refused_value() {
        let p = ["/users/new", "/users/:id"];
        let t = tree(&p);
        let mut caps = Vec::new();
        assert_eq!(t.lookup("/users/new", &|v| v != 0, &mut caps), Some(1));
        assert_eq!(caps, [("id", "new")]);
        assert_eq!(t.lookup("/users/new", &|_| false, &mut caps), None);
        assert!(caps.is_empty(), "captures of dead ends are dropped: {caps:?}");
        let mut all = Vec::new();
        t.matching("/users/new", &mut |v| all.push(v));
        assert_eq!(all, [0, 1]);
    }

    #[test]
    fn bad_patterns() {
        let err = |p: &str| parse_pattern(p).unwrap_err();
        let pattern = |p: &str| p.to_owned();
        assert_eq!(
            err("users"),
            RouteError::NoLeadingSlash {
                pattern: pattern("users")
            }
        );
        assert_eq!(err(""), RouteError::NoLeadingSlash { pattern: pattern("") });
        assert_eq!(
            err("/users/:"),
            RouteError::EmptyParamName {
                pattern: pattern("/users/:")
            }
        );
        assert_eq!(
            err("/f/:name.json"),
            RouteError::InvalidParamName {
                pattern: pattern("/f/:name.json"),
                name: "name.json".into()
            }
        );
        assert_eq!(
            err("/a/:id/b/:id"),
            RouteError::DuplicateParamName {
                pattern: pattern("/a/:id/b/:id"),
                name: "id".into()
            }
        );
        assert_eq!(
            err("/a/:rest/*rest"),
            RouteError::DuplicateParamName {
                pattern: pattern("/a/:rest/*rest"),
                name: "rest".into()
            }
        );
        assert_eq!(
            err("/f/*p/x"),
            RouteError::MisplacedWildcard {
                pattern: pattern("/f/*p/x")
            }
        );
        assert_eq!(
            err("/f/*/x"),
            RouteError::MisplacedWildcard {
                pattern: pattern("/f/*/x")
            }
        );
        assert_eq!(
            err("/api*"),
            RouteError::MisplacedWildcard {
                pattern: pattern("/api*")
            }
        );
        // A colon inside a segment is a literal (`/v1/model:predict`).
        assert_eq!(
            parse_pattern("/v1/m:predict/*"),
            Ok(vec![
                Segment::Literal("v1".into()),
                Segment::Literal("m:predict".into()),
                Segment::Wildcard("*".into())
            ])
        );
    }

    #[test]
    fn names_in_the_same_place_must_agree() {
        let mut t = tree(&["/users/:id", "/files/*path"]);
        let conflict = |t: &mut PathTree, p: &str| {
            let segs = parse_pattern(p).unwrap();
            t.insert(p, &segs, 9).unwrap_err()
        };
        assert_eq!(
            conflict(&mut t, "/users/:name/x"),
            RouteError::ParamConflict {
                pattern: "/users/:name/x".into(),
                existing: "id".into(),
                new: "name".into()
            }
        );
        assert_eq!(
            conflict(&mut t, "/files/*rest"),
            RouteError::ParamConflict {
                pattern: "/files/*rest".into(),
                existing: "path".into(),
                new: "rest".into()
            }
        );
        assert_eq!(t.len(), 2, "a refused pattern adds nothing");
        // The same names, a literal beside, a wildcard below: all fine.
        for (i, p) in ["/users/:id/x", "/users/me", "/users/:id/*rest"].iter().enumerate() {
            let segs = parse_pattern(p).unwrap();
            assert_eq!(t.insert(p, &segs, 10 + i), Ok(10 + i));
        }
    }

    #[test]
    fn decoding_values() {
        assert_eq!(decode_param("a%2Fb"), "a/b");
        assert_eq!(decode_param("caf%C3%A9+x"), "café+x");
        assert_eq!(decode_param("100%"), "100%");
        assert_eq!(decode_param("%4"), "%4");
        assert_eq!(decode_param("%zz%41"), "%zzA");
        assert_eq!(decode_param("%FF"), "\u{FFFD}");
        assert_eq!(decode_param("plain"), "plain");
    }
}
