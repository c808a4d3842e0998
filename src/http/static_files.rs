//! Static files (dasHV's `SERVE_FILE` and `STATIC`): a response for one
//! file, or for a path below a directory, with the content type, the
//! validators, conditional requests and single byte ranges done here. The
//! body is a file handle that the connection reads as the socket drains;
//! these functions only decide what to send.
//!
//! `serve_dir` is where untrusted paths meet the file system, so it checks
//! twice: the path's segments before anything is opened (no `..`, no
//! absolute path, no backslash, colon or NUL), then the canonical path of
//! what was found, which must lie under the canonical root (symlinks that
//! lead out are refused, symlinks that stay in are followed).

mod conditional;
#[cfg(test)]
mod tests;

use std::fs::{self, File, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use self::conditional::{Precondition, RangeAnswer, Validators};
use crate::proto::http::{HttpRequest, HttpResponse, Method};

/// How [`serve_dir_with`] and [`serve_file_with`] answer, beyond what
/// [`serve_dir`] and [`serve_file`] do by default.
///
/// ```
/// use hvws::StaticOptions;
/// let assets = StaticOptions {
///     cache_control: Some("public, max-age=3600".into()),
///     ..StaticOptions::default()
/// };
/// assert_eq!(assets.index.as_deref(), Some("index.html"));
/// assert!(!assets.dotfiles);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticOptions {
    /// The `Cache-Control` value sent with each file (and with its 304s).
    /// Default `None`: browsers then revalidate with the ETag when they
    /// see fit, which is right while files change; set a `max-age` for
    /// assets whose names change when their content does.
    pub cache_control: Option<String>,
    /// The file served for a directory. Default `Some("index.html")`;
    /// `None` makes every directory a 404. There are never listings.
    pub index: Option<String>,
    /// Whether [`serve_dir_with`] serves names that start with `.` (and
    /// what is below them). Default `false`, so a `.git` or `.env` copied
    /// into the root by accident is a 404; turn it on for `.well-known`.
    pub dotfiles: bool,
}

impl Default for StaticOptions {
    fn default() -> StaticOptions {
        StaticOptions {
            cache_control: None,
            index: Some("index.html".to_owned()),
            dotfiles: false,
        }
    }
}

/// The response for the file at `path`: 200 with the file as the body
/// (streamed from disk by the server), or what the request's headers call
/// for. A missing file or a directory is 404, an unreadable one 403.
///
/// - Only GET and HEAD; others get 405 with `Allow: GET, HEAD`. A HEAD gets
///   the GET response, whose body the server leaves out.
/// - `Content-Type` from the extension (`application/octet-stream` when it
///   says nothing), with `; charset=utf-8` for text, JavaScript and JSON;
///   `Last-Modified`, a strong `ETag` made of the length and the
///   modification time, `Accept-Ranges: bytes`.
/// - `If-None-Match` (lists, `*`, weak tags) and `If-Modified-Since` give
///   304; `If-Match` and `If-Unmodified-Since` give 412 (RFC 9110 §13).
/// - A single `Range` (`bytes=0-99`, `bytes=100-`, `bytes=-100`) gives 206
///   with `Content-Range`, one past the end 416; several ranges, other
///   units and malformed values get the whole file, and so does a range
///   whose `If-Range` no longer holds.
///
/// ```
/// use hvws::{serve_file, HttpRequest, Method};
/// let path = std::env::temp_dir().join(format!("hvws-doc-{}.css", std::process::id()));
/// std::fs::write(&path, "body { color: red }")?;
///
/// let first = serve_file(&HttpRequest::builder(Method::Get, "/style.css").build(), &path);
/// assert_eq!(first.status(), 200);
/// assert_eq!(first.header("content-type"), Some("text/css; charset=utf-8"));
/// assert_eq!(first.body_len(), 19);
///
/// // The browser's next visit, with the tag it kept: nothing to send.
/// let etag = first.header("etag").unwrap();
/// let again = HttpRequest::builder(Method::Get, "/style.css").header("If-None-Match", etag).build();
/// assert_eq!(serve_file(&again, &path).status(), 304);
///
/// let tail = HttpRequest::builder(Method::Get, "/style.css").header("Range", "bytes=-5").build();
/// let tail = serve_file(&tail, &path);
/// assert_eq!(tail.status(), 206);
/// assert_eq!(tail.header("content-range"), Some("bytes 14-18/19"));
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn serve_file(req: &HttpRequest, path: impl AsRef<Path>) -> HttpResponse {
    serve_file_with(req, path, &StaticOptions::default())
}

