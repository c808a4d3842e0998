//! Tutorial chapter 7: HTTPS and WSS (dasHV HV-08), with the certificate
//! renewed under a running server.
//!
//! ```text
//! cargo run --features tls --example tutorial07_https -- --selftest                     # exit 0 if the whole chapter happened
//! cargo run --features tls --example tutorial07_https -- --port 8080 --https-port 8443  # a dev certificate, made at start
//! cargo run --features tls --example tutorial07_https -- --port 80 --https-port 443 \
//!     --cert /etc/letsencrypt/live/game.example/fullchain.pem \
//!     --key /etc/letsencrypt/live/game.example/privkey.pem                              # production files
//! ```
//!
//! Needs the `tls` feature (Cargo.toml lists it as this example's
//! `required-features`). One `Server` listens on a plain port and a TLS
//! port with the same routes and one channel table:
//!
//! * `GET /secure` answers `secure hello over TLS` over https only; the
//!   plain port refuses it with 403 and the https address to use.
//! * `GET /api/info` answers `{"scheme":"https","tls":true}` over https and
//!   `{"scheme":"http","tls":false}` over plain http.
//! * `GET /` is a page that opens a WebSocket (wss:// when the page came
//!   over https); the plain port redirects it to https (301).
//! * `/echo` is a WebSocket echo; its greeting says ws or wss, with the TLS
//!   version and cipher suite.
//!
//! A watcher thread reloads `fullchain.pem` + `privkey.pem` when they
//! change and hands them to the server through its `ServerHandle`: a
//! renewed certificate without a restart.
//!
//! No certificate or key is committed: every run makes a throwaway CA with
//! rcgen (its key stays in memory and is dropped) and writes the server's
//! files to a temporary directory.
//!
//! `--selftest` checks both ports and every route, the wss echo, what an
//! untrusted certificate, a chain without its intermediate and a
//! certificate for another name look like to the client, a missing file,
//! and a renewal (a half-written one refused, the complete one served to new
//! connections while an open one goes on). Walkthrough:
//! `tutorials/07-https-and-wss.md`.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use hvws::{
    Channel, ClientConfig, ClientContext, ClientError, ClientTls, CloseInfo, Context, HttpRequest, HttpResponse,
    HvWebServer, HvWebSocketClient, Routes, Server, ServerHandle, ServerTls, WebSocketClient,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// How long any wait of the self-test may take.
const TIMEOUT: Duration = Duration::from_secs(5);

// --- the server ---------------------------------------------------------------

/// `GET /` over https: a page that opens a WebSocket back to where it came from.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>hvws tutorial 7: wss</title>
<pre id="log">connecting...</pre>
<script>
  // A page that came over https may only open wss://: the browser blocks
  // ws:// from it as mixed content.
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + "/echo");
  const log = (line) => { document.getElementById("log").textContent += "\n" + line; };
  ws.onopen = () => ws.send("hello from the page");
  ws.onmessage = (e) => log(e.data);
  ws.onclose = (e) => log("closed " + e.code);
</script>
"#;

#[derive(Default)]
struct SecureSite {
    /// The TLS port, for addresses the plain port hands out. Set after
    /// binding: `on_init` runs before the TLS listener exists.
    https_port: u16,
}

impl SecureSite {
    /// `GET /secure`: over TLS only.
    fn secure(&mut self, _ctx: &mut Context<'_>, req: &HttpRequest) -> HttpResponse {
        if req.tls().is_some() {
            return HttpResponse::text("secure hello over TLS");
        }
        // Over plain http the request has already crossed the network in
        // clear: refuse it, and say where to go, rather than redirect.
        let url = self.https_url(req, "/secure");
        HttpResponse::text(format!("this page is served over TLS only: {url}\n")).with_status(403)
    }

    /// `GET /`: what people type. Over plain http, a redirect to https.
    fn home(&mut self, _ctx: &mut Context<'_>, req: &HttpRequest) -> HttpResponse {
        if req.tls().is_none() {
            return HttpResponse::new(301).with_header("Location", &self.https_url(req, "/"));
        }
        HttpResponse::html(PAGE)
    }

