//! zot's `cluster` (scale-out), where members do not share storage: each
//! repository belongs to one member, the one its name hashes to, and a
//! request about a repository that another member owns is forwarded there
//! and its answer streamed back.
//!
//! Ownership is zot's, so a Berth member and a zot member agree: SipHash-2-4
//! (64 bits) of the repository name's bytes, keyed with the 16 bytes of
//! `hashKey` (the first 8 little-endian as k0, the next 8 as k1), modulo the
//! number of members, indexing `members` in the order written.
//!
//! Forwarded: every route under `/v2/<name>/` (manifests, blobs, uploads,
//! tags, referrers). Not forwarded: `/v2/`, the catalog and the extensions'
//! routes, answered by the member asked from what it holds. A forwarded
//! request is authenticated and authorized by its owner (every header is
//! passed on), carries zot's `X-Zot-Cluster-Hop-Count: 1`, and one that
//! arrives with it and still is not this member's is refused (508), so a
//! members list that differs between members cannot loop. With `http.tls`
//! members are reached over HTTPS, trusting `cluster.tls.cacert` (the
//! system's roots without it) and presenting `cluster.tls.cert` when set.
//! An owner that cannot be reached makes the request 503.
//!
//! Which member this is: the one whose port is `http.port` and whose host
//! is an address of this machine (one a socket can be bound to; a name is
//! resolved first). None found is a start-up error naming
//! `cluster.members`.
//!
//! Members sharing a bucket and a metadata store need none of this: each
//! serves every repository itself (`Config::shares_storage`), and this is
//! not built.

use std::hash::Hasher as _;
use std::net::{IpAddr, ToSocketAddrs as _, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use berth_oci::ErrorCode;
use futures_util::TryStreamExt;
use http::{HeaderMap, HeaderName, StatusCode, header};

use crate::api::AppState;
use crate::api::error::ApiError;
use crate::config::{ClusterConfig, ConfigError, HttpConfig};

/// zot's mark on a request one member forwards to another.
pub const HOP: HeaderName = HeaderName::from_static("x-zot-cluster-hop-count");

/// How long connecting to a member may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The members, which one this is, and the client that reaches the others.
pub struct Cluster {
    members: Vec<String>,
    keys: (u64, u64),
    local: usize,
    scheme: &'static str,
    client: reqwest::Client,
}

/// The SipHash keys of a 16-byte `hashKey`.
fn keys(hash_key: &[u8]) -> (u64, u64) {
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    match hash_key.len() {
        16 => (word(&hash_key[..8]), word(&hash_key[8..])),
        // Refused by the config check; never reached.
        _ => (0, 0),
    }
}

/// SipHash-2-4 of `data` with `keys`.
fn siphash(keys: (u64, u64), data: &[u8]) -> u64 {
    let mut h = siphasher::sip::SipHasher24::new_with_keys(keys.0, keys.1);
    h.write(data);
    h.finish()
}

/// Whether `ip` is an address of this machine: one a socket can be bound to.
fn is_local(ip: IpAddr) -> bool {
    ip.is_unspecified() || UdpSocket::bind((ip, 0)).is_ok()
}

/// The index of the member that is this instance (listening on `port`).
fn local_member(members: &[String], port: &str) -> Result<usize, ConfigError> {
    for (i, member) in members.iter().enumerate() {
        let Some((host, member_port)) = member.rsplit_once(':') else {
            continue;
        };
        if member_port != port {
            continue;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (host, 0u16)
                .to_socket_addrs()
                .map_err(|e| {
                    ConfigError::key(
                        format!("cluster.members[{i}]"),
                        format!("cannot resolve {host}: {e}"),
                    )
                })?
                .map(|a| a.ip())
                .collect(),
        };
        if ips.into_iter().any(is_local) {
            return Ok(i);
        }
    }
    Err(ConfigError::key(
        "cluster.members",
        format!(
            "none is this instance: none has port {port} (http.port) and an address of this machine"
        ),
    ))
}

fn read(key: &str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|e| ConfigError::key(key, format!("cannot read {}: {e}", path.display())))
}