/// [`serve_file`] with [`StaticOptions`]; only `cache_control` applies to
/// a single file.
///
/// ```
/// use hvws::{serve_file_with, HttpRequest, Method, StaticOptions};
/// let path = std::env::temp_dir().join(format!("hvws-doc-{}.wasm", std::process::id()));
/// std::fs::write(&path, b"\0asm")?;
/// let opts = StaticOptions { cache_control: Some("public, max-age=60".into()), ..Default::default() };
/// let resp = serve_file_with(&HttpRequest::builder(Method::Get, "/game.wasm").build(), &path, &opts);
/// assert_eq!(resp.header("content-type"), Some("application/wasm"));
/// assert_eq!(resp.header("cache-control"), Some("public, max-age=60"));
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn serve_file_with(req: &HttpRequest, path: impl AsRef<Path>, opts: &StaticOptions) -> HttpResponse {
    if let Some(refused) = method_not_allowed(req) {
        return refused;
    }
    let path = path.as_ref();
    respond(req, path, path, opts)
}

/// The response for `rel` below the directory `root`: what a route such
/// as `/static/*path` answers with, `rel` being the part of the path after
/// the mount point, already percent-decoded once.
///
/// Nothing outside `root` is ever served. 404 for a `..` segment, an
/// absolute `rel`, a backslash, a colon or a NUL in it (Windows drives
/// and streams are refused on every platform, so a site behaves the same
/// wherever it runs), a name starting with `.` (see
/// [`StaticOptions::dotfiles`]), and for a symlink that leads out of
/// `root`; a symlink that stays inside is followed. `.` segments and empty
/// ones (`a//b`) are skipped.
///
/// A directory is answered with its `index.html`, or 404 if it has none
/// (no listings). When it has one but its URL lacks the trailing slash
/// (`/static/docs`), the answer is a 301 to the URL with it
/// (`/static/docs/`, query kept), as nginx does, so that relative links in
/// the page (`<img src="logo.png">`) resolve inside the directory rather
/// than next to it. Everything else is as in [`serve_file`].
///
/// ```
/// use hvws::{serve_dir, HttpRequest, Method};
/// let root = std::env::temp_dir().join(format!("hvws-doc-site-{}", std::process::id()));
/// std::fs::create_dir_all(root.join("docs"))?;
/// std::fs::write(root.join("docs/index.html"), "<h1>Docs</h1>")?;
///
/// // `GET /static/docs/` through a route `/static/*path`:
/// let req = HttpRequest::builder(Method::Get, "/static/docs/").param("path", "docs/").build();
/// let page = serve_dir(&req, &root, req.param("path").unwrap_or(""));
/// assert_eq!((page.status(), page.body_len()), (200, 13));
///
/// let bare = HttpRequest::builder(Method::Get, "/static/docs").build();
/// let moved = serve_dir(&bare, &root, "docs");
/// assert_eq!((moved.status(), moved.header("location")), (301, Some("/static/docs/")));
///
/// let evil = HttpRequest::builder(Method::Get, "/static/..%2f..%2fetc%2fpasswd").build();
/// assert_eq!(serve_dir(&evil, &root, "../../etc/passwd").status(), 404);
/// # std::fs::remove_dir_all(&root)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn serve_dir(req: &HttpRequest, root: impl AsRef<Path>, rel: &str) -> HttpResponse {
    serve_dir_with(req, root, rel, &StaticOptions::default())
}

