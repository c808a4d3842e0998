//! `serve_file` and `serve_dir` on real files in a temporary tree:
//!
//! ```text
//! <tmp>/hvws-static-<pid>-<test>/
//!     secret.txt          what no request below www/ may ever get
//!     www/                the root
//! ```

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;

const SECRET: &str = "TOP SECRET: the admin password";
/// 2001-09-09T01:46:40.5Z, set on every file so that validators are known.
const MTIME_MS: u64 = 1_000_000_000_500;
const DATE: &str = "Sun, 09 Sep 2001 01:46:40 GMT";

/// A temporary tree, removed when dropped.
struct Tree {
    base: PathBuf,
}

impl Tree {
    fn new(test: &str) -> Tree {
        let base = std::env::temp_dir().join(format!("hvws-static-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("www")).unwrap();
        let tree = Tree { base };
        tree.write_at(&tree.base.join("secret.txt"), SECRET);
        tree
    }

    fn root(&self) -> PathBuf {
        self.base.join("www")
    }

    /// Writes `contents` to `rel` below the root, making its folders.
    fn file(&self, rel: &str, contents: &str) -> PathBuf {
        self.write_at(&self.root().join(rel), contents)
    }

    fn write_at(&self, path: &Path, contents: &str) -> PathBuf {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
        let mtime = UNIX_EPOCH + Duration::from_millis(MTIME_MS);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        path.to_owned()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

fn get(target: &str) -> HttpRequest {
    HttpRequest::builder(Method::Get, target).build()
}

fn get_with(target: &str, name: &str, value: &str) -> HttpRequest {
    HttpRequest::builder(Method::Get, target).header(name, value).build()
}

/// The bytes the server would send as the body.
fn sent(resp: &HttpResponse) -> Vec<u8> {
    let Some((mut file, offset, len)) = resp.file_body() else {
        return resp.body().to_vec();
    };
    file.seek(SeekFrom::Start(offset)).unwrap();
    let mut bytes = Vec::new();
    file.take(len).read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes.len() as u64, len, "the file is shorter than the body");
    bytes
}

#[track_caller]
fn assert_sends(resp: &HttpResponse, status: u16, body: &str) {
    assert_eq!(resp.status(), status, "{resp:?}");
    assert_eq!(String::from_utf8(sent(resp)).unwrap(), body);
}

/// `rel` below the root of `tree` is a 404 whose body is not the secret.
#[track_caller]
fn refused(tree: &Tree, rel: &str) {
    let resp = serve_dir(&get("/static/x"), tree.root(), rel);
    assert_eq!(resp.status(), 404, "{rel:?}: {resp:?}");
    assert!(resp.file_body().is_none(), "{rel:?} sent a file");
    assert!(!String::from_utf8_lossy(&sent(&resp)).contains(SECRET), "{rel:?}");
}

#[test]
fn content_types_come_from_the_extension() {
    for (name, want) in [
        ("index.html", "text/html; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("notes.txt", "text/plain; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("module.mjs", "application/javascript; charset=utf-8"),
        ("level.json", "application/json; charset=utf-8"),
        ("game.wasm", "application/wasm"),
        ("logo.png", "image/png"),
        ("icon.svg", "image/svg+xml"),
        ("LOGO.PNG", "image/png"),
        ("save.unknownext", "application/octet-stream"),
        ("Makefile", "application/octet-stream"),
    ] {
        assert_eq!(content_type(Path::new(name)), want, "{name}");
    }
}

#[test]
fn a_file_with_its_headers() {
    let tree = Tree::new("headers");
    let path = tree.file("hello.txt", "hello, world");
    let resp = serve_file(&get("/hello.txt"), &path);
    assert_sends(&resp, 200, "hello, world");
    assert_eq!(resp.file_body().map(|(_, offset, len)| (offset, len)), Some((0, 12)));
    assert_eq!(resp.header("content-type"), Some("text/plain; charset=utf-8"));
    // 12 bytes, modified 1_000_000_000_500_000_000 ns after the epoch.
    assert_eq!(resp.header("etag"), Some("\"c-de0b6b3c5316500\""));
    assert_eq!(resp.header("last-modified"), Some(DATE));
    assert_eq!(resp.header("accept-ranges"), Some("bytes"));
    // The server sets the length from the body.
    assert_eq!(resp.header("content-length"), None);
    assert_eq!(resp.header("cache-control"), None);
}

#[test]
fn a_changed_file_gets_a_new_etag() {
    let tree = Tree::new("new-etag");
    let path = tree.file("a.txt", "one");
    let before = serve_file(&get("/a.txt"), &path);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_millis(MTIME_MS + 1))
        .unwrap();
    let after = serve_file(&get("/a.txt"), &path);
    assert_ne!(before.header("etag"), after.header("etag"));
    let revalidate = get_with("/a.txt", "If-None-Match", before.header("etag").unwrap());
    assert_sends(&serve_file(&revalidate, &path), 200, "one");
}

#[test]
fn head_gets_the_get_response() {
    let tree = Tree::new("head");
    let path = tree.file("a.txt", "0123456789");
    let head = serve_file(&HttpRequest::builder(Method::Head, "/a.txt").build(), &path);
    let get = serve_file(&get("/a.txt"), &path);
    assert_eq!((head.status(), head.body_len()), (200, 10));
    assert_eq!(head.headers(), get.headers());
    // Ranges are defined for GET only: HEAD gets the whole length.
    let ranged = HttpRequest::builder(Method::Head, "/a.txt")
        .header("Range", "bytes=0-1")
        .build();
    let ranged = serve_file(&ranged, &path);
    assert_eq!((ranged.status(), ranged.body_len()), (200, 10));
}

#[test]
fn other_methods_get_405_with_allow() {
    let tree = Tree::new("405");
    let path = tree.file("a.txt", "a");
    for method in [
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Other("PROPFIND".into()),
    ] {
        let req = HttpRequest::builder(method.clone(), "/static/a.txt").build();
        for resp in [serve_file(&req, &path), serve_dir(&req, tree.root(), "a.txt")] {
            assert_eq!(
                (resp.status(), resp.header("allow")),
                (405, Some("GET, HEAD")),
                "{method}"
            );
            assert!(resp.file_body().is_none());
        }
    }
}

#[test]
fn missing_and_directories_are_404_and_unreadable_403() {
    let tree = Tree::new("404");
    assert_eq!(serve_file(&get("/x"), tree.root().join("nope.txt")).status(), 404);
    assert_eq!(serve_file(&get("/x"), tree.root()).status(), 404);
    // A file used as a folder.
    let file = tree.file("a.txt", "a");
    assert_eq!(serve_file(&get("/x"), file.join("b")).status(), 404);
    // Tests run as root here, which reads any file: the mapping is checked
    // on the errors themselves.
    assert_eq!(open_error_status(&io::ErrorKind::PermissionDenied.into()), 403);
    assert_eq!(open_error_status(&io::ErrorKind::NotFound.into()), 404);
}

#[cfg(unix)]
#[test]
fn fifos_and_devices_are_not_opened() {
    let tree = Tree::new("fifo");
    let fifo = tree.root().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // Opening the FIFO would block this test forever.
    assert_eq!(serve_file(&get("/pipe"), &fifo).status(), 404);
    assert_eq!(serve_dir(&get("/static/pipe"), tree.root(), "pipe").status(), 404);
    assert_eq!(serve_file(&get("/zero"), "/dev/zero").status(), 404);
}

#[test]
fn not_modified_carries_the_validators_and_no_body() {
    let tree = Tree::new("304");
    let path = tree.file("a.css", "a {}");
    let opts = StaticOptions {
        cache_control: Some("public, max-age=60".into()),
        ..StaticOptions::default()
    };
    let first = serve_file_with(&get("/a.css"), &path, &opts);
    let etag = first.header("etag").unwrap();
    for (name, value) in [
        ("If-None-Match", etag.to_owned()),
        ("If-None-Match", format!("W/{etag}")),
        ("If-None-Match", format!("\"old\", {etag}")),
        ("If-None-Match", "*".to_owned()),
        ("If-Modified-Since", DATE.to_owned()),
    ] {
        let resp = serve_file_with(&get_with("/a.css", name, &value), &path, &opts);
        assert_eq!(resp.status(), 304, "{name}: {value}");
        assert_eq!(resp.body_len(), 0);
        assert_eq!(resp.header("etag"), Some(etag));
        assert_eq!(resp.header("last-modified"), Some(DATE));
        assert_eq!(resp.header("cache-control"), Some("public, max-age=60"));
        assert_eq!(resp.header("content-type"), None);
    }
}

#[test]
fn modified_files_are_sent_again() {
    let tree = Tree::new("200-again");
    let path = tree.file("a.css", "a {}");
    let stale_ims = get_with("/a.css", "If-Modified-Since", "Sun, 09 Sep 2001 01:46:39 GMT");
    assert_sends(&serve_file(&stale_ims, &path), 200, "a {}");
    let bad_ims = get_with("/a.css", "If-Modified-Since", "the other day");
    assert_sends(&serve_file(&bad_ims, &path), 200, "a {}");
    // If-None-Match decides alone, even with a current If-Modified-Since.
    let both = HttpRequest::builder(Method::Get, "/a.css")
        .header("If-None-Match", "\"old\"")
        .header("If-Modified-Since", DATE)
        .build();
    assert_sends(&serve_file(&both, &path), 200, "a {}");
}

#[test]
fn failed_preconditions_are_412() {
    let tree = Tree::new("412");
    let path = tree.file("a.txt", "a");
    let resp = serve_file(&get_with("/a.txt", "If-Match", "\"other\""), &path);
    assert_eq!(resp.status(), 412);
    assert!(resp.file_body().is_none());
    let early = get_with("/a.txt", "If-Unmodified-Since", "Sat, 08 Sep 2001 00:00:00 GMT");
    assert_eq!(serve_file(&early, &path).status(), 412);
    let late = get_with("/a.txt", "If-Unmodified-Since", DATE);
    assert_sends(&serve_file(&late, &path), 200, "a");
}

#[track_caller]
fn ranged(path: &Path, range: &str, want: (u16, Option<&str>, &str)) {
    let resp = serve_file(&get_with("/f", "Range", range), path);
    assert_sends(&resp, want.0, want.2);
    assert_eq!(resp.header("content-range"), want.1, "Range: {range}");
}

#[test]
fn single_ranges_are_206_with_content_range() {
    let tree = Tree::new("206");
    let path = tree.file("digits.txt", "0123456789");
    ranged(&path, "bytes=2-5", (206, Some("bytes 2-5/10"), "2345"));
    ranged(&path, "bytes=7-", (206, Some("bytes 7-9/10"), "789"));
    ranged(&path, "bytes=-3", (206, Some("bytes 7-9/10"), "789"));
    ranged(&path, "bytes=0-0", (206, Some("bytes 0-0/10"), "0"));
    ranged(&path, "bytes=8-100", (206, Some("bytes 8-9/10"), "89"));
    ranged(&path, "bytes=-50", (206, Some("bytes 0-9/10"), "0123456789"));
    let resp = serve_file(&get_with("/f", "Range", "bytes=3-4"), &path);
    assert_eq!(resp.file_body().map(|(_, offset, len)| (offset, len)), Some((3, 2)));
    assert_eq!(resp.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(resp.header("etag").is_some());
    assert_eq!(resp.header("accept-ranges"), Some("bytes"));
}

#[test]
fn unsatisfiable_ranges_are_416() {
    let tree = Tree::new("416");
    let path = tree.file("digits.txt", "0123456789");
    for range in ["bytes=10-", "bytes=10-20", "bytes=-0"] {
        let resp = serve_file(&get_with("/f", "Range", range), &path);
        assert_eq!(resp.status(), 416, "{range}");
        assert_eq!(resp.header("content-range"), Some("bytes */10"));
        assert!(resp.file_body().is_none());
    }
    let empty = tree.file("empty.txt", "");
    let resp = serve_file(&get_with("/f", "Range", "bytes=0-"), &empty);
    assert_eq!((resp.status(), resp.header("content-range")), (416, Some("bytes */0")));
    assert_sends(&serve_file(&get("/f"), &empty), 200, "");
}

#[test]
fn ranges_we_do_not_serve_get_the_whole_file() {
    let tree = Tree::new("range-200");
    let path = tree.file("digits.txt", "0123456789");
    // Several ranges would need multipart/byteranges: the whole file.
    ranged(&path, "bytes=0-1,5-6", (200, None, "0123456789"));
    ranged(&path, "lines=1-2", (200, None, "0123456789"));
    ranged(&path, "bytes=5-2", (200, None, "0123456789"));
    ranged(&path, "bytes=x-", (200, None, "0123456789"));
}

#[test]
fn if_range_must_still_hold() {
    let tree = Tree::new("if-range");
    let path = tree.file("digits.txt", "0123456789");
    let etag = serve_file(&get("/f"), &path).header("etag").unwrap().to_owned();
    let with_if_range = |cond: &str| {
        let req = HttpRequest::builder(Method::Get, "/f")
            .header("Range", "bytes=0-1")
            .header("If-Range", cond)
            .build();
        serve_file(&req, &path)
    };
    assert_sends(&with_if_range(&etag), 206, "01");
    assert_sends(&with_if_range(DATE), 206, "01");
    assert_sends(&with_if_range("\"stale\""), 200, "0123456789");
    assert_sends(&with_if_range(&format!("W/{etag}")), 200, "0123456789");
    assert_sends(&with_if_range("Sun, 09 Sep 2001 01:46:41 GMT"), 200, "0123456789");
}

#[test]
fn directories_answer_with_their_index() {
    let tree = Tree::new("index");
    tree.file("index.html", "<h1>home</h1>");
    tree.file("docs/index.html", "<h1>docs</h1>");
    tree.file("empty/readme.txt", "no index here");
    let home = serve_dir(&get("/static/"), tree.root(), "");
    assert_sends(&home, 200, "<h1>home</h1>");
    assert_eq!(home.header("content-type"), Some("text/html; charset=utf-8"));
    assert_sends(
        &serve_dir(&get("/static/docs/"), tree.root(), "docs/"),
        200,
        "<h1>docs</h1>",
    );
    // No listings: a folder without an index is 404, not a redirect.
    assert_eq!(serve_dir(&get("/static/empty/"), tree.root(), "empty/").status(), 404);
    assert_eq!(serve_dir(&get("/static/empty"), tree.root(), "empty").status(), 404);
    // Another index, or none.
    let custom = StaticOptions {
        index: Some("readme.txt".into()),
        ..StaticOptions::default()
    };
    let resp = serve_dir_with(&get("/static/empty/"), tree.root(), "empty/", &custom);
    assert_sends(&resp, 200, "no index here");
    assert_eq!(resp.header("content-type"), Some("text/plain; charset=utf-8"));
    let none = StaticOptions {
        index: None,
        ..StaticOptions::default()
    };
    assert_eq!(serve_dir_with(&get("/static/"), tree.root(), "", &none).status(), 404);
}

#[test]
fn directory_urls_get_their_trailing_slash() {
    let tree = Tree::new("redirect");
    tree.file("index.html", "home");
    tree.file("docs/index.html", "docs");
    let moved = |target: &str, rel: &str| {
        let resp = serve_dir(&get(target), tree.root(), rel);
        assert!(resp.file_body().is_none());
        (resp.status(), resp.header("location").map(str::to_owned))
    };
    assert_eq!(moved("/static/docs", "docs"), (301, Some("/static/docs/".into())));
    assert_eq!(
        moved("/static/docs?v=2", "docs"),
        (301, Some("/static/docs/?v=2".into()))
    );
    assert_eq!(moved("/static", ""), (301, Some("/static/".into())));
    // Never a Location the browser reads as another host.
    assert_eq!(
        moved("//evil.example/docs", "docs"),
        (301, Some("/evil.example/docs/".into()))
    );
    // A file is not a directory: its URL with a slash is 404.
    tree.file("a.txt", "a");
    assert_eq!(serve_dir(&get("/static/a.txt/"), tree.root(), "a.txt/").status(), 404);
}

#[test]
fn dot_and_empty_segments_are_skipped_and_dotfiles_hidden() {
    let tree = Tree::new("dots");
    tree.file("a/b.txt", "b");
    tree.file(".env", "KEY=1");
    tree.file(".git/config", "[core]");
    assert_sends(&serve_dir(&get("/static/x"), tree.root(), "./a/./b.txt"), 200, "b");
    assert_sends(&serve_dir(&get("/static/x"), tree.root(), "a//b.txt"), 200, "b");
    refused(&tree, ".env");
    refused(&tree, ".git/config");
    let shown = StaticOptions {
        dotfiles: true,
        ..StaticOptions::default()
    };
    assert_sends(
        &serve_dir_with(&get("/static/x"), tree.root(), ".env", &shown),
        200,
        "KEY=1",
    );
    // Dotfiles on still never means `..`.
    let resp = serve_dir_with(&get("/static/x"), tree.root(), "../secret.txt", &shown);
    assert_eq!(resp.status(), 404);
}

// Path traversal: one attack per test, each against a root whose parent
// holds secret.txt. `refused` checks the 404 and that no file is sent.

#[test]
fn traversal_dot_dot() {
    let tree = Tree::new("t-dotdot");
    refused(&tree, "..");
    refused(&tree, "../");
}

#[test]
fn traversal_dot_dot_secret() {
    let tree = Tree::new("t-secret");
    refused(&tree, "../secret.txt");
}

#[test]
fn traversal_down_then_up_past_the_root() {
    let tree = Tree::new("t-down-up");
    tree.file("a/index.html", "a");
    refused(&tree, "a/../../secret.txt");
    // Even a `..` that would stay inside is refused, rather than resolved
    // or dropped (either would serve one of these).
    tree.file("b.txt", "b");
    tree.file("a/b.txt", "a/b");
    refused(&tree, "a/../b.txt");
}

#[test]
fn traversal_encoded_slash_arrives_decoded() {
    // `..%2fsecret.txt`, decoded once by the router.
    let tree = Tree::new("t-2f");
    refused(&tree, "../secret.txt");
    refused(&tree, "..%2fsecret.txt");
}

#[test]
fn traversal_double_encoded_stays_literal() {
    // `%252e%252e/secret.txt` decodes once to a literal `%2e%2e` folder,
    // which does not exist.
    let tree = Tree::new("t-2525");
    refused(&tree, "%2e%2e/secret.txt");
    refused(&tree, "%2e%2e%2fsecret.txt");
}

#[test]
fn traversal_absolute_path() {
    let tree = Tree::new("t-abs");
    refused(&tree, "/etc/passwd");
    // Refused, not read as relative to the root either.
    tree.file("etc/passwd", "root:x:0:0");
    refused(&tree, "/etc/passwd");
    refused(&tree, tree.base.join("secret.txt").to_str().unwrap());
}

#[test]
fn traversal_backslashes() {
    let tree = Tree::new("t-backslash");
    refused(&tree, "\\..\\secret.txt");
    // A separator on Windows, so refused everywhere: even a Linux file
    // whose name holds one is not served.
    tree.file("a\\b.txt", "a backslash in a name");
    refused(&tree, "a\\b.txt");
    refused(&tree, "..\\secret.txt");
    refused(&tree, "a\\..\\..\\secret.txt");
}

#[test]
fn traversal_drive_letters_and_streams() {
    let tree = Tree::new("t-drive");
    tree.file("a.txt", "a");
    refused(&tree, "C:\\secret.txt");
    tree.file("C:secret.txt", "a colon in a Linux name");
    refused(&tree, "C:secret.txt");
    refused(&tree, "a.txt::$DATA");
}

#[test]
fn traversal_nul_byte() {
    let tree = Tree::new("t-nul");
    tree.file("a", "a");
    refused(&tree, "a\0b");
    refused(&tree, "../secret.txt\0.png");
}

#[cfg(unix)]
#[test]
fn traversal_file_symlink_leading_out() {
    let tree = Tree::new("t-link-file");
    std::os::unix::fs::symlink(tree.base.join("secret.txt"), tree.root().join("innocent.txt")).unwrap();
    refused(&tree, "innocent.txt");
    // Relative targets are resolved too.
    std::os::unix::fs::symlink("../secret.txt", tree.root().join("relative.txt")).unwrap();
    refused(&tree, "relative.txt");
}

#[cfg(unix)]
#[test]
fn traversal_directory_symlink_leading_out() {
    let tree = Tree::new("t-link-dir");
    tree.write_at(&tree.base.join("index.html"), SECRET);
    std::os::unix::fs::symlink(&tree.base, tree.root().join("up")).unwrap();
    refused(&tree, "up/secret.txt");
    refused(&tree, "up/");
    // Not even a redirect that would tell the folder exists.
    refused(&tree, "up");
}

#[cfg(unix)]
#[test]
fn traversal_index_symlink_leading_out() {
    let tree = Tree::new("t-link-index");
    fs::create_dir_all(tree.root().join("docs")).unwrap();
    std::os::unix::fs::symlink(tree.base.join("secret.txt"), tree.root().join("docs/index.html")).unwrap();
    let resp = serve_dir(&get("/static/docs/"), tree.root(), "docs/");
    assert_eq!(resp.status(), 404);
    assert!(resp.file_body().is_none());
}

#[cfg(unix)]
#[test]
fn symlinks_that_stay_inside_are_followed() {
    let tree = Tree::new("t-link-inside");
    tree.file("assets/v3/logo.png", "PNG");
    tree.file("assets/v3/index.html", "v3");
    std::os::unix::fs::symlink("v3/logo.png", tree.root().join("assets/logo")).unwrap();
    std::os::unix::fs::symlink("v3", tree.root().join("assets/current")).unwrap();
    let logo = serve_dir(&get("/static/assets/logo"), tree.root(), "assets/logo");
    assert_sends(&logo, 200, "PNG");
    // Typed by the name asked for (`logo`), not the target's.
    assert_eq!(logo.header("content-type"), Some("application/octet-stream"));
    let png = serve_dir(&get("/static/x"), tree.root(), "assets/current/logo.png");
    assert_sends(&png, 200, "PNG");
    assert_eq!(png.header("content-type"), Some("image/png"));
    let index = serve_dir(&get("/static/assets/current/"), tree.root(), "assets/current/");
    assert_sends(&index, 200, "v3");
}

#[cfg(unix)]
#[test]
fn a_symlinked_root_is_resolved_once() {
    let tree = Tree::new("t-link-root");
    tree.file("a.txt", "a");
    let alias = tree.base.join("alias");
    std::os::unix::fs::symlink(tree.root(), &alias).unwrap();
    assert_sends(&serve_dir(&get("/static/a.txt"), &alias, "a.txt"), 200, "a");
    let missing_root = serve_dir(&get("/static/a.txt"), tree.base.join("nope"), "a.txt");
    assert_eq!(missing_root.status(), 404);
}

#[test]
fn last_modified_matches_the_file() {
    // The date written is the file's mtime cut to the second.
    let tree = Tree::new("mtime");
    let path = tree.file("a.txt", "a");
    let resp = serve_file(&get("/a.txt"), &path);
    let sent = httpdate::parse_http_date(resp.header("last-modified").unwrap()).unwrap();
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    assert_eq!(sent, SystemTime::UNIX_EPOCH + Duration::from_secs(MTIME_MS / 1000));
    assert!(mtime.duration_since(sent).unwrap() < Duration::from_secs(1));
}