    /// `https://HOST:https_port{path}`, HOST as the client wrote it in `Host`.
    fn https_url(&self, req: &HttpRequest, path: &str) -> String {
        let host = req.header("host").unwrap_or("localhost");
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host, // no port, or an IPv6 address without one: [::1]
        };
        format!("https://{name}:{}{path}", self.https_port)
    }
}

impl HvWebServer for SecureSite {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .get("/", SecureSite::home)
            .get("/secure", SecureSite::secure)
            .get("/api/info", |_: &mut SecureSite, _, req| {
                HttpResponse::json_text(format!(
                    r#"{{"scheme":"{}","tls":{}}}"#,
                    req.scheme(),
                    req.tls().is_some()
                ))
            })
            .websocket("/echo");
    }

    fn on_ws_open(&mut self, ctx: &mut Context<'_>, ch: Channel, _url: &str) {
        let open = ctx.channel_count();
        let greeting = match ctx.info(ch).and_then(|i| i.tls()) {
            Some(tls) => format!(
                "hello over wss ({}, {}, alpn {}); {open} channel(s) open",
                tls.version,
                tls.cipher_suite,
                tls.alpn.as_deref().unwrap_or("none")
            ),
            None => format!("hello over ws; {open} channel(s) open"),
        };
        println!("server: {ch} {greeting}");
        ctx.send_text(ch, &greeting);
    }

    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        ctx.send_text(ch, msg);
    }
}

// --- certificates ---------------------------------------------------------------

/// A throwaway CA for development and the self-test, shaped like a public
/// one: a root, an intermediate it signed, and server certificates from the
/// intermediate. The root's key is dropped once the intermediate is signed
/// and is never written anywhere, so trusting the root lets nothing in but
/// what this value issues while the program runs.
struct DevCa {
    root_pem: String,
    intermediate_pem: String,
    intermediate: Issuer<'static, KeyPair>,
}

/// A server certificate and its key, as a CA hands them out.
struct Issued {
    /// The leaf, then the intermediate: Let's Encrypt's `fullchain.pem`.
    fullchain: String,
    /// The leaf alone: Let's Encrypt's `cert.pem`.
    leaf: String,
    /// The private key: Let's Encrypt's `privkey.pem`.
    key: String,
    /// The leaf, to recognise it when a server shows it.
    der: CertificateDer<'static>,
}

impl DevCa {
    fn new() -> Result<DevCa, rcgen::Error> {
        let root_key = KeyPair::generate()?;
        let mut root = CertificateParams::default();
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.distinguished_name
            .push(DnType::CommonName, "hvws tutorial07 THROWAWAY root");
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root_cert = root.self_signed(&root_key)?;
        let root = Issuer::new(root, root_key);

        let key = KeyPair::generate()?;
        let mut intermediate = CertificateParams::default();
        intermediate.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        intermediate
            .distinguished_name
            .push(DnType::CommonName, "hvws tutorial07 THROWAWAY intermediate");
        intermediate.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let intermediate_cert = intermediate.signed_by(&key, &root)?;
        Ok(DevCa {
            root_pem: root_cert.pem(),
            intermediate_pem: intermediate_cert.pem(),
            intermediate: Issuer::new(intermediate, key),
        })
    }

    /// A new key and a certificate for `names`, valid for 90 days like
    /// Let's Encrypt's.
    fn issue(&self, names: &[&str]) -> Result<Issued, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = SystemTime::now().into();
        params.not_after = params.not_before + Duration::from_secs(90 * 24 * 3600);
        let cert = params.signed_by(&key, &self.intermediate)?;
        Ok(Issued {
            fullchain: format!("{}{}", cert.pem(), self.intermediate_pem),
            leaf: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().clone(),
        })
    }
}

/// Where the server's certificate chain and key live.
#[derive(Clone, Debug)]
struct CertFiles {
    chain: PathBuf,
    key: PathBuf,
}

impl CertFiles {
    /// Let's Encrypt's names in `dir`.
    fn in_dir(dir: &Path) -> CertFiles {
        CertFiles {
            chain: dir.join("fullchain.pem"),
            key: dir.join("privkey.pem"),
        }
    }
}

