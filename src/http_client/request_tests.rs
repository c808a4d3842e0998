//! Tests of `request.rs`.
use super::*;

fn header<'a>(p: &'a Prepared, name: &str) -> Option<&'a str> {
    p.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn params_auth_and_bodies() {
    let p = ClientRequest::get("http://u:p@h/x?a=1")
        .set_param("b", "c d")
        .prepare()
        .unwrap();
    assert_eq!(p.url.target, "/x?a=1&b=c%20d");
    assert_eq!(header(&p, "authorization"), Some("Basic dTpw"));
    assert_eq!(p.body, None);

    let p = ClientRequest::post("http://h/")
        .bearer_auth("t")
        .body_text("hi")
        .prepare()
        .unwrap();
    assert_eq!(header(&p, "authorization"), Some("Bearer t"));
    assert_eq!(header(&p, "content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(p.body.as_deref(), Some(&b"hi"[..]));

    let p = ClientRequest::post("http://h/")
        .header("Content-Type", "text/csv")
        .body_text("a,b")
        .prepare()
        .unwrap();
    assert_eq!(header(&p, "content-type"), Some("text/csv"), "the caller's type wins");

    let p = ClientRequest::post("http://h/")
        .form(&[("name", "Ada L"), ("x", "1&2")])
        .prepare()
        .unwrap();
    assert_eq!(p.body.as_deref(), Some(&b"name=Ada%20L&x=1%262"[..]));
    assert_eq!(header(&p, "content-type"), Some("application/x-www-form-urlencoded"));
}

#[test]
fn what_a_request_holds_before_it_is_sent() {
    let req = ClientRequest::post("http://h/echo?a=0")
        .set_param("page", "1")
        .set_param("page", "2")
        .body_text("inspect me")
        .timeout(Duration::from_secs(15));
    assert_eq!(req.query_param("page"), Some("1"), "the first value");
    assert_eq!(req.query_param("a"), None, "the URL's own query is not looked at");
    assert_eq!(req.payload(), Some(&b"inspect me"[..]));
    assert_eq!(req.total_timeout(), Some(Duration::from_secs(15)));
    let req = req.no_timeout().form(&[("k", "v")]);
    assert_eq!((req.payload(), req.total_timeout()), (None, None));
    assert_eq!(ClientRequest::get("http://h/").total_timeout(), None);
}

#[cfg(feature = "json")]
#[test]
fn json_body() {
    let p = ClientRequest::post("http://h/")
        .json(&serde_json::json!({"score": 42}))
        .prepare()
        .unwrap();
    assert_eq!(p.body.as_deref(), Some(&br#"{"score":42}"#[..]));
    assert_eq!(header(&p, "content-type"), Some("application/json"));
}

#[test]
fn multipart_with_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "file body").unwrap();
    let p = ClientRequest::post("http://h/up")
        .set_form_data("ti\"tle", "my \"notes\"")
        .set_form_file("doc", &path)
        .prepare()
        .unwrap();
    let ct = header(&p, "content-type").unwrap();
    let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap().to_owned();
    let body = String::from_utf8(p.body.clone().unwrap()).unwrap();
    assert_eq!(
        body,
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"ti%22tle\"\r\n\r\nmy \"notes\"\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"notes.txt\"\r\n\
             Content-Type: text/plain\r\n\r\nfile body\r\n--{boundary}--\r\n"
        )
    );
    let e = ClientRequest::post("http://h/")
        .set_form_file("f", dir.path().join("missing"))
        .prepare()
        .unwrap_err();
    assert!(matches!(e, HttpClientError::InvalidRequest(_)), "{e}");
}

#[test]
fn bad_requests_fail_before_sending() {
    let e = ClientRequest::get("http://h/")
        .header("X", "a\r\nb: c")
        .prepare()
        .unwrap_err();
    assert!(matches!(e, HttpClientError::InvalidRequest(_)), "{e}");
    let e = ClientRequest::get("nope").prepare().unwrap_err();
    assert!(matches!(e, HttpClientError::InvalidUrl { .. }), "{e}");
}
