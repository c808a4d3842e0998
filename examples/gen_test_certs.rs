//! FOR TESTS AND DEVELOPMENT ONLY: makes a throwaway CA and a server
//! certificate it signed, for `127.0.0.1` and `localhost`, so scripts can
//! run the TLS examples without a private key in the repository.
//!
//! ```text
//! cargo run --release --example gen_test_certs -- --out /tmp/hvws-certs
//! cargo run --release --features tls --example chat_server -- --port 8443 \
//!     --tls-cert /tmp/hvws-certs/cert.pem --tls-key /tmp/hvws-certs/key.pem
//! cargo run --release --features tls --example chat_client -- \
//!     --url wss://127.0.0.1:8443/chat --ca /tmp/hvws-certs/ca.pem
//! ```
//!
//! Writes `ca.pem` (the CA's certificate: what clients trust), `cert.pem`
//! (the server's certificate) and `key.pem` (the server's private key,
//! unencrypted) into the `--out` directory, creating it if needed. The CA's
//! own key is thrown away, so the CA can sign nothing else. Every run makes
//! new keys. Nothing here is fit for a real server: get certificates from a
//! real CA (Let's Encrypt, your company's) for that.

use std::path::PathBuf;
use std::process::ExitCode;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// The names the server certificate is valid for: what the tests and
/// tutorials connect to.
const SERVER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

/// The CA's certificate, the server's certificate and the server's key, in
/// PEM.
fn generate() -> Result<(String, String, String), rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "hvws test CA (not for production)");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate()?;
    // rcgen puts an IP address in the subject alternative names as an
    // iPAddress entry, which is what clients check for `wss://127.0.0.1`.
    let mut leaf = CertificateParams::new(SERVER_NAMES.map(str::to_owned).to_vec())?;
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem()))
}

fn run(out: &PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let (ca, cert, key) = generate()?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for (name, pem) in [("ca.pem", ca), ("cert.pem", cert), ("key.pem", key)] {
        let path = out.join(name);
        std::fs::write(&path, pem).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let usage = "usage: gen_test_certs --out DIR   (test certificates; not for production)";
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--out", Some(dir)) => out = Some(PathBuf::from(dir)),
            _ => {
                eprintln!("{usage}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(out) = out else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    match run(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_test_certs failed: {e}");
            ExitCode::FAILURE
        }
    }
}