/// Writes `contents` to `path` in one step (a temporary file, then a
/// rename), so a reader sees the old file or the new one, never half of
/// one; readable by its owner only.
fn replace_file(path: &Path, contents: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(&tmp)?.write_all(contents.as_bytes())?;
    fs::rename(&tmp, path)
}

/// A fresh directory for this run's throwaway files.
fn fresh_dir(name: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("hvws-tutorial07-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// A throwaway CA and server certificate for `localhost` and `127.0.0.1`,
/// written to `dir` as `ca.pem`, `fullchain.pem` and `privkey.pem`.
fn write_dev_certificate(dir: &Path) -> Result<(DevCa, Issued, CertFiles), String> {
    let ca = DevCa::new().map_err(|e| e.to_string())?;
    let issued = ca.issue(&["localhost", "127.0.0.1"]).map_err(|e| e.to_string())?;
    let files = CertFiles::in_dir(dir);
    let write = |path: &Path, pem: &str| replace_file(path, pem).map_err(|e| format!("{}: {e}", path.display()));
    write(&dir.join("ca.pem"), &ca.root_pem)?;
    write(&files.key, &issued.key)?;
    write(&files.chain, &issued.fullchain)?;
    Ok((ca, issued, files))
}

// --- renewal: reload the files when they change ---------------------------------

/// What the certificate watcher did.
#[derive(Debug, PartialEq)]
enum Reload {
    /// The files loaded, and new connections get them.
    Loaded,
    /// The files did not load (the message says why); the server keeps
    /// the certificate it had.
    Refused(String),
}

/// Every `every`, reads the certificate files; when they differ from the
/// last read, loads them and hands them to the server through `handle`.
/// Its first round loads whatever is on disk, so a renewal that lands
/// between the server's start and that round is not missed. Ends when
/// `stop` is dropped or the server has stopped.
fn watch_certificate(
    handle: ServerHandle,
    files: CertFiles,
    every: Duration,
    stop: mpsc::Receiver<()>,
    report: mpsc::Sender<Reload>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut last: Option<(Vec<u8>, Vec<u8>)> = None;
        loop {
            // A file missing for a moment (being replaced) is read next round.
            if let (Ok(chain), Ok(key)) = (fs::read(&files.chain), fs::read(&files.key)) {
                let unchanged = last.as_ref().is_some_and(|(c, k)| *c == chain && *k == key);
                if !unchanged {
                    let outcome = match ServerTls::from_pem(&chain, &key) {
                        Ok(tls) => match handle.set_tls(tls) {
                            Ok(()) => Reload::Loaded,
                            Err(_) => return, // the server has stopped
                        },
                        Err(e) => Reload::Refused(e.to_string()),
                    };
                    println!("certificate watcher: {outcome:?} ({})", files.chain.display());
                    let _ = report.send(outcome);
                    last = Some((chain, key));
                }
            }
            match stop.recv_timeout(every) {
                Err(RecvTimeoutError::Timeout) => continue,
                _ => return,
            }
        }
    })
}

// --- clients ----------------------------------------------------------------------

#[derive(Default)]
struct Peer {
    opened: bool,
    texts: Vec<String>,
    error: Option<String>,
    close: Option<u16>,
}

impl HvWebSocketClient for Peer {
    fn on_open(&mut self, _ctx: &mut ClientContext<'_>) {
        self.opened = true;
    }
    fn on_message(&mut self, _ctx: &mut ClientContext<'_>, msg: &str) {
        self.texts.push(msg.to_owned());
    }
    fn on_error(&mut self, error: &ClientError) {
        println!("client: error: {error}");
        self.error = Some(error.to_string());
    }
    fn on_close(&mut self, close: &CloseInfo) {
        self.close = Some(close.code);
    }
}

type Client = WebSocketClient<Peer>;