impl Cluster {
    /// The cluster `config` describes, as seen from the member listening
    /// on `http.port`.
    pub fn new(config: &ClusterConfig, http: &HttpConfig) -> Result<Self, ConfigError> {
        let local = local_member(&config.members, &http.port.0.to_string())?;
        let https = http.tls.is_some();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .http1_only();
        if let Some(tls) = &config.tls {
            if let Some(ca) = &tls.cacert {
                let pem = read("cluster.tls.cacert", ca)?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    ConfigError::key("cluster.tls.cacert", format!("no certificate: {e}"))
                })?;
                builder = builder.tls_certs_only(certs);
            }
            if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
                let mut pem = read("cluster.tls.cert", cert)?;
                pem.extend(read("cluster.tls.key", key)?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    ConfigError::key(
                        "cluster.tls.cert",
                        format!("not a certificate and key: {e}"),
                    )
                })?;
                builder = builder.identity(identity);
            }
        }
        let client = builder
            .build()
            .map_err(|e| ConfigError::key("cluster.tls", e.to_string()))?;
        Ok(Self {
            members: config.members.clone(),
            keys: keys(config.hash_key.as_bytes()),
            local,
            scheme: if https { "https" } else { "http" },
            client,
        })
    }

    /// The index of the member that owns `repo`.
    pub fn owner(&self, repo: &str) -> usize {
        owner_of(self.keys, self.members.len(), repo)
    }

    /// This member's index in `members`.
    pub fn local(&self) -> usize {
        self.local
    }

    /// Forwards `req` to member `owner` and streams its answer back.
    async fn forward(&self, owner: usize, req: Request) -> Response {
        let member = &self.members[owner];
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let url = format!("{}://{member}{path}", self.scheme);
        let (parts, body) = req.into_parts();
        // A request that came with no body goes on with none (a stream
        // would be sent chunked, even on a GET).
        let has_body = parts.headers.contains_key(header::TRANSFER_ENCODING)
            || parts
                .headers
                .get(header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0");
        let mut headers = end_to_end(&parts.headers);
        headers.insert(HOP, http::HeaderValue::from_static("1"));
        let mut forwarded = self.client.request(parts.method, url).headers(headers);
        if has_body {
            forwarded = forwarded.body(reqwest::Body::wrap_stream(body.into_data_stream()));
        }
        let sent = forwarded.send().await;
        match sent {
            Ok(resp) => {
                let mut out = Response::builder().status(resp.status());
                if let Some(h) = out.headers_mut() {
                    *h = end_to_end(resp.headers());
                }
                let body = Body::from_stream(resp.bytes_stream().map_err(std::io::Error::other));
                out.body(body).unwrap_or_else(|e| {
                    ApiError::internal(format!("forwarding to {member}: {e}")).into_response()
                })
            }
            Err(e) => ApiError::unavailable(&format!("cluster member {member}"), e).into_response(),
        }
    }
}

/// The owner's index among `count` members for `repo`.
fn owner_of(keys: (u64, u64), count: usize, repo: &str) -> usize {
    match count {
        0 => 0,
        n => (siphash(keys, repo.as_bytes()) % n as u64) as usize,
    }
}

/// `headers` without the hop-by-hop ones (RFC 9110 §7.6.1), those the
/// `Connection` header names included.
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    let mut out = headers.clone();
    for h in [
        header::CONNECTION,
        header::HOST,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
        HeaderName::from_static("keep-alive"),
    ] {
        out.remove(h);
    }
    for n in named {
        if let Ok(h) = HeaderName::try_from(n) {
            out.remove(h);
        }
    }
    out
}

/// The middleware: a request about a repository another member owns is
/// answered by that member.
pub async fn route_to_owner(
    State(state): State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(cluster) = state.cluster.clone() else {
        return next.run(req).await;
    };
    let owner = match crate::api::endpoint::parse(req.uri().path(), &state.mounted()) {
        Ok(ep) => ep.repo().map(|r| cluster.owner(r.as_str())),
        Err(_) => None,
    };
    match owner {
        Some(owner) if owner != cluster.local => {
            if req.headers().contains_key(HOP) {
                return loop_detected(&cluster, owner);
            }
            cluster.forward(owner, req).await
        }
        _ => next.run(req).await,
    }
}

fn loop_detected(cluster: &Arc<Cluster>, owner: usize) -> Response {
    ApiError::new(
        ErrorCode::Unsupported,
        format!(
            "forwarded here by another cluster member, but {} owns this repository: the members lists differ",
            cluster.members[owner]
        ),
    )
    .with_status(StatusCode::LOOP_DETECTED)
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash_2_4_matches_the_reference_vectors() {
        // The SipHash paper's test vector: key 00..0f, message 00..0e.
        let key: Vec<u8> = (0u8..16).collect();
        let message: Vec<u8> = (0u8..15).collect();
        assert_eq!(siphash(keys(&key), &message), 0xa129_ca61_49be_45e5);
        // And the empty message.
        assert_eq!(siphash(keys(&key), b""), 0x726f_db47_dd0e_0e31);
    }

    #[test]
    fn owners_spread_and_are_stable() {
        let k = keys(b"loremipsumdolors");
        let owners: Vec<usize> = (0..300)
            .map(|i| owner_of(k, 3, &format!("repo{i}")))
            .collect();
        for m in 0..3 {
            let n = owners.iter().filter(|&&o| o == m).count();
            assert!((60..=140).contains(&n), "member {m} owns {n} of 300");
        }
        assert_eq!(owner_of(k, 3, "a/b"), owner_of(k, 3, "a/b"));
        assert_eq!(owner_of(k, 1, "anything"), 0);
    }

    #[test]
    fn this_member_is_found_by_port_and_address() {
        let members = ["10.255.255.1:9000", "127.0.0.1:9001", "localhost:9002"].map(String::from);
        assert_eq!(local_member(&members, "9001").expect("local"), 1);
        assert_eq!(local_member(&members, "9002").expect("local"), 2);
        let err = local_member(&members, "9000").expect_err("not local");
        assert!(err.to_string().contains("cluster.members"), "{err}");
    }

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "close, x-private".parse().expect("v"));
        h.insert("x-private", "1".parse().expect("v"));
        h.insert(header::AUTHORIZATION, "Basic eA==".parse().expect("v"));
        h.insert(header::HOST, "a:1".parse().expect("v"));
        let out = end_to_end(&h);
        assert!(out.contains_key(header::AUTHORIZATION));
        assert!(!out.contains_key("x-private"));
        assert!(!out.contains_key(header::HOST));
        assert!(!out.contains_key(header::CONNECTION));
    }
}
