//! A real OpenLDAP `slapd` (Debian's package, installed by the README's
//! test command) started on a free loopback port in a temporary directory,
//! with the `memberof` overlay, and loaded with `ldapadd`.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::free_port;

pub const SUFFIX: &str = "dc=berth,dc=test";
pub const ADMIN_DN: &str = "cn=admin,dc=berth,dc=test";
pub const ADMIN_PW: &str = "admin-secret";

pub struct Slapd {
    child: Child,
    /// `ldap://` (StartTLS too when started with TLS).
    pub port: u16,
    /// `ldaps://`, when started with TLS.
    pub tls_port: Option<u16>,
}

/// PEM files for slapd's TLS: its CA, certificate and key.
pub struct SlapdTls<'a> {
    pub ca: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
}

impl Slapd {
    /// Starts slapd under `dir` and loads `ldif` into it.
    pub fn start(dir: &Path, ldif: &str) -> Self {
        Self::start_with(dir, ldif, None)
    }

    /// Like [`Slapd::start`], and with `tls` also serving `ldaps://` and
    /// StartTLS.
    pub fn start_with(dir: &Path, ldif: &str, tls: Option<SlapdTls<'_>>) -> Self {
        let tls_conf = tls
            .as_ref()
            .map(|t| {
                format!(
                    "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                    t.ca.display(),
                    t.cert.display(),
                    t.key.display()
                )
            })
            .unwrap_or_default();
        let db = dir.join("db");
        std::fs::create_dir_all(&db).expect("db dir");
        let conf = dir.join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/nis.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 moduleload memberof\n\
                 pidfile {dir}/slapd.pid\n\
                 {tls_conf}\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"{SUFFIX}\"\n\
                 rootdn \"{ADMIN_DN}\"\n\
                 rootpw {ADMIN_PW}\n\
                 directory {db}\n\
                 overlay memberof\n",
                dir = dir.display(),
                db = db.display(),
            ),
        )
        .expect("slapd.conf");
        // A port is picked, freed and handed to slapd; retried if another
        // process takes it in between.
        for _ in 0..5 {
            let port = free_port();
            let tls_port = tls.as_ref().map(|_| free_port());
            let mut urls = format!("ldap://127.0.0.1:{port}/");
            if let Some(p) = tls_port {
                urls.push_str(&format!(" ldaps://127.0.0.1:{p}/"));
            }
            let binary = if Path::new("/usr/sbin/slapd").exists() {
                "/usr/sbin/slapd"
            } else {
                "slapd"
            };
            let mut child = Command::new(binary)
                .arg("-f")
                .arg(&conf)
                .args(["-h", &urls, "-d", "0"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("slapd is required (the README's test command installs it)");
            let mut up = false;
            for _ in 0..100 {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    up = true;
                    break;
                }
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !up {
                let _ = child.kill();
                let _ = child.wait();
                continue;
            }
            let slapd = Self {
                child,
                port,
                tls_port,
            };
            slapd.modify("ldapadd", ldif);
            return slapd;
        }
        panic!("slapd did not start");
    }

    /// Runs `ldapadd` or `ldapmodify` as the admin with `ldif` on stdin.
    pub fn modify(&self, tool: &str, ldif: &str) {
        use std::io::Write;
        let mut child = Command::new(tool)
            .args(["-x", "-H", &format!("ldap://127.0.0.1:{}", self.port)])
            .args(["-D", ADMIN_DN, "-w", ADMIN_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldap-utils is required (the README's test command installs it)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("ldif");
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
