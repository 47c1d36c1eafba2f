//! TLS with rustls (ring as the crypto provider; no OpenSSL anywhere).
//!
//! Both ports speak TLS when `RAFT_TLS_CERT` and `RAFT_TLS_KEY` are set. The
//! Raft port also demands a client certificate signed by `RAFT_TLS_CA`
//! (mutual TLS) and, for each request, checks that the certificate is valid
//! for the peer the request claims to come from (`X-Raftkv-From`): for its
//! node id or for the host of its configured Raft URL
//! ([`cert_names_peer`]). The peer senders present the same certificate
//! and verify the other node's server certificate against the CA and the
//! host name in its `https://` URL.

use crate::config::TlsFiles;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::Path;
use std::sync::Arc;

/// The DER certificate a peer presented on this connection (a request extension).
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub Arc<CertificateDer<'static>>);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("cannot read the TLS {what} {}: {error}", path.display()))
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path, what)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|error| format!("the TLS {what} {} is not PEM: {error}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("the TLS {what} {} holds no certificate", path.display()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read(path, "key")?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|error| format!("the TLS key {} holds no usable private key: {error}", path.display()))
}

fn roots(path: &Path) -> Result<Arc<rustls::RootCertStore>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(path, "CA file")? {
        roots.add(cert).map_err(|error| format!("the TLS CA file {} is not a CA: {error}", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// The server side of one port: this node's certificate, and with
/// `require_client_cert` (the Raft port) mutual TLS against the CA.
pub fn server_config(files: &TlsFiles, require_client_cert: bool) -> Result<Arc<rustls::ServerConfig>, String> {
    server_config_with(files, require_client_cert, false)
}

/// The client port's configuration with mutual TLS: a client certificate is
/// optional, but one that is presented must be signed by the CA (the admin
/// API, [`crate::api::members`], accepts it instead of the cluster token).
pub fn client_port_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, String> {
    server_config_with(files, files.ca.is_some(), true)
}

fn server_config_with(
    files: &TlsFiles,
    verify_client_cert: bool,
    client_cert_optional: bool,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS set-up: {error}"))?;
    let builder = match (&files.ca, verify_client_cert) {
        (Some(ca), true) => {
            let mut verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider());
            if client_cert_optional {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier =
                verifier.build().map_err(|error| format!("TLS client verification with {}: {error}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certificates(&files.cert, "certificate")?, private_key(&files.key)?)
        .map_err(|error| format!("the TLS certificate {} and key do not fit: {error}", files.cert.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Adds this node's client certificate and the CA to a peer HTTP client.
pub fn peer_client(builder: reqwest::ClientBuilder, files: &TlsFiles) -> Result<reqwest::ClientBuilder, String> {
    let mut identity = read(&files.cert, "certificate")?;
    identity.push(b'\n');
    identity.extend_from_slice(&read(&files.key, "key")?);
    let identity = reqwest::Identity::from_pem(&identity)
        .map_err(|error| format!("the TLS certificate {} and key: {error}", files.cert.display()))?;
    let mut builder = builder.use_rustls_tls().tls_built_in_root_certs(false).identity(identity);
    if let Some(ca) = &files.ca {
        builder = with_ca_file(builder, ca)?;
    }
    Ok(builder)
}

/// Trusts the certificates of a PEM CA file (for `https://` peers or nodes).
pub fn with_ca_file(builder: reqwest::ClientBuilder, ca: &Path) -> Result<reqwest::ClientBuilder, String> {
    let mut builder = builder.use_rustls_tls();
    for cert in certificates(ca, "CA file")? {
        let cert = reqwest::Certificate::from_der(&cert)
            .map_err(|error| format!("the TLS CA file {}: {error}", ca.display()))?;
        builder = builder.add_root_certificate(cert);
    }
    Ok(builder)
}

/// Whether `cert` (already verified against the CA) is valid for one of `names`
/// (DNS names or IP addresses).
pub fn cert_names_peer(cert: &CertificateDer<'_>, names: &[&str]) -> bool {
    let Ok(cert) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    names.iter().any(|name| {
        let name = name.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(name).is_ok_and(|server_name| cert.verify_is_valid_for_subject_name(&server_name).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_for(names: &[&str]) -> CertificateDer<'static> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names).unwrap().self_signed(&key).unwrap();
        cert.der().clone()
    }

    #[test]
    fn a_certificate_names_a_peer_by_id_or_host() {
        let cert = cert_for(&["n1", "127.0.0.1"]);
        assert!(cert_names_peer(&cert, &["n1"]));
        assert!(cert_names_peer(&cert, &["nope", "127.0.0.1"]));
        assert!(!cert_names_peer(&cert, &["n2", "10.0.0.2"]));
        assert!(!cert_names_peer(&CertificateDer::from(vec![1, 2, 3]), &["n1"]));
    }

    #[test]
    fn bad_files_say_which_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, b"not pem").unwrap();
        let files = TlsFiles { cert: junk.clone(), key: junk.clone(), ca: None };
        let problem = server_config(&files, false).unwrap_err();
        assert!(problem.contains("junk.pem"), "{problem}");
        let missing = TlsFiles { cert: dir.path().join("none.pem"), key: junk, ca: None };
        assert!(server_config(&missing, false).unwrap_err().contains("cannot read"));
    }
}