/// A client for `url`; for `wss://`, trusting the usual public roots and,
/// if given, the CA in `ca_pem`.
fn connect(url: &str, ca_pem: Option<&str>) -> Result<Client, String> {
    let mut config = ClientConfig::default();
    if let Some(ca_pem) = ca_pem {
        config.tls = ClientTls::default()
            .add_ca_pem(ca_pem.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let mut client = WebSocketClient::with_config(Peer::default(), config);
    client.init(url).map_err(|e| e.to_string())?;
    Ok(client)
}

fn pump(c: &mut Client, what: &str, done: impl Fn(&Peer) -> bool) -> Result<(), String> {
    let deadline = Instant::now() + TIMEOUT;
    while !done(c.handler()) {
        if Instant::now() > deadline {
            let p = c.handler();
            return Err(format!(
                "timed out waiting for {what}: texts {:?}, error {:?}, close {:?}",
                p.texts, p.error, p.close
            ));
        }
        c.process_event_que_timeout(Duration::from_millis(5));
    }
    Ok(())
}

/// What a GET got back.
struct Reply {
    status: u16,
    location: Option<String>,
    body: String,
    /// Over https: the certificate the server showed.
    cert: Option<CertificateDer<'static>>,
}

/// Trusts only the CA in `ca_pem`: rustls's client settings, for [`get`].
fn https_trusting(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A blocking `GET path` to `localhost` at 127.0.0.1:`port`: over https
/// (rustls's own client; hvws's client speaks WebSocket only) when `tls` is
/// given, else plain http.
fn get(port: u16, path: &str, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Reply, String> {
    let err = |e: io::Error| format!("GET {path} on port {port}: {e}");
    let tcp = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), TIMEOUT).map_err(err)?;
    tcp.set_read_timeout(Some(TIMEOUT)).map_err(err)?;
    tcp.set_write_timeout(Some(TIMEOUT)).map_err(err)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
    let mut raw = Vec::new();
    let cert = match tls {
        Some(config) => {
            let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
            let conn = rustls::ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
            let mut stream = rustls::StreamOwned::new(conn, tcp);
            stream.write_all(request.as_bytes()).map_err(err)?;
            stream.read_to_end(&mut raw).map_err(err)?;
            stream.conn.peer_certificates().and_then(|c| c.first()).cloned()
        }
        None => {
            let mut tcp = tcp;
            tcp.write_all(request.as_bytes()).map_err(err)?;
            tcp.read_to_end(&mut raw).map_err(err)?;
            None
        }
    };
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no end of head")?;
    let status = head.get(9..12).and_then(|s| s.parse().ok()).ok_or("bad status line")?;
    let location = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("location").then(|| value.trim().to_owned())
    });
    let first_line = body.lines().next().unwrap_or("");
    println!("GET {path} on port {port} -> {status}: {first_line}");
    Ok(Reply {
        status,
        location,
        body: body.to_owned(),
        cert,
    })
}

// --- the selftest -------------------------------------------------------------

fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        println!("ok   {what}: {got:?}");
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, wanted {want:?}"))
    }
}

fn expect_that(what: &str, got: &str, ok: bool) -> Result<(), String> {
    if ok {
        println!("ok   {what}: {got:?}");
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}"))
    }
}

/// The server of the chapter, on a thread until `stop` is set; returns
/// (plain port, TLS port, a handle).
fn spawn_server(
    tls: ServerTls,
    stop: Arc<AtomicBool>,
) -> Result<(u16, u16, ServerHandle, thread::JoinHandle<()>), String> {
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let mut server = Server::new(SecureSite::default());
        // As init_wss(port, https_port, tls), on 127.0.0.1 only.
        let started = server
            .init_addr(([127, 0, 0, 1], 0).into())
            .and_then(|()| server.listen_tls_addr(([127, 0, 0, 1], 0).into(), tls))
            .and_then(|()| server.start());
        if let Err(e) = started {
            return drop(tx.send(Err(e.to_string())));
        }
        let (plain, secure) = (server.local_addr(), server.tls_addr());
        let (plain, secure) = (plain.map_or(0, |a| a.port()), secure.map_or(0, |a| a.port()));
        server.handler_mut().https_port = secure;
        let _ = tx.send(Ok((plain, secure, server.handle())));
        while !stop.load(Ordering::Relaxed) && server.tick_timeout(Duration::from_millis(10)).is_ok() {}
        let _ = server.stop();
    });
    let (plain, secure, handle) = rx.recv_timeout(TIMEOUT).map_err(|e| e.to_string())??;
    Ok((plain, secure, handle, thread))
}

