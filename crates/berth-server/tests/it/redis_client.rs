//! zot's go-redis options acting on a real `redis-server`: the pool size
//! opens that many connections, each speaking the protocol asked for; the
//! client's identity is what the server reports where it keeps one (Redis
//! 7.2's `CLIENT SETINFO`; Debian's 7.0 has none, and the connections
//! must work all the same).

use berth_server::meta::{MetaStore, RedisMetaStore, RedisOptions};

use crate::redis_server::RedisServer;

/// `CLIENT LIST`'s lines but redis-cli's own.
fn clients(server: &RedisServer) -> Vec<String> {
    let out = std::process::Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "CLIENT",
            "LIST",
        ])
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("cmd=client|list"))
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn pool_size_protocol_and_identity_reach_the_server() {
    let server = RedisServer::start();
    let options = RedisOptions {
        addr: vec![server.addr()],
        key_prefix: "pool".into(),
        connections: 3,
        resp3: true,
        identity: Some(Some("zotmeta".into())),
        ..Default::default()
    };
    let store = RedisMetaStore::open(&options).await.expect("open");
    // Commands spread over the connections still see one store.
    for _ in 0..6 {
        store.repos().await.expect("repos");
    }
    let listed = clients(&server);
    let ours: Vec<&String> = listed.iter().filter(|l| l.contains("resp=3")).collect();
    assert_eq!(ours.len(), 3, "three RESP3 connections: {listed:#?}");
    if listed.iter().any(|l| l.contains("lib-name=")) {
        assert!(
            ours.iter()
                .all(|l| l.contains("lib-name=redis-rs(zotmeta)")),
            "{ours:#?}"
        );
    }
    drop(store);

    let quiet = RedisOptions {
        addr: vec![server.addr()],
        key_prefix: "quiet".into(),
        identity: Some(None),
        ..Default::default()
    };
    let store = RedisMetaStore::open(&quiet).await.expect("open");
    store.repos().await.expect("repos");
    let listed = clients(&server);
    let ours: Vec<&String> = listed.iter().filter(|l| l.contains("resp=2")).collect();
    assert_eq!(ours.len(), 1, "one RESP2 connection: {listed:#?}");
    if listed.iter().any(|l| l.contains("lib-name=")) {
        assert!(
            ours[0].contains("lib-name= "),
            "no CLIENT SETINFO: {ours:#?}"
        );
    }
}
