//! `Routes::static_dir` over loopback: what a browser and a cache see
//! (types, validators, 304, ranges, HEAD, the index), and every way out of
//! the folder a request can try, one by one, each answered 404 (or 403)
//! and never with the secret next to the folder.

mod util;

use std::path::PathBuf;

use hvws::{HvWebServer, Routes};
use util::Raw;

struct Site {
    root: PathBuf,
}

impl HvWebServer for Site {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.static_dir("/static", self.root.clone());
    }
}

/// `base/www` with files, and `base/secret.txt` beside it.
fn site(name: &str) -> (hvws::Server<Site>, PathBuf) {
    let base = std::env::temp_dir().join(format!("hvws-static-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("www");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("app.js"), "console.log('hi')").unwrap();
    std::fs::write(root.join("docs/index.html"), "<h1>docs</h1>").unwrap();
    std::fs::write(root.join("docs/a b.txt"), "spaced").unwrap();
    std::fs::write(base.join("secret.txt"), "TOP SECRET").unwrap();
    std::os::unix::fs::symlink(base.join("secret.txt"), root.join("out.txt")).unwrap();
    std::os::unix::fs::symlink(&base, root.join("up")).unwrap();
    std::os::unix::fs::symlink(root.join("app.js"), root.join("alias.js")).unwrap();
    let server = util::server(Site { root });
    (server, base)
}

fn get(s: &mut hvws::Server<Site>, raw: &mut Raw, request: &str) -> util::HttpResp {
    raw.write(s, request.as_bytes());
    raw.response(s)
}

#[test]
fn files_with_their_type_validators_ranges_and_index() {
    let (mut s, base) = site("files");
    let mut raw = Raw::connect(&s);
    let resp = get(&mut s, &mut raw, "GET /static/app.js HTTP/1.1\r\n\r\n");
    assert_eq!((resp.status, resp.text()), (200, "console.log('hi')"));
    assert_eq!(resp.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(resp.header("accept-ranges"), Some("bytes"));
    let etag = resp.header("etag").unwrap().to_owned();
    let modified = resp.header("last-modified").unwrap().to_owned();

    let resp = get(
        &mut s,
        &mut raw,
        &format!("GET /static/app.js HTTP/1.1\r\nIf-None-Match: \"x\", W/{etag}\r\n\r\n"),
    );
    assert_eq!((resp.status, resp.header("etag")), (304, Some(etag.as_str())));
    assert_eq!(resp.header("content-length"), None);
    let resp = get(
        &mut s,
        &mut raw,
        &format!("GET /static/app.js HTTP/1.1\r\nIf-Modified-Since: {modified}\r\n\r\n"),
    );
    assert_eq!(resp.status, 304);

    let resp = get(
        &mut s,
        &mut raw,
        "GET /static/app.js HTTP/1.1\r\nRange: bytes=-4\r\n\r\n",
    );
    assert_eq!((resp.status, resp.text()), (206, "hi')"));
    assert_eq!(resp.header("content-range"), Some("bytes 13-16/17"));
    let resp = get(
        &mut s,
        &mut raw,
        "GET /static/app.js HTTP/1.1\r\nRange: bytes=17-\r\n\r\n",
    );
    assert_eq!((resp.status, resp.header("content-range")), (416, Some("bytes */17")));

    // HEAD: GET's headers and length, and no body.
    let mut head = Raw::connect(&s);
    head.write(&mut s, b"HEAD /static/app.js HTTP/1.1\r\nConnection: close\r\n\r\n");
    let wire = String::from_utf8(head.read_to_eof(&mut s)).unwrap();
    assert!(wire.contains("Content-Length: 17\r\n"), "{wire}");
    assert!(wire.ends_with("\r\n\r\n"), "no body after the head: {wire}");

    let resp = get(&mut s, &mut raw, "GET /static/docs/a%20b.txt HTTP/1.1\r\n\r\n");
    assert_eq!((resp.status, resp.text()), (200, "spaced"));
    let resp = get(&mut s, &mut raw, "GET /static/docs/ HTTP/1.1\r\n\r\n");
    assert_eq!((resp.status, resp.text()), (200, "<h1>docs</h1>"));
    let resp = get(&mut s, &mut raw, "GET /static/docs HTTP/1.1\r\n\r\n");
    assert_eq!((resp.status, resp.header("location")), (301, Some("/static/docs/")));
    let resp = get(&mut s, &mut raw, "GET /static/alias.js HTTP/1.1\r\n\r\n");
    assert_eq!(resp.status, 200, "a symlink that stays inside is served");
    let resp = get(
        &mut s,
        &mut raw,
        "POST /static/app.js HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!((resp.status, resp.header("allow")), (405, Some("GET, HEAD")));
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn nothing_outside_the_folder_is_ever_served() {
    let (mut s, base) = site("escape");
    for target in [
        "/static/../secret.txt",
        "/static/docs/../../secret.txt",
        "/static/..%2fsecret.txt",
        "/static/..%2Fsecret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E%2Fsecret.txt",
        "/static/%252e%252e%252fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/..\\secret.txt",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/app.js%00.txt",
        "/static/out.txt",
        "/static/up/secret.txt",
        "/static/C:%5cwindows",
    ] {
        let mut raw = Raw::connect(&s);
        raw.write(&mut s, format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes());
        let resp = raw.response(&mut s);
        assert!(matches!(resp.status, 404 | 403 | 400), "{target}: {}", resp.status);
        assert!(
            !String::from_utf8_lossy(&resp.body).contains("TOP SECRET"),
            "{target} leaked the secret"
        );
    }
    std::fs::remove_dir_all(&base).unwrap();
}