/// Serves `bad` certificates in turn from a TLS-only server on this thread
/// (switched with `Server::set_tls`), connects a client trusting `ca_pem`
/// to each, and returns the error each client got.
fn errors_with(bad: Vec<ServerTls>, ca_pem: &str) -> Result<Vec<String>, String> {
    let mut server = Server::new(SecureSite::default());
    let first = bad.first().cloned().ok_or("no certificate")?;
    server
        .init_tls_addr(([127, 0, 0, 1], 0).into(), first)
        .map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    let url = format!("wss://127.0.0.1:{}/echo", server.tls_addr().map_or(0, |a| a.port()));
    let mut errors = Vec::new();
    for tls in bad {
        server.set_tls(tls).map_err(|e| e.to_string())?;
        let mut client = connect(&url, Some(ca_pem))?;
        let deadline = Instant::now() + TIMEOUT;
        while client.handler().close.is_none() {
            if Instant::now() > deadline {
                return Err("timed out waiting for the refused connection".into());
            }
            server.tick().map_err(|e| e.to_string())?;
            client.process_event_que_timeout(Duration::from_millis(2));
        }
        let p = client.handler();
        if p.opened || p.close != Some(1006) {
            return Err(format!("opened {}, close {:?}", p.opened, p.close));
        }
        errors.push(p.error.clone().unwrap_or_default());
    }
    server.stop().map_err(|e| e.to_string())?;
    Ok(errors)
}

