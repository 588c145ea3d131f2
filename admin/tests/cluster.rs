//! Cluster state and connection failures against a real broker.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{dead_port, test_config, TestBroker};
use runnel_admin::{AdminClient, AdminConfig, AdminError, BrokerNode, ConfigSource};

#[tokio::test]
async fn describe_cluster_matches_meta_properties_and_listener() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let c = admin.describe_cluster().await.unwrap();

    let port: i32 = b.bootstrap.rsplit_once(':').unwrap().1.parse().unwrap();
    assert_eq!(
        c.brokers,
        vec![BrokerNode {
            id: b.node_id,
            host: "127.0.0.1".into(),
            port,
            rack: None,
        }]
    );
    assert_eq!(c.controller_id, Some(b.node_id));
    let id = c.cluster_id.expect("cluster id");
    // Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding.
    assert_eq!(id.len(), 22, "{id}");
    match b.meta_cluster_id() {
        Some(on_disk) => assert_eq!(id, on_disk, "cluster id differs from meta.properties"),
        None => assert!(!b.is_runnel, "runnel data dir has no cluster.id"),
    }
    // stable across calls and connections
    let again = b.client().await.unwrap().describe_cluster().await.unwrap();
    assert_eq!(again.cluster_id.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn describe_broker_configs() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let entries = admin.describe_broker_configs(b.node_id).await.unwrap();
    let get = |n: &str| {
        entries
            .iter()
            .find(|e| e.name == n)
            .unwrap_or_else(|| panic!("no {n} in {entries:?}"))
    };
    if let Some(dir) = &b.data_dir {
        let log_dirs = get("log.dirs");
        assert_eq!(log_dirs.value.as_deref(), Some(dir.to_str().unwrap()));
        assert_eq!(log_dirs.source, ConfigSource::StaticBrokerConfig);
        assert!(log_dirs.read_only);
    }
    let node_id = get("node.id");
    assert_eq!(node_id.value.as_deref(), Some("1"));
    assert_eq!(node_id.source, ConfigSource::StaticBrokerConfig);
    assert!(node_id.read_only);
    // not set anywhere: Kafka's built-in default
    let rf = get("log.cleaner.threads");
    assert_eq!(rf.value.as_deref(), Some("1"));
    assert_eq!(rf.source, ConfigSource::DefaultConfig);

    // listeners are per-broker dynamic configs in Kafka (read_only false);
    // num.partitions is not dynamic (read_only true).
    assert!(!get("listeners").read_only);
    assert!(!get("listener.security.protocol.map").read_only);
    assert!(get("num.partitions").read_only);
    // broker.id is node.id in KRaft, set statically through it.
    let broker_id = get("broker.id");
    assert_eq!(broker_id.value.as_deref(), Some("1"));
    assert_eq!(broker_id.source, ConfigSource::StaticBrokerConfig);
    assert!(broker_id.read_only);
    // Kafka 4.1.1 describes 316 broker configs.
    assert_eq!(
        entries.len(),
        316,
        "{:?}",
        entries.iter().map(|e| &e.name).collect::<Vec<_>>()
    );
    // a password: sensitive, never echoed
    let pw = get("ssl.keystore.password");
    assert!(pw.is_sensitive);
    assert_eq!(pw.value, None);

    match admin.describe_broker_configs(4242).await {
        Err(AdminError::InvalidArgument(m)) => assert!(m.contains("4242"), "{m}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn per_broker_dynamic_configs_are_set_and_deleted() {
    use runnel_admin::AlterConfigOp;
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    // Kafka describes these dynamic-only keys only where they are set.
    let rate = |entries: &[runnel_admin::ConfigEntry], n: &str| {
        entries
            .iter()
            .find(|e| e.name == n)
            .map(|e| (e.value.clone(), e.source))
    };
    let keys = [
        "leader.replication.throttled.rate",
        "follower.replication.throttled.rate",
    ];
    let set: Vec<_> = keys
        .iter()
        .map(|k| AlterConfigOp::Set(k.to_string(), "1048576".into()))
        .collect();
    admin
        .incremental_alter_broker_configs(b.node_id, &set, false)
        .await
        .unwrap();
    // Applied through the metadata log: poll until this broker describes it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entries = admin.describe_broker_configs(b.node_id).await.unwrap();
        let got: Vec<_> = keys.iter().map(|k| rate(&entries, k)).collect();
        if got
            .iter()
            .all(|g| *g == Some((Some("1048576".into()), ConfigSource::DynamicBrokerConfig)))
        {
            break;
        }
        assert!(Instant::now() < deadline, "not applied: {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delete: Vec<_> = keys
        .iter()
        .map(|k| AlterConfigOp::Delete(k.to_string()))
        .collect();
    admin
        .incremental_alter_broker_configs(b.node_id, &delete, false)
        .await
        .unwrap();
    loop {
        let entries = admin.describe_broker_configs(b.node_id).await.unwrap();
        let got: Vec<_> = keys.iter().map(|k| rate(&entries, k)).collect();
        if got.iter().all(Option::is_none) {
            break;
        }
        assert!(Instant::now() < deadline, "not removed: {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // An unknown broker: named in the error, nothing sent.
    match admin
        .incremental_alter_broker_configs(4242, &set, false)
        .await
    {
        Err(AdminError::InvalidArgument(m)) => assert!(m.contains("4242"), "{m}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn connect_to_dead_port_is_a_clean_io_error() {
    let (_held, port) = dead_port();
    let started = Instant::now();
    let r = AdminClient::connect(&format!("127.0.0.1:{port}"), test_config()).await;
    match r {
        Err(AdminError::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}")
        }
        other => panic!("expected a refused connection, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    // every bootstrap server dead: the last error
    let (_held_too, other) = dead_port();
    match AdminClient::connect(
        &format!("127.0.0.1:{port},127.0.0.1:{other}"),
        test_config(),
    )
    .await
    {
        Err(AdminError::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}")
        }
        other => panic!("expected a refused connection, got {other:?}"),
    }

    // a malformed list never touches the network
    for bad in ["", "localhost", "127.0.0.1:notaport"] {
        assert!(matches!(
            AdminClient::connect(bad, test_config()).await,
            Err(AdminError::InvalidArgument(_))
        ));
    }
}

#[tokio::test]
async fn silent_server_is_a_timeout_error() {
    // The kernel completes the handshake for a listener nobody accepts from,
    // so connect succeeds and ApiVersions is never answered.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = AdminConfig {
        request_timeout: Duration::from_millis(300),
        ..test_config()
    };
    let started = Instant::now();
    match AdminClient::connect(&addr.to_string(), config).await {
        Err(AdminError::Timeout) => {}
        other => panic!("unexpected {other:?}"),
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "{took:?}"
    );
    drop(listener);
}

#[tokio::test]
async fn skips_dead_bootstrap_servers() {
    let b = TestBroker::start().await;
    let (_held, dead) = dead_port();
    let admin = AdminClient::connect(&format!("127.0.0.1:{dead},{}", b.bootstrap), test_config())
        .await
        .unwrap();
    assert_eq!(
        admin.describe_cluster().await.unwrap().brokers[0].id,
        b.node_id
    );
}

#[tokio::test]
async fn reconnects_after_the_broker_drops_the_connection() {
    // Restart a runnel broker on the same ports and data dir: the client's
    // connection breaks, and the next call reconnects transparently.
    let mut b = TestBroker::start().await;
    if !b.is_runnel {
        return; // cannot restart an external broker
    }
    let admin = b.client().await.unwrap();
    let before = admin.describe_cluster().await.unwrap();
    b.restart().await;
    let after = admin.describe_cluster().await.unwrap();
    assert_eq!(before, after);
    drop(b);
    // broker gone: reconnecting fails cleanly
    match admin.describe_cluster().await {
        Err(AdminError::Io(_)) => {}
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[tokio::test]
async fn default_broker_configs_are_set_described_and_deleted() {
    use runnel_admin::AlterConfigOp;
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let key = "log.retention.ms";
    let default_value = |entries: &[runnel_admin::ConfigEntry]| {
        entries
            .iter()
            .find(|e| e.name == key)
            .map(|e| (e.value.clone(), e.source))
    };
    assert_eq!(
        default_value(&admin.describe_default_broker_configs().await.unwrap()),
        None
    );
    admin
        .incremental_alter_default_broker_configs(
            &[AlterConfigOp::Set(key.into(), "3600001".into())],
            false,
        )
        .await
        .unwrap();
    let want = Some((
        Some("3600001".to_string()),
        ConfigSource::DynamicDefaultBrokerConfig,
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = default_value(&admin.describe_default_broker_configs().await.unwrap());
        let on_broker = default_value(&admin.describe_broker_configs(b.node_id).await.unwrap());
        if d == want && on_broker == want {
            break;
        }
        assert!(Instant::now() < deadline, "{d:?} {on_broker:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // a static key cannot be changed at runtime: Kafka's INVALID_REQUEST
    let e = admin
        .incremental_alter_default_broker_configs(
            &[AlterConfigOp::Set("num.partitions".into(), "3".into())],
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), Some(42), "{e}");
    admin
        .incremental_alter_default_broker_configs(&[AlterConfigOp::Delete(key.into())], false)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while default_value(&admin.describe_default_broker_configs().await.unwrap()).is_some() {
        assert!(Instant::now() < deadline, "{key} still set");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn feature_levels_and_update_features_checks() {
    use runnel_admin::UpgradeType;
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let f = admin.describe_features().await.unwrap();
    assert_eq!(f.supported.get("metadata.version"), Some(&(7, 27)), "{f:?}");
    assert_eq!(f.finalized.get("metadata.version"), Some(&27), "{f:?}");
    assert!(f.epoch > 0, "{f:?}");
    // 4.1-IV1 -> 4.0-IV3 changes no metadata format: a safe downgrade validates.
    admin
        .update_feature("metadata.version", 25, UpgradeType::SafeDowngrade, true)
        .await
        .unwrap();
    // Across 4.0-IV1 (a metadata format change) it is refused: INVALID_UPDATE_VERSION.
    let e = admin
        .update_feature("metadata.version", 21, UpgradeType::SafeDowngrade, true)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), Some(95), "{e}");
    assert!(
        e.kafka_message()
            .is_some_and(|m| m.contains("might delete metadata information")),
        "{e}"
    );
    let e = admin
        .update_feature("metadata.version", 25, UpgradeType::Upgrade, false)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), Some(95), "{e}");
    let after = admin.describe_features().await.unwrap();
    assert_eq!(after.finalized.get("metadata.version"), Some(&27));
}

#[tokio::test]
async fn registered_brokers_and_unregister_of_an_unknown_id() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    assert_eq!(
        admin.registered_brokers().await.unwrap(),
        vec![(b.node_id, false)]
    );
    let e = admin.unregister_broker(4242).await.unwrap_err();
    // BROKER_ID_NOT_REGISTERED
    assert_eq!(e.kafka_code(), Some(102), "{e}");
    assert_eq!(
        e.kafka_message(),
        Some("Broker ID 4242 is not currently registered")
    );
}

#[tokio::test]
async fn voters_of_a_dynamic_quorum_are_described_with_directory_ids_and_changes_answered() {
    let Some(b) = TestBroker::start_dynamic().await else {
        return; // an external broker's quorum is static
    };
    let admin = b.client().await.unwrap();
    let q = admin.describe_quorum().await.unwrap();
    assert_eq!(q.leader_id, Some(1));
    let meta =
        std::fs::read_to_string(b.data_dir.as_ref().unwrap().join("meta.properties")).unwrap();
    let dir = meta
        .lines()
        .find_map(|l| l.strip_prefix("directory.id="))
        .expect("directory.id");
    assert_eq!(q.voter_directories.len(), 1);
    let (id, d) = q.voter_directories[0];
    assert_eq!(id, 1);
    let d = d.expect("a dynamic voter has a directory id");
    // meta.properties holds it in Kafka's unpadded base64url form
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_bytes()),
        dir
    );
    // No observer 2 follows the log: REQUEST_TIMED_OUT (Kafka's "lagging behind"),
    // not a refused request.
    let endpoint = [("CONTROLLER".to_string(), "127.0.0.1".to_string(), 1u16)];
    let e = admin
        .add_raft_voter(2, uuid::Uuid::from_bytes([7; 16]), &endpoint)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), Some(7), "{e}");
    // The only voter cannot be removed: VOTER_NOT_FOUND, as Kafka.
    let e = admin.remove_raft_voter(1, d).await.unwrap_err();
    assert_eq!(e.kafka_code(), Some(127), "{e}");
    // Already a voter: DUPLICATE_VOTER.
    let e = admin.add_raft_voter(1, d, &endpoint).await.unwrap_err();
    assert_eq!(e.kafka_code(), Some(126), "{e}");
}
