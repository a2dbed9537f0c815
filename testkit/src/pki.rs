//! [`TestPki`]: a certificate authority and a certificate for `127.0.0.1`, made per test, for
//! the servers a test runs with TLS and the clients that trust them.

use crate::names::unique;

/// A certificate authority made for one test, and a certificate for `127.0.0.1` it signed, as PEM
/// files (`ca.pem`, `cert.pem`, `key.pem`) in a fresh directory removed when dropped: for the
/// servers a test runs with TLS (Redis, the broker, the api) and the clients that trust the CA.
pub struct TestPki {
    dir: std::path::PathBuf,
    ca_pem: String,
}

impl TestPki {
    /// Makes the CA and the certificate.
    ///
    /// # Panics
    /// When the keys or the files cannot be made.
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("pki"));
        std::fs::create_dir_all(&dir).expect("pki dir");
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "leaderboard test CA");
        let ca = ca.self_signed(&ca_key).expect("ca");
        let key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
        let leaf = leaf.signed_by(&key, &ca, &ca_key).expect("leaf");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("ca.pem");
        std::fs::write(dir.join("cert.pem"), leaf.pem()).expect("cert.pem");
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("key.pem");
        Self { dir, ca_pem: ca.pem() }
    }

    /// The path of `ca.pem`, `cert.pem` or `key.pem`.
    ///
    /// # Panics
    /// When the temporary directory's path is not UTF-8.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().expect("utf-8 path").to_string()
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