/// Which of `known` the server showed, by name.
fn which<'a>(shown: Option<&CertificateDer<'_>>, known: &[(&'a str, &Issued)]) -> &'a str {
    let found = known.iter().find(|(_, issued)| shown == Some(&issued.der));
    found.map_or("another certificate", |(name, _)| *name)
}

/// Waits for the watcher's next report.
fn next_report(reports: &mpsc::Receiver<Reload>, what: &str) -> Result<Reload, String> {
    reports
        .recv_timeout(TIMEOUT)
        .map_err(|_| format!("timed out waiting for the watcher: {what}"))
}

fn run_checks(
    dir: &Path,
    ca: &DevCa,
    first: &Issued,
    files: &CertFiles,
    (plain, secure): (u16, u16),
    reports: &mpsc::Receiver<Reload>,
) -> Result<(), String> {
    let https = https_trusting(&ca.root_pem)?;

    // The routes, on both ports.
    let r = get(secure, "/secure", Some(&https))?;
    expect(
        "https /secure",
        (r.status, r.body.as_str()),
        (200, "secure hello over TLS"),
    )?;
    expect(
        "https: the certificate shown",
        which(r.cert.as_ref(), &[("first", first)]),
        "first",
    )?;
    let r = get(secure, "/api/info", Some(&https))?;
    expect("https /api/info", r.body.as_str(), r#"{"scheme":"https","tls":true}"#)?;
    let r = get(plain, "/api/info", None)?;
    expect("http /api/info", r.body.as_str(), r#"{"scheme":"http","tls":false}"#)?;
    let r = get(plain, "/secure", None)?;
    let hint = format!("this page is served over TLS only: https://localhost:{secure}/secure\n");
    expect("http /secure", (r.status, r.body), (403, hint))?;
    let r = get(plain, "/", None)?;
    let home = format!("https://localhost:{secure}/");
    expect("http / redirects", (r.status, r.location), (301, Some(home)))?;
    let r = get(secure, "/", Some(&https))?;
    let page_opens_wss = r.body.contains(r#"location.protocol === "https:" ? "wss://""#);
    expect(
        "https / is the page, opening wss://",
        (r.status, page_opens_wss),
        (200, true),
    )?;

    // One channel table: a ws client on the plain port, a wss one on the TLS port.
    let mut ws = connect(&format!("ws://127.0.0.1:{plain}/echo"), None)?;
    pump(&mut ws, "the ws greeting", |p| !p.texts.is_empty())?;
    expect(
        "ws greeting",
        ws.handler().texts[0].as_str(),
        "hello over ws; 1 channel(s) open",
    )?;
    let config = ClientConfig {
        tls: ClientTls::default()
            .add_ca_pem(ca.root_pem.as_bytes())
            .map_err(|e| e.to_string())?,
        ..ClientConfig::default()
    };
    let mut wss = WebSocketClient::with_config(Peer::default(), config);
    wss.init(&format!("wss://127.0.0.1:{secure}/echo"))
        .map_err(|e| e.to_string())?;
    pump(&mut wss, "the wss greeting", |p| !p.texts.is_empty())?;
    let greeting = wss.handler().texts[0].clone();
    let shape =
        greeting.starts_with("hello over wss (TLSv1_") && greeting.ends_with(", alpn http/1.1); 2 channel(s) open");
    expect_that("wss greeting", &greeting, shape)?;
    wss.send("echo me over TLS");
    pump(&mut wss, "the wss echo", |p| p.texts.len() == 2)?;
    expect("wss echo", wss.handler().texts[1].as_str(), "echo me over TLS")?;

    // A client that does not trust the chapter's CA.
    let mut stranger = connect(&format!("wss://127.0.0.1:{secure}/echo"), None)?;
    pump(&mut stranger, "the untrusted certificate's error", |p| {
        p.close.is_some()
    })?;
    let p = stranger.handler();
    expect(
        "untrusted: opened, close code",
        (p.opened, p.close),
        (false, Some(1006)),
    )?;
    let error = p.error.clone().unwrap_or_default();
    let unknown_issuer =
        "certificate not trusted for 127.0.0.1: UnknownIssuer (add its CA to the client's trusted roots)";
    expect("untrusted: the error", error.as_str(), unknown_issuer)?;

    // Two server mistakes the client sees the same way.
    let leaf_only = ServerTls::from_pem(first.leaf.as_bytes(), first.key.as_bytes()).map_err(|e| e.to_string())?;
    let other = ca.issue(&["game.example"]).map_err(|e| e.to_string())?;
    let other_name =
        ServerTls::from_pem(other.fullchain.as_bytes(), other.key.as_bytes()).map_err(|e| e.to_string())?;
    let errors = errors_with(vec![leaf_only, other_name], &ca.root_pem)?;
    expect("cert.pem without the intermediate", errors[0].as_str(), unknown_issuer)?;
    expect(
        "a certificate for another name",
        errors[1].as_str(),
        "certificate not valid for 127.0.0.1: NotValidForName",
    )?;

    // A missing file is an error naming it.
    let missing = dir.join("missing.pem");
    let error = match ServerTls::from_pem_files(&missing, &files.key) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    let names_it = error.starts_with(&format!("cannot read {}: ", missing.display()));
    expect_that("a missing certificate file", &error, names_it)?;

    // Renewal. The watcher's first round loaded the files as they are.
    expect(
        "watcher, first round",
        next_report(reports, "its first round")?,
        Reload::Loaded,
    )?;
    let renewed = ca.issue(&["localhost", "127.0.0.1"]).map_err(|e| e.to_string())?;
    // certbot-style: the files change one at a time. Between the two, the
    // new key does not match the old certificate: refused, the old one stays.
    replace_file(&files.key, &renewed.key).map_err(|e| e.to_string())?;
    let half = next_report(reports, "the half-renewed pair")?;
    let refused = matches!(&half, Reload::Refused(e) if e.contains("TLS setup failed"));
    expect_that(
        "watcher, new key with the old certificate",
        &format!("{half:?}"),
        refused,
    )?;
    let known = [("first", first), ("renewed", &renewed)];
    let r = get(secure, "/secure", Some(&https))?;
    expect(
        "meanwhile the certificate shown",
        which(r.cert.as_ref(), &known),
        "first",
    )?;
    replace_file(&files.chain, &renewed.fullchain).map_err(|e| e.to_string())?;
    expect(
        "watcher, the complete pair",
        next_report(reports, "the renewal")?,
        Reload::Loaded,
    )?;
    // The handle's command takes effect at the server's next tick; a
    // connection accepted in that very tick may still get the old one.
    let deadline = Instant::now() + TIMEOUT;
    let mut shown = get(secure, "/secure", Some(&https))?.cert;
    while shown.as_ref() != Some(&renewed.der) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
        shown = get(secure, "/secure", Some(&https))?.cert;
    }
    expect("then new connections get", which(shown.as_ref(), &known), "renewed")?;
    // The wss connection opened before the renewal goes on; new ones open.
    wss.send("still here");
    pump(&mut wss, "the old connection's echo", |p| p.texts.len() == 3)?;
    expect("the old wss connection", wss.handler().texts[2].as_str(), "still here")?;
    let mut fresh = connect(&format!("wss://127.0.0.1:{secure}/echo"), Some(&ca.root_pem))?;
    pump(&mut fresh, "a new wss connection", |p| !p.texts.is_empty())?;
    expect_that(
        "a new wss connection",
        &fresh.handler().texts[0],
        fresh.handler().texts[0].starts_with("hello over wss"),
    )?;

    for c in [&mut ws, &mut wss, &mut fresh] {
        c.close();
        pump(c, "the close", |p| p.close.is_some())?;
    }
    Ok(())
}

fn selftest() -> Result<(), String> {
    let dir = fresh_dir("selftest")?;
    let (ca, first, files) = write_dev_certificate(&dir)?;
    let tls = ServerTls::from_pem_files(&files.chain, &files.key).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let (plain, secure, handle, server) = spawn_server(tls, stop.clone())?;
    println!(
        "plain http/ws on {plain}, https/wss on {secure}, files in {}",
        dir.display()
    );

    let (stop_watcher, watcher_stop) = mpsc::channel();
    let (report, reports) = mpsc::channel();
    let watcher = watch_certificate(handle, files.clone(), Duration::from_millis(20), watcher_stop, report);

    let result = run_checks(&dir, &ca, &first, &files, (plain, secure), &reports);
    stop.store(true, Ordering::Relaxed);
    drop(stop_watcher);
    server.join().map_err(|_| "server thread panicked")?;
    watcher.join().map_err(|_| "watcher thread panicked")?;
    let _ = fs::remove_dir_all(&dir);
    result
}

// --- by hand --------------------------------------------------------------------

fn serve(port: u16, https_port: u16, files: Option<CertFiles>) -> Result<(), String> {
    let (files, dev_ca) = match files {
        Some(files) => (files, None),
        None => {
            let dir = fresh_dir("dev")?;
            let (_, _, files) = write_dev_certificate(&dir)?;
            (files, Some(dir.join("ca.pem")))
        }
    };
    let tls = ServerTls::from_pem_files(&files.chain, &files.key).map_err(|e| e.to_string())?;
    let mut server = Server::new(SecureSite::default());
    server.init_wss(port, https_port, tls).map_err(|e| e.to_string())?;
    let https_port = server.tls_addr().map_or(https_port, |a| a.port());
    let port = server.local_addr().map_or(port, |a| a.port());
    server.handler_mut().https_port = https_port;
    server.start().map_err(|e| e.to_string())?;

    // Renewal without a restart: check the files every minute.
    let (_keep_watching, stop) = mpsc::channel();
    let (report, _) = mpsc::channel();
    watch_certificate(server.handle(), files.clone(), Duration::from_secs(60), stop, report);

    println!("https://localhost:{https_port}/ (a page using wss://localhost:{https_port}/echo)");
    println!("https://localhost:{https_port}/secure and /api/info; http://localhost:{port}/ redirects to https");
    match dev_ca {
        Some(ca) => println!(
            "throwaway certificate in {}: try curl --cacert {} https://localhost:{https_port}/secure",
            files.chain.display(),
            ca.display()
        ),
        None => println!("certificate {}, key {}", files.chain.display(), files.key.display()),
    }
    while server.is_running() {
        server
            .tick_timeout(Duration::from_millis(100))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = |p: &str| p.parse::<u16>().map_err(|e| format!("port {p:?}: {e}"));
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--selftest"] => selftest().map(|()| println!("tutorial07: OK")),
        ["--port", p, "--https-port", h] => port(p).and_then(|p| serve(p, port(h)?, None)),
        ["--port", p, "--https-port", h, "--cert", chain, "--key", key] => port(p).and_then(|p| {
            let files = CertFiles {
                chain: chain.into(),
                key: key.into(),
            };
            serve(p, port(h)?, Some(files))
        }),
        _ => Err(
            "usage: tutorial07_https --selftest | --port N --https-port M [--cert fullchain.pem --key privkey.pem]"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tutorial07: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
