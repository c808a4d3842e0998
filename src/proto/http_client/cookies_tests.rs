//! Tests of `cookies.rs`.
use super::*;

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

#[track_caller]
fn set(jar: &mut CookieJar, url: &str, line: &str) -> Result<(), CookieRejected> {
    let (secure, host, path) = split(url);
    jar.store(secure, host, path, line, t0())
}

#[track_caller]
fn sent(jar: &CookieJar, url: &str) -> String {
    let (secure, host, path) = split(url);
    jar.header(secure, host, path, t0()).unwrap_or_default()
}

fn split(url: &str) -> (bool, &str, &str) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (scheme == "https", host, if path.is_empty() { "/" } else { path })
}

#[test]
fn host_only_and_domain_cookies() {
    let mut jar = CookieJar::new();
    set(&mut jar, "http://api.example.com/", "host=1").unwrap();
    set(&mut jar, "http://api.example.com/", "dom=2; Domain=.Example.COM").unwrap();
    set(&mut jar, "http://api.example.com/", "self=3; Domain=api.example.com").unwrap();
    assert_eq!(sent(&jar, "http://api.example.com/"), "host=1; dom=2; self=3");
    assert_eq!(sent(&jar, "http://API.example.com/"), "host=1; dom=2; self=3");
    assert_eq!(sent(&jar, "http://example.com/"), "dom=2");
    assert_eq!(
        sent(&jar, "http://deep.api.example.com/"),
        "dom=2; self=3",
        "Domain= is not host-only"
    );
    assert_eq!(sent(&jar, "http://www.example.com/"), "dom=2");
    assert_eq!(sent(&jar, "http://notexample.com/"), "");
    assert_eq!(sent(&jar, "http://example.org/"), "");
    let host_only = jar.iter().find(|c| c.name() == "host").unwrap();
    assert_eq!((host_only.domain(), host_only.host_only()), ("api.example.com", true));
    let dom = jar.iter().find(|c| c.name() == "dom").unwrap();
    assert_eq!((dom.domain(), dom.host_only()), ("example.com", false));
}

#[test]
fn foreign_and_single_label_domains_are_refused() {
    let mut jar = CookieJar::new();
    for (url, line) in [
        ("http://a.example.com/", "x=1; Domain=other.com"),
        ("http://a.example.com/", "x=1; Domain=b.example.com"),
        ("http://example.com/", "x=1; Domain=sub.example.com"),
        ("http://a.example.com/", "x=1; Domain=com"),
        ("http://127.0.0.1/", "x=1; Domain=0.0.1"),
        ("http://10.0.0.1/", "x=1; Domain=0.1"),
    ] {
        assert_eq!(
            set(&mut jar, url, line),
            Err(CookieRejected::ForeignDomain),
            "{url} {line}"
        );
    }
    assert!(jar.is_empty());
    // A single label is fine when it is the host itself, and an IP
    // address may name itself.
    set(&mut jar, "http://localhost/", "x=1; Domain=localhost").unwrap();
    set(&mut jar, "http://127.0.0.1/", "y=2; Domain=127.0.0.1").unwrap();
    assert_eq!(sent(&jar, "http://localhost/"), "x=1");
    assert_eq!(sent(&jar, "http://127.0.0.1/"), "y=2");
    assert_eq!(sent(&jar, "http://a.localhost/"), "x=1");
}

