//! Cookies and forms over loopback (dasHV HV-05): urlencoded fields,
//! multipart uploads parsed as they arrive (files to temporary files),
//! saved under a sanitised name, every limit with its status, and cookies
//! set and read back.

mod util;

use std::path::PathBuf;

use hvws::cookie::time::Duration as CookieDuration;
use hvws::{Cookie, FormLimits, HttpResponse, HvWebServer, Routes, SameSite, ServerConfig};
use util::Raw;

#[derive(Default)]
struct Forms {
    upload_dir: PathBuf,
}

impl HvWebServer for Forms {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .post("/upload", |app: &mut Forms, _, req| {
                let Some(form) = req.form() else {
                    return HttpResponse::error(400);
                };
                let saved = match req.save_form_file("attachment", &app.upload_dir) {
                    Ok(path) => path.file_name().unwrap().to_string_lossy().into_owned(),
                    Err(e) => format!("error: {e}"),
                };
                HttpResponse::text(format!(
                    "title={} fields={} files={} saved={saved}",
                    form.field("title").unwrap_or("-"),
                    form.field_count(),
                    form.files().len()
                ))
            })
            .post("/login", |_, _, req| {
                HttpResponse::text(format!(
                    "{}:{}",
                    req.form_field("username").unwrap_or("-"),
                    req.form_field("password").unwrap_or("-")
                ))
            })
            .get("/set-cookies", |_, _, _| {
                HttpResponse::text("cookies set")
                    .with_cookie(
                        Cookie::build(("session", "abc123"))
                            .path("/")
                            .max_age(CookieDuration::hours(1))
                            .http_only(true),
                    )
                    .with_cookie(
                        Cookie::build(("prefs", "dark mode"))
                            .secure(true)
                            .same_site(SameSite::Strict),
                    )
            })
            .get("/read-cookies", |_, _, req| {
                HttpResponse::text(format!(
                    "session={} prefs={} missing={}",
                    req.cookie("session").unwrap_or_default(),
                    req.cookie("prefs").unwrap_or_default(),
                    req.cookie("missing").unwrap_or_else(|| "not found".into())
                ))
            });
    }
}

fn setup(limits: FormLimits) -> (hvws::Server<Forms>, PathBuf) {
    let dir = std::env::temp_dir().join(format!("hvws-forms-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = ServerConfig {
        form_limits: limits,
        ..ServerConfig::default()
    };
    let mut s = util::server_with(Forms::default(), config);
    s.handler_mut().upload_dir = dir.clone();
    (s, dir)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// A multipart body with a title, a description and a file.
fn multipart(file_name: &str, file: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nMy upload\r\n");
    body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nA file\r\n");
    body.extend_from_slice(
        format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"{file_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    body
}

fn post_multipart(s: &mut hvws::Server<Forms>, raw: &mut Raw, body: &[u8]) -> util::HttpResp {
    let head = format!(
        "POST /upload HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    raw.write(s, head.as_bytes());
    raw.write(s, body);
    raw.response(s)
}

#[test]
fn a_multipart_upload_is_parsed_as_it_arrives_and_saved_under_a_safe_name() {
    let limits = FormLimits {
        memory_threshold: 1024,
        ..FormLimits::default()
    };
    let (mut s, dir) = setup(limits);
    let mut raw = Raw::connect(&s);
    // 3 MiB: over the buffered-body limit (1 MiB), and over the memory
    // threshold, so it went to a temporary file.
    let file: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
    let resp = post_multipart(&mut s, &mut raw, &multipart("../../etc/evil name.bin", &file));
    assert_eq!(
        (resp.status, resp.text()),
        (200, "title=My upload fields=2 files=1 saved=evil name.bin")
    );
    assert_eq!(std::fs::read(dir.join("evil name.bin")).unwrap(), file);
    // The same name again is not overwritten.
    let resp = post_multipart(&mut s, &mut raw, &multipart("evil name.bin", b"other"));
    assert!(resp.text().contains("saved=error"), "{}", resp.text());
    assert_eq!(std::fs::read(dir.join("evil name.bin")).unwrap().len(), 3 << 20);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn upload_limits_answer_with_their_status() {
    let limits = FormLimits {
        max_file_size: 1000,
        max_total_size: 100_000,
        max_parts: 3,
        ..FormLimits::default()
    };
    let (mut s, dir) = setup(limits);
    let mut raw = Raw::connect(&s);
    let resp = post_multipart(&mut s, &mut raw, &multipart("a.bin", &[7u8; 1001]));
    assert_eq!(resp.status, 413, "file over max_file_size: {}", resp.text());
    assert!(
        raw.read_to_eof(&mut s).is_empty(),
        "closed after it: the rest of the body cannot be read as a request"
    );

    // Declared too large: refused before the body is sent.
    let mut raw = Raw::connect(&s);
    raw.write(
        &mut s,
        b"POST /upload HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 100001\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(raw.response(&mut s).status, 413);

    // Too many parts.
    let mut raw = Raw::connect(&s);
    let mut body = Vec::new();
    for n in 0..4 {
        body.extend_from_slice(
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"f{n}\"\r\n\r\nv\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(b"--XyZ--\r\n");
    assert_eq!(post_multipart(&mut s, &mut raw, &body).status, 413);

    // Malformed: no closing boundary.
    let mut raw = Raw::connect(&s);
    let resp = post_multipart(
        &mut s,
        &mut raw,
        b"--XyZ\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nv\r\n",
    );
    assert_eq!(resp.status, 400);

    // No boundary at all.
    let mut raw = Raw::connect(&s);
    raw.write(
        &mut s,
        b"POST /upload HTTP/1.1\r\nContent-Type: multipart/form-data\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert_eq!(raw.response(&mut s).status, 400);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn urlencoded_fields_reach_the_route() {
    let (mut s, dir) = setup(FormLimits::default());
    let mut raw = Raw::connect(&s);
    let body = "username=ada+lovelace&password=p%40ss%3D1";
    raw.write(
        &mut s,
        format!(
            "POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(raw.response(&mut s).text(), "ada lovelace:p@ss=1");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cookies_are_set_with_their_attributes_and_read_back() {
    let (mut s, dir) = setup(FormLimits::default());
    let mut raw = Raw::connect(&s);
    raw.write(&mut s, b"GET /set-cookies HTTP/1.1\r\n\r\n");
    let resp = raw.response(&mut s);
    let set: Vec<&str> = resp
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        set,
        [
            "session=abc123; HttpOnly; Path=/; Max-Age=3600",
            "prefs=dark%20mode; SameSite=Strict; Secure"
        ]
    );
    raw.write(
        &mut s,
        b"GET /read-cookies HTTP/1.1\r\nCookie: session=abc123; prefs=dark%20mode\r\n\r\n",
    );
    assert_eq!(
        raw.response(&mut s).text(),
        "session=abc123 prefs=dark mode missing=not found"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
