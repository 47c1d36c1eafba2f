//! Writes a throw-away CA and one certificate for benchmarks and local trials:
//! `cargo run -p node --example gen-certs -- <dir> [name-or-ip ...]` writes
//! `<dir>/ca.crt`, `<dir>/node.crt` and `<dir>/node.key` (the certificate valid
//! for every name given, `127.0.0.1` and `localhost` by default). Not for
//! production: the CA key is not kept.

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: gen-certs <dir> [name-or-ip ...]"));
    let mut names: Vec<String> = args.collect();
    if names.is_empty() {
        names = vec!["127.0.0.1".into(), "localhost".into()];
    }
    std::fs::create_dir_all(&dir).expect("create the directory");
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "raftkv throw-away CA");
    let ca = ca_params.self_signed(&ca_key).expect("the CA certificate");
    let key = rcgen::KeyPair::generate().expect("a node key");
    let params = rcgen::CertificateParams::new(names.clone()).expect("node parameters");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("the node certificate");
    std::fs::write(dir.join("ca.crt"), ca.pem()).expect("write ca.crt");
    std::fs::write(dir.join("node.crt"), cert.pem()).expect("write node.crt");
    std::fs::write(dir.join("node.key"), key.serialize_pem()).expect("write node.key");
    println!("wrote {}/{{ca.crt,node.crt,node.key}} for {}", dir.display(), names.join(", "));
}