#[test]
fn paths_match_at_slashes() {
    let mut jar = CookieJar::new();
    set(&mut jar, "http://h/", "root=1; Path=/").unwrap();
    set(&mut jar, "http://h/", "a=2; Path=/a").unwrap();
    set(&mut jar, "http://h/", "aslash=3; Path=/a/").unwrap();
    set(&mut jar, "http://h/docs/page", "dflt=4").unwrap();
    set(&mut jar, "http://h/docs/page", "rel=5; Path=docs").unwrap();
    assert_eq!(jar.get("dflt", t0()).unwrap().path(), "/docs");
    assert_eq!(
        jar.get("rel", t0()).unwrap().path(),
        "/docs",
        "a relative Path is the default"
    );
    assert_eq!(sent(&jar, "http://h/"), "root=1");
    assert_eq!(sent(&jar, "http://h/a"), "a=2; root=1");
    assert_eq!(sent(&jar, "http://h/a/"), "aslash=3; a=2; root=1");
    assert_eq!(sent(&jar, "http://h/a/b"), "aslash=3; a=2; root=1");
    assert_eq!(sent(&jar, "http://h/ab"), "root=1");
    assert_eq!(sent(&jar, "http://h/docs"), "dflt=4; rel=5; root=1");
    assert_eq!(sent(&jar, "http://h/docsx"), "root=1");
    assert_eq!(default_path("/"), "/");
    assert_eq!(default_path("/x"), "/");
    assert_eq!(default_path("/x/"), "/x");
    assert_eq!(default_path("x"), "/");
}

#[test]
fn secure_cookies_only_over_https() {
    let mut jar = CookieJar::new();
    set(&mut jar, "https://h/", "s=1; Secure").unwrap();
    set(&mut jar, "https://h/", "p=2").unwrap();
    assert_eq!(sent(&jar, "https://h/"), "s=1; p=2");
    assert_eq!(sent(&jar, "http://h/"), "p=2");
    assert_eq!(set(&mut jar, "http://h/", "t=1; Secure"), Err(CookieRejected::Insecure));
    assert_eq!(
        set(&mut jar, "http://h/", "__Secure-x=1"),
        Err(CookieRejected::Insecure)
    );
    assert_eq!(
        set(&mut jar, "https://h/", "__Secure-x=1"),
        Err(CookieRejected::Insecure)
    );
    set(&mut jar, "https://h/", "__Secure-x=1; Secure").unwrap();
    assert_eq!(
        set(&mut jar, "https://h/a/b", "__Host-y=1; Secure"),
        Err(CookieRejected::Insecure),
        "__Host- needs Path=/"
    );
    assert_eq!(
        set(&mut jar, "https://a.h.com/", "__Host-y=1; Secure; Path=/; Domain=h.com"),
        Err(CookieRejected::Insecure)
    );
    set(&mut jar, "https://h/a/b", "__Host-y=1; Secure; Path=/").unwrap();
    assert_eq!(sent(&jar, "https://h/"), "s=1; p=2; __Secure-x=1; __Host-y=1");
}

#[test]
fn expiry_on_the_callers_clock() {
    let mut jar = CookieJar::new();
    set(&mut jar, "http://h/", "short=1; Max-Age=10").unwrap();
    set(&mut jar, "http://h/", "dated=2; Expires=Wed, 21 Oct 2093 07:28:00 GMT").unwrap();
    set(
        &mut jar,
        "http://h/",
        "both=3; Max-Age=5; Expires=Wed, 21 Oct 2093 07:28:00 GMT",
    )
    .unwrap();
    set(&mut jar, "http://h/", "forever=4; Max-Age=99999999999999999999").unwrap();
    set(&mut jar, "http://h/", "session=5").unwrap();
    let at = |s| t0() + Duration::from_secs(s);
    assert_eq!(
        jar.header(false, "h", "/", at(4)).unwrap(),
        "short=1; dated=2; both=3; forever=4; session=5"
    );
    assert_eq!(
        jar.header(false, "h", "/", at(5)).unwrap(),
        "short=1; dated=2; forever=4; session=5",
        "Max-Age wins over Expires"
    );
    assert_eq!(
        jar.header(false, "h", "/", at(10)).unwrap(),
        "dated=2; forever=4; session=5"
    );
    assert_eq!(jar.get("session", at(10)).unwrap().expires(), None);
    assert_eq!(jar.len(), 5);
    jar.remove_expired(at(10));
    assert_eq!(jar.len(), 3);

    // Deleting: Max-Age=0, a negative one, or an Expires in the past.
    set(&mut jar, "http://h/", "dated=x; Max-Age=0").unwrap();
    set(&mut jar, "http://h/", "forever=x; Max-Age=-1").unwrap();
    set(
        &mut jar,
        "http://h/",
        "session=x; Expires=Thu, 01 Jan 1970 00:00:01 GMT",
    )
    .unwrap();
    assert_eq!(jar.len(), 0);
    // ... of that path only.
    set(&mut jar, "http://h/", "k=1; Path=/a").unwrap();
    set(&mut jar, "http://h/", "k=2; Path=/b").unwrap();
    set(&mut jar, "http://h/", "k=; Path=/a; Max-Age=0").unwrap();
    assert_eq!(sent(&jar, "http://h/b"), "k=2");
    assert_eq!(sent(&jar, "http://h/a"), "");
}