/// [`serve_dir`] with [`StaticOptions`]: a `Cache-Control`, another index
/// file or none, dotfiles.
///
/// ```
/// use hvws::{serve_dir_with, HttpRequest, Method, StaticOptions};
/// let root = std::env::temp_dir().join(format!("hvws-doc-wk-{}", std::process::id()));
/// std::fs::create_dir_all(root.join(".well-known"))?;
/// std::fs::write(root.join(".well-known/security.txt"), "Contact: a@b.c")?;
/// let req = HttpRequest::builder(Method::Get, "/.well-known/security.txt").build();
///
/// let hidden = serve_dir_with(&req, &root, ".well-known/security.txt", &StaticOptions::default());
/// assert_eq!(hidden.status(), 404);
/// let opts = StaticOptions { dotfiles: true, ..Default::default() };
/// let shown = serve_dir_with(&req, &root, ".well-known/security.txt", &opts);
/// assert_eq!(shown.status(), 200);
/// # std::fs::remove_dir_all(&root)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn serve_dir_with(req: &HttpRequest, root: impl AsRef<Path>, rel: &str, opts: &StaticOptions) -> HttpResponse {
    if let Some(refused) = method_not_allowed(req) {
        return refused;
    }
    let Some(segments) = safe_segments(rel, opts.dotfiles) else {
        log::debug!("static: refused path {rel:?}");
        return HttpResponse::error(404);
    };
    let root = match root.as_ref().canonicalize() {
        Ok(root) => root,
        Err(e) => {
            // A misconfigured root: 404 as for any missing file, logged at
            // debug only because every request would repeat it.
            log::debug!("static: root {}: {e}", root.as_ref().display());
            return HttpResponse::error(404);
        }
    };
    let mut requested = root.clone();
    requested.extend(&segments);
    let target = match inside(&root, &requested) {
        Ok(target) => target,
        Err(status) => return HttpResponse::error(status),
    };
    if !target.is_dir() {
        // `file.txt/` names no directory: 404, as the file system says.
        if req.path().ends_with('/') && !segments.is_empty() {
            return HttpResponse::error(404);
        }
        return respond(req, &target, &requested, opts);
    }
    let Some(index) = &opts.index else {
        return HttpResponse::error(404);
    };
    // The index may itself be a symlink: it gets the same check.
    let index_path = match inside(&root, &target.join(index)) {
        Ok(path) => path,
        Err(status) => return HttpResponse::error(status),
    };
    if !req.path().ends_with('/') {
        return add_slash(req);
    }
    respond(req, &index_path, Path::new(index), opts)
}

/// 405 for anything but GET and HEAD, the only methods a file answers.
fn method_not_allowed(req: &HttpRequest) -> Option<HttpResponse> {
    match req.method() {
        Method::Get | Method::Head => None,
        _ => Some(HttpResponse::error(405).with_header("Allow", "GET, HEAD")),
    }
}

/// The segments of `rel` to join onto the root, or `None` if `rel` could
/// name something outside it (or a hidden name, unless `dotfiles`).
///
/// The check is on the text, before any file is touched, and stricter
/// than any one platform needs: what is refused here is refused on Linux
/// and Windows alike.
fn safe_segments(rel: &str, dotfiles: bool) -> Option<Vec<&str>> {
    if rel.starts_with('/') || rel.contains(['\\', '\0']) {
        return None;
    }
    let mut segments = Vec::new();
    for seg in rel.split('/') {
        match seg {
            "" | "." => continue,
            ".." => return None,
            // `C:` would be a drive and `file::$DATA` a stream on Windows.
            _ if seg.contains(':') => return None,
            _ if seg.starts_with('.') && !dotfiles => return None,
            _ => segments.push(seg),
        }
    }
    Some(segments)
}

/// The canonical form of `path` if it is under `root` (itself canonical),
/// else the status to answer with. Canonicalizing resolves every symlink
/// on the way, so a link that leads out shows here; so does a Windows
/// device name (`NUL`, `CON`), whose canonical form is outside any root.
fn inside(root: &Path, path: &Path) -> Result<PathBuf, u16> {
    let canonical = path.canonicalize().map_err(|e| open_error_status(&e))?;
    if canonical.starts_with(root) {
        Ok(canonical)
    } else {
        log::debug!("static: {} leads out of {}", path.display(), root.display());
        Err(404)
    }
}

