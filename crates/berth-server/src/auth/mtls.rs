//! Client-certificate identity (mTLS): with `http.tls.cacert`, every client
//! presents a certificate the CA signed; the attribute `http.auth.mtls`
//! chooses (the Common Name by default) is the caller's user name, as in
//! zot. Credentials in an `Authorization` header take precedence.

use regex::Regex;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};

use super::AuthConfigError;
use crate::config::MtlsConfig;

/// A part of a certificate that can name its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attribute {
    CommonName,
    Subject,
    Email,
    Uri,
    DnsName,
}

impl Attribute {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "commonname" | "cn" => Self::CommonName,
            "subject" | "dn" => Self::Subject,
            "email" | "rfc822name" => Self::Email,
            "uri" | "url" => Self::Uri,
            "dnsname" | "dns" => Self::DnsName,
            _ => return None,
        })
    }
}

pub struct MtlsIdentity {
    attributes: Vec<Attribute>,
    uri_pattern: Option<Regex>,
    uri_index: usize,
    dns_index: usize,
    email_index: usize,
}

impl MtlsIdentity {
    /// Errors name the key.
    pub fn new(config: &MtlsConfig) -> Result<Self, AuthConfigError> {
        let mut attributes = Vec::new();
        for a in &config.identity_attributes {
            attributes.push(Attribute::parse(a).ok_or_else(|| AuthConfigError::Invalid {
                key: "http.auth.mtls.identityAttributes",
                message: format!("{a:?} is not one of CommonName, Subject, Email, URI, DNSName"),
            })?);
        }
        if attributes.is_empty() {
            attributes.push(Attribute::CommonName);
        }
        let uri_pattern = match config.uri_san_pattern.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => {
                let re = Regex::new(p).map_err(|e| AuthConfigError::Invalid {
                    key: "http.auth.mtls.uriSanPattern",
                    message: e.to_string(),
                })?;
                if re.captures_len() < 2 {
                    return Err(AuthConfigError::Needs {
                        key: "http.auth.mtls.uriSanPattern",
                        needs: "a group, the part that is the identity",
                    });
                }
                Some(re)
            }
            None => None,
        };
        Ok(Self {
            attributes,
            uri_pattern,
            uri_index: config.uri_san_index,
            dns_index: config.dns_san_index,
            email_index: config.email_san_index,
        })
    }

    /// The identity in a DER certificate, `None` when none of the chosen
    /// attributes is there.
    pub fn identity(&self, der: &[u8]) -> Option<String> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let sans: Vec<GeneralName<'_>> = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|ext| ext.value.general_names.clone())
            .unwrap_or_default();
        let nth = |pick: fn(&GeneralName<'_>) -> Option<String>, i: usize| {
            sans.iter().filter_map(pick).nth(i)
        };
        // An empty value names nobody: the next attribute is tried.
        let found = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        self.attributes.iter().find_map(|a| {
            found(match a {
                // The last CN, as Go (and so zot) reads it.
                Attribute::CommonName => cert
                    .subject()
                    .iter_common_name()
                    .last()
                    .and_then(|cn| cn.as_str().ok())
                    .map(str::to_string),
                Attribute::Subject => Some(rfc2253(cert.subject())),
                Attribute::Email => nth(
                    |g| match g {
                        GeneralName::RFC822Name(e) => Some(e.to_string()),
                        _ => None,
                    },
                    self.email_index,
                ),
                Attribute::DnsName => nth(
                    |g| match g {
                        GeneralName::DNSName(d) => Some(d.to_string()),
                        _ => None,
                    },
                    self.dns_index,
                ),
                Attribute::Uri => {
                    let uri = nth(
                        |g| match g {
                            GeneralName::URI(u) => Some(u.to_string()),
                            _ => None,
                        },
                        self.uri_index,
                    )?;
                    match &self.uri_pattern {
                        None => Some(uri),
                        Some(re) => re
                            .captures(&uri)
                            .and_then(|c| c.get(1))
                            .map(|m| m.as_str().to_string()),
                    }
                }
            })
        })
    }
}

/// A name as Go's `pkix.Name.String` prints it: RDNs last to first,
/// `TYPE=value` joined by commas, RFC 2253 escapes.
fn rfc2253(name: &X509Name<'_>) -> String {
    let short = |oid: &str| -> Option<&'static str> {
        Some(match oid {
            "2.5.4.3" => "CN",
            "2.5.4.6" => "C",
            "2.5.4.7" => "L",
            "2.5.4.8" => "ST",
            "2.5.4.9" => "STREET",
            "2.5.4.10" => "O",
            "2.5.4.11" => "OU",
            "2.5.4.17" => "POSTALCODE",
            "2.5.4.5" => "SERIALNUMBER",
            _ => return None,
        })
    };
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let ty = short(&oid).map(str::to_string).unwrap_or(oid);
                    let value = atv
                        .as_str()
                        .map(escape)
                        .unwrap_or_else(|_| format!("#{}", hex::encode(atv.attr_value().data)));
                    format!("{ty}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == v.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> Vec<u8> {
        let mut p =
            rcgen::CertificateParams::new(vec!["build.example".to_string()]).expect("params");
        p.distinguished_name.push(rcgen::DnType::CountryName, "US");
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example, Inc");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        p.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://example.org/ns/ci/sa/builder"
                .try_into()
                .expect("uri"),
        ));
        p.subject_alt_names.push(rcgen::SanType::Rfc822Name(
            "alice@example.org".try_into().expect("email"),
        ));
        let key = rcgen::KeyPair::generate().expect("key");
        p.self_signed(&key).expect("cert").der().to_vec()
    }

    fn ident(attrs: &[&str], pattern: Option<&str>) -> Option<String> {
        MtlsIdentity::new(&MtlsConfig {
            identity_attributes: attrs.iter().map(|s| s.to_string()).collect(),
            uri_san_pattern: pattern.map(str::to_string),
            ..MtlsConfig::default()
        })
        .expect("config")
        .identity(&cert())
    }

    #[test]
    fn attributes_name_the_holder() {
        assert_eq!(ident(&[], None).as_deref(), Some("alice"));
        assert_eq!(
            ident(&["Subject"], None).as_deref(),
            // As `openssl x509 -subject -nameopt RFC2253` prints it.
            Some("O=Example\\, Inc,C=US,CN=alice")
        );
        assert_eq!(
            ident(&["email"], None).as_deref(),
            Some("alice@example.org")
        );
        assert_eq!(ident(&["DNS"], None).as_deref(), Some("build.example"));
        assert_eq!(
            ident(&["URI"], None).as_deref(),
            Some("spiffe://example.org/ns/ci/sa/builder")
        );
        assert_eq!(
            ident(&["URI"], Some("^spiffe://example.org/ns/[^/]+/sa/(.+)$")).as_deref(),
            Some("builder")
        );
        // The first attribute present wins.
        assert_eq!(
            ident(&["URI", "CN"], Some("^https://(.+)$")).as_deref(),
            Some("alice")
        );
        assert_eq!(ident(&["URI"], Some("^https://(.+)$")), None);
        assert!(
            MtlsIdentity::new(&MtlsConfig {
                identity_attributes: vec!["Serial".into()],
                ..MtlsConfig::default()
            })
            .is_err()
        );
        assert!(
            MtlsIdentity::new(&MtlsConfig {
                uri_san_pattern: Some("no-group".into()),
                ..MtlsConfig::default()
            })
            .is_err()
        );
    }
}