#[test]
fn a_namesake_replaces_and_keeps_its_place() {
    let mut jar = CookieJar::new();
    set(&mut jar, "http://h/", "a=1").unwrap();
    set(&mut jar, "http://h/", "b=2").unwrap();
    set(&mut jar, "http://h/", "a=3").unwrap();
    assert_eq!(sent(&jar, "http://h/"), "a=3; b=2");
    // Another path is another cookie.
    set(&mut jar, "http://h/", "a=4; Path=/x").unwrap();
    assert_eq!(sent(&jar, "http://h/x"), "a=4; a=3; b=2");
    assert_eq!(jar.len(), 3);
}

#[test]
fn values_are_kept_byte_for_byte_and_bad_ones_refused() {
    let mut jar = CookieJar::new();
    set(&mut jar, "http://h/", "q=\"quoted value\"").unwrap();
    set(&mut jar, "http://h/", "p=a%3Bb").unwrap();
    set(&mut jar, "http://h/", " spaced = v ; Path=/").unwrap();
    set(&mut jar, "http://h/", "empty=").unwrap();
    assert_eq!(sent(&jar, "http://h/"), "q=\"quoted value\"; p=a%3Bb; spaced=v; empty=");
    assert_eq!(set(&mut jar, "http://h/", "novalue"), Err(CookieRejected::Malformed));
    assert_eq!(set(&mut jar, "http://h/", "=v"), Err(CookieRejected::Malformed));
    assert_eq!(
        set(&mut jar, "http://h/", "c=a\u{1}b"),
        Err(CookieRejected::InvalidBytes)
    );
    let big = format!("big={}", "x".repeat(MAX_COOKIE_SIZE));
    assert_eq!(set(&mut jar, "http://h/", &big), Err(CookieRejected::TooLarge));
}

#[test]
fn caps_evict_the_oldest() {
    let mut jar = CookieJar::new();
    for i in 0..MAX_PER_DOMAIN + 5 {
        set(&mut jar, "http://h/", &format!("c{i}=v")).unwrap();
    }
    assert_eq!(jar.len(), MAX_PER_DOMAIN);
    assert!(jar.get("c0", t0()).is_none() && jar.get("c4", t0()).is_none());
    assert!(jar.get("c5", t0()).is_some());
    for d in 0..MAX_COOKIES / MAX_PER_DOMAIN + 2 {
        for i in 0..MAX_PER_DOMAIN {
            set(&mut jar, &format!("http://d{d}.example/"), &format!("c{i}=v")).unwrap();
        }
    }
    assert_eq!(jar.len(), MAX_COOKIES);
    assert_eq!(sent(&jar, "http://h/"), "", "the oldest domain's went first");
}

#[test]
fn matching_rules() {
    assert!(domain_match("a.b.c", "b.c"));
    assert!(domain_match("B.c", "b.C"));
    assert!(!domain_match("ab.c", "b.c"));
    assert!(!domain_match("b.c", "a.b.c"));
    assert!(!domain_match("1.2.3.4", "2.3.4"));
    assert!(domain_match("::1", "::1"));
    assert!(path_match("/", "/"));
    assert!(path_match("/a/b", "/"));
    assert!(path_match("/a/b", "/a"));
    assert!(!path_match("/a", "/a/"));
    assert!(!path_match("/abc", "/a"));
}