/// 403 when the file exists but may not be read, 404 for every other
/// reason a path cannot be opened (missing, a file used as a directory, a
/// symlink loop, a name too long), none of which the client should learn
/// more about.
fn open_error_status(e: &io::Error) -> u16 {
    match e.kind() {
        io::ErrorKind::PermissionDenied => 403,
        _ => 404,
    }
}

/// The 301 that adds the trailing slash to a directory's URL, query kept.
fn add_slash(req: &HttpRequest) -> HttpResponse {
    // One leading slash only: `//host/` would send the browser elsewhere.
    let mut location = format!("/{}/", req.path().trim_start_matches('/'));
    if !req.query().is_empty() {
        location.push('?');
        location.push_str(req.query());
    }
    HttpResponse::redirect(301, &location)
}

/// Opens `path` (a file, else 404) and answers `req` with it; the content
/// type comes from `name`, the name the client asked for, so that a
/// symlink `logo -> logo.v3.png` is typed by what the page expects.
fn respond(req: &HttpRequest, path: &Path, name: &Path, opts: &StaticOptions) -> HttpResponse {
    let (file, meta) = match open_regular(path) {
        Ok(opened) => opened,
        Err(status) => return HttpResponse::error(status),
    };
    let size = meta.len();
    let v = Validators::new(size, meta.modified().ok());
    let mut validators = vec![("ETag", v.etag.clone())];
    validators.extend(v.last_modified().map(|date| ("Last-Modified", date)));
    validators.extend(opts.cache_control.clone().map(|cc| ("Cache-Control", cc)));
    let resp = match conditional::preconditions(req, &v) {
        Precondition::Failed => return HttpResponse::error(412),
        Precondition::NotModified => HttpResponse::new(304),
        Precondition::Proceed => match conditional::range(req, &v, size) {
            RangeAnswer::Full => HttpResponse::file(file, 0, size),
            RangeAnswer::Partial { start, len } => HttpResponse::file(file, start, len)
                .with_status(206)
                .with_header("Content-Range", &format!("bytes {start}-{}/{size}", start + len - 1)),
            RangeAnswer::Unsatisfiable => {
                return HttpResponse::error(416).with_header("Content-Range", &format!("bytes */{size}"))
            }
        },
    };
    let resp = validators
        .iter()
        .fold(resp, |resp, (name, value)| resp.with_header(name, value));
    if resp.status() == 304 {
        return resp;
    }
    resp.with_header("Content-Type", &content_type(name))
        .with_header("Accept-Ranges", "bytes")
}

/// The file at `path` and its metadata, if it is a regular file.
///
/// The type is checked before opening: opening a FIFO blocks until a
/// writer appears, which would stall the whole tick, and a device such as
/// `/dev/zero` has no end. The metadata sent is the opened file's own.
fn open_regular(path: &Path) -> Result<(File, Metadata), u16> {
    let kind = fs::metadata(path).map_err(|e| open_error_status(&e))?;
    if !kind.is_file() {
        return Err(404);
    }
    let file = File::open(path).map_err(|e| open_error_status(&e))?;
    let meta = file.metadata().map_err(|e| {
        log::warn!("static: {}: {e}", path.display());
        500u16
    })?;
    if !meta.is_file() {
        // Replaced by something else between the two looks.
        return Err(404);
    }
    Ok((file, meta))
}

/// `Content-Type` for `name` from its extension. Text, JavaScript and JSON
/// are declared UTF-8, the encoding of nearly every such file today and
/// the one browsers would otherwise guess wrong for `text/plain`.
fn content_type(name: &Path) -> String {
    use mime_guess::mime;
    let guess = mime_guess::from_path(name).first_or_octet_stream();
    let textual = guess.type_() == mime::TEXT
        || matches!(guess.subtype().as_str(), "javascript" | "json")
        || guess.suffix() == Some(mime::JSON);
    if textual {
        format!("{}; charset=utf-8", guess.essence_str())
    } else {
        guess.essence_str().to_owned()
    }
}
