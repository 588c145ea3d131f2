//! Protocol behaviour against a scripted fake broker: ApiVersions fallback,
//! version capping, header encoding, correlation ids, reconnects, timeouts,
//! malformed frames.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, CreateTopicsRequest,
    CreateTopicsResponse, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{
    decode_request_header_from_buffer, Decodable, Encodable, HeaderVersion, StrBytes,
};
use runnel_admin::{AdminClient, AdminConfig, AdminError, BrokerNode, NewTopic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the fake broker does with one request.
enum Reply {
    /// Send this frame body (a size prefix is added).
    Frame(Bytes),
    /// Send these bytes as they are.
    Raw(Bytes),
    /// Close the connection.
    Close,
    /// Never answer.
    Hang,
}

/// One request the fake broker received.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    conn: usize,
    api_key: i16,
    version: i16,
    correlation_id: i32,
    client_id: Option<String>,
}

type Script = dyn Fn(usize, &RequestHeader, Bytes) -> Reply + Send + Sync;

/// Starts a fake broker; returns its address and the requests it saw.
async fn mock(script: Box<Script>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script: Arc<Script> = Arc::from(script);
    let seen2 = seen.clone();
    tokio::spawn(async move {
        let mut conn = 0;
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (script, seen, n) = (script.clone(), seen2.clone(), conn);
            conn += 1;
            tokio::spawn(async move {
                loop {
                    let Ok(size) = sock.read_i32().await else {
                        return;
                    };
                    let mut buf = vec![0u8; size as usize];
                    if sock.read_exact(&mut buf).await.is_err() {
                        return;
                    }
                    let mut body = Bytes::from(buf);
                    let header = decode_request_header_from_buffer(&mut body).unwrap();
                    seen.lock().unwrap().push(Seen {
                        conn: n,
                        api_key: header.request_api_key,
                        version: header.request_api_version,
                        correlation_id: header.correlation_id,
                        client_id: header.client_id.as_ref().map(|c| c.to_string()),
                    });
                    match script(n, &header, body) {
                        Reply::Frame(f) => {
                            let mut out = BytesMut::new();
                            out.put_i32(f.len() as i32);
                            out.put_slice(&f);
                            if sock.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                        Reply::Raw(r) => {
                            if sock.write_all(&r).await.is_err() {
                                return;
                            }
                        }
                        Reply::Close => return,
                        Reply::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// Decodes a request body, asserting it is consumed exactly.
fn decode<R: Decodable>(mut body: Bytes, version: i16) -> R {
    let r = R::decode(&mut body, version).unwrap();
    assert!(body.is_empty(), "{} trailing request bytes", body.len());
    r
}

/// A response frame body: header (of the right version) and message.
fn respond<R: Encodable + HeaderVersion>(header: &RequestHeader, r: &R) -> Reply {
    let v = header.request_api_version;
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut buf, R::header_version(v))
        .unwrap();
    r.encode(&mut buf, v).unwrap();
    Reply::Frame(buf.freeze())
}

fn versions(ranges: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        ranges
            .iter()
            .map(|&(k, min, max)| {
                ApiVersion::default()
                    .with_api_key(k as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}

/// A broker advertising ApiVersions 0-3 and Metadata 0-12.
fn modern_versions() -> ApiVersionsResponse {
    versions(&[(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 0, 12)])
}

fn metadata(cluster: &str) -> MetadataResponse {
    MetadataResponse::default()
        .with_cluster_id(Some(StrBytes::from_string(cluster.to_string())))
        .with_controller_id(BrokerId(7))
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(7))
            .with_host(StrBytes::from_static_str("b7.example"))
            .with_port(9092)
            .with_rack(Some(StrBytes::from_static_str("rack-a")))])
}

fn config(request_timeout_ms: u64) -> AdminConfig {
    AdminConfig {
        client_id: "mock-test".into(),
        request_timeout: Duration::from_millis(request_timeout_ms),
        connect_timeout: Duration::from_secs(2),
    }
}

/// Answers ApiVersions with [`modern_versions`] and Metadata with [`metadata`].
fn answer_basic(header: &RequestHeader, body: Bytes) -> Reply {
    let v = header.request_api_version;
    match ApiKey::try_from(header.request_api_key).unwrap() {
        ApiKey::ApiVersions => {
            let _: ApiVersionsRequest = decode(body, v);
            respond(header, &modern_versions())
        }
        ApiKey::Metadata => {
            let _: MetadataRequest = decode(body, v);
            respond(header, &metadata("mock-cluster"))
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn api_versions_falls_back_to_v0_and_versions_are_negotiated() {
    let (addr, seen) = mock(Box::new(|_, h, body| {
        let v = h.request_api_version;
        match ApiKey::try_from(h.request_api_key).unwrap() {
            ApiKey::ApiVersions if v == 3 => {
                let r: ApiVersionsRequest = decode(body, 3);
                assert_eq!(r.client_software_name.as_str(), "runnel-admin");
                assert!(!r.client_software_version.is_empty());
                // An old broker: UNSUPPORTED_VERSION in a v0 body (header v0).
                let mut buf = BytesMut::new();
                buf.put_i32(h.correlation_id);
                ApiVersionsResponse::default()
                    .with_error_code(35)
                    .encode(&mut buf, 0)
                    .unwrap();
                Reply::Frame(buf.freeze())
            }
            ApiKey::ApiVersions => {
                assert_eq!(v, 0);
                let _: ApiVersionsRequest = decode(body, 0);
                respond(
                    h,
                    &versions(&[
                        (ApiKey::ApiVersions, 0, 0),
                        (ApiKey::Metadata, 0, 99), // above what the client implements
                        (ApiKey::CreateTopics, 0, 4),
                    ]),
                )
            }
            ApiKey::Metadata => {
                assert_eq!(v, 13, "capped at kafka-protocol's Metadata v13");
                let r: MetadataRequest = decode(body, v);
                assert_eq!(r.topics, Some(vec![]), "asks for no topics");
                respond(h, &metadata("old-cluster"))
            }
            ApiKey::CreateTopics => {
                assert_eq!(v, 4, "capped at the broker's CreateTopics v4");
                let r: CreateTopicsRequest = decode(body, v);
                assert_eq!(r.topics.len(), 1);
                assert_eq!(r.topics[0].name.0.as_str(), "t");
                assert_eq!(r.topics[0].num_partitions, 3);
                assert_eq!(r.topics[0].replication_factor, 2);
                assert_eq!(r.topics[0].configs.len(), 1);
                assert_eq!(r.topics[0].configs[0].name.as_str(), "retention.ms");
                assert_eq!(
                    r.topics[0].configs[0].value.as_ref().map(|v| v.as_str()),
                    Some("5")
                );
                assert_eq!(r.timeout_ms, 5000);
                assert!(r.validate_only);
                respond(
                    h,
                    &CreateTopicsResponse::default().with_topics(vec![
                        CreatableTopicResult::default()
                            .with_name(TopicName(StrBytes::from_static_str("t")))
                            .with_error_code(38)
                            .with_error_message(Some(StrBytes::from_static_str(
                                "Replication factor: 2 larger than available brokers: 1.",
                            ))),
                    ]),
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    }))
    .await;
    let admin = AdminClient::connect(&addr, config(5000)).await.unwrap();
    let c = admin.describe_cluster().await.unwrap();
    assert_eq!(c.cluster_id.as_deref(), Some("old-cluster"));
    assert_eq!(c.controller_id, Some(7));
    assert_eq!(
        c.brokers,
        vec![BrokerNode {
            id: 7,
            host: "b7.example".into(),
            port: 9092,
            rack: Some("rack-a".into())
        }]
    );

    let err = admin
        .create_topic(
            NewTopic::new("t", 3, 2).with_config("retention.ms", "5"),
            true,
        )
        .await
        .unwrap_err();
    match &err {
        AdminError::Kafka {
            api,
            code,
            name,
            message,
        } => {
            assert_eq!(
                (*api, *code, name.as_str(), message.as_deref()),
                (
                    "CreateTopics",
                    38,
                    "INVALID_REPLICATION_FACTOR",
                    Some("Replication factor: 2 larger than available brokers: 1.")
                )
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "CreateTopics failed: INVALID_REPLICATION_FACTOR (38): Replication factor: 2 larger than available brokers: 1."
    );

    // an API the broker does not list
    match admin.describe_topic_configs("t").await {
        Err(AdminError::Protocol(m)) => assert!(m.contains("DescribeConfigs"), "{m}"),
        other => panic!("{other:?}"),
    }
    // DeleteTopics v0 only would be below the client's minimum
    let seen = seen.lock().unwrap().clone();
    let keys: Vec<(usize, i16, i16)> = seen
        .iter()
        .map(|s| (s.conn, s.api_key, s.version))
        .collect();
    assert_eq!(keys, vec![(0, 18, 3), (0, 18, 0), (0, 3, 13), (0, 19, 4)]);
    let ids: Vec<i32> = seen.iter().map(|s| s.correlation_id).collect();
    assert_eq!(ids, vec![0, 1, 2, 3], "one correlation id per request");
    assert!(seen
        .iter()
        .all(|s| s.client_id.as_deref() == Some("mock-test")));
}

#[tokio::test]
async fn api_versions_fallback_uses_the_brokers_max() {
    let (addr, seen) = mock(Box::new(|_, h, body| {
        let v = h.request_api_version;
        if v == 3 {
            let mut buf = BytesMut::new();
            buf.put_i32(h.correlation_id);
            versions(&[(ApiKey::ApiVersions, 0, 2)])
                .with_error_code(35)
                .encode(&mut buf, 0)
                .unwrap();
            return Reply::Frame(buf.freeze());
        }
        match ApiKey::try_from(h.request_api_key).unwrap() {
            ApiKey::ApiVersions => {
                let _: ApiVersionsRequest = decode(body, v);
                respond(
                    h,
                    &versions(&[(ApiKey::ApiVersions, 0, 2), (ApiKey::Metadata, 0, 8)]),
                )
            }
            _ => answer_basic(h, body),
        }
    }))
    .await;
    let admin = AdminClient::connect(&addr, config(5000)).await.unwrap();
    // DescribeTopics needs Metadata v4+: fine at v8
    let t = admin.describe_topics(Some(&[])).await.unwrap();
    assert!(t.is_empty());
    let keys: Vec<(i16, i16)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| (s.api_key, s.version))
        .collect();
    assert_eq!(keys, vec![(18, 3), (18, 2), (3, 8)]);
}

#[tokio::test]
async fn mismatched_correlation_id_is_a_protocol_error() {
    let (addr, _) = mock(Box::new(|_, h, body| {
        if h.request_api_key == ApiKey::Metadata as i16 {
            let mut wrong = h.clone();
            wrong.correlation_id += 100;
            return respond(&wrong, &metadata("x"));
        }
        answer_basic(h, body)
    }))
    .await;
    let admin = AdminClient::connect(&addr, config(5000)).await.unwrap();
    match admin.describe_cluster().await {
        Err(AdminError::Protocol(m)) => assert!(m.contains("correlation id 101"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn reconnects_once_when_the_connection_breaks() {
    // connection 0 dies on its first Metadata; connection 1 works
    let (addr, seen) = mock(Box::new(|conn, h, body| {
        if conn == 0 && h.request_api_key == ApiKey::Metadata as i16 {
            return Reply::Close;
        }
        answer_basic(h, body)
    }))
    .await;
    let admin = AdminClient::connect(&addr, config(5000)).await.unwrap();
    let c = admin.describe_cluster().await.unwrap();
    assert_eq!(c.cluster_id.as_deref(), Some("mock-cluster"));
    let keys: Vec<(usize, i16)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| (s.conn, s.api_key))
        .collect();
    assert_eq!(keys, vec![(0, 18), (0, 3), (1, 18), (1, 3)]);
}

#[tokio::test]
async fn reconnects_only_once() {
    // every connection dies on Metadata: one retry, then the I/O error
    let (addr, seen) = mock(Box::new(|_, h, body| {
        if h.request_api_key == ApiKey::Metadata as i16 {
            return Reply::Close;
        }
        answer_basic(h, body)
    }))
    .await;
    let admin = AdminClient::connect(&addr, config(5000)).await.unwrap();
    match admin.describe_cluster().await {
        Err(AdminError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof),
        other => panic!("{other:?}"),
    }
    let metadata_attempts = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.api_key == ApiKey::Metadata as i16)
        .count();
    assert_eq!(metadata_attempts, 2);
}

#[tokio::test]
async fn unanswered_request_times_out_and_next_call_reconnects() {
    let (addr, seen) = mock(Box::new(|conn, h, body| {
        if conn == 0 && h.request_api_key == ApiKey::Metadata as i16 {
            return Reply::Hang;
        }
        answer_basic(h, body)
    }))
    .await;
    let admin = AdminClient::connect(&addr, config(300)).await.unwrap();
    let started = Instant::now();
    match admin.describe_cluster().await {
        Err(AdminError::Timeout) => {}
        other => panic!("{other:?}"),
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // not retried: the broker may still execute it
    assert_eq!(seen.lock().unwrap().len(), 2);
    // the timed-out connection is discarded; the next call uses a new one
    assert_eq!(
        admin
            .describe_cluster()
            .await
            .unwrap()
            .cluster_id
            .as_deref(),
        Some("mock-cluster")
    );
    assert_eq!(seen.lock().unwrap().last().unwrap().conn, 1);
}

#[tokio::test]
async fn malformed_responses_are_protocol_errors() {
    // conn 0: negative frame size; conn 1: undecodable body; conn 2: too short a header
    let (addr, _) = mock(Box::new(|conn, h, body| {
        if h.request_api_key != ApiKey::Metadata as i16 {
            return answer_basic(h, body);
        }
        match conn {
            0 => Reply::Raw(Bytes::from_static(&[0xff, 0xff, 0xff, 0xfb])),
            1 => {
                let mut buf = BytesMut::new();
                buf.put_i32(h.correlation_id);
                buf.put_u8(0); // header tagged fields
                buf.put_slice(&[0, 0, 0]); // truncated body
                Reply::Frame(buf.freeze())
            }
            _ => Reply::Frame(Bytes::from_static(&[0, 0])),
        }
    }))
    .await;
    let admin = AdminClient::connect(&addr, config(5000)).await.unwrap();
    for expected in [
        "invalid response frame size -5",
        "decoding Metadata v12 response",
        "response header",
    ] {
        match admin.describe_cluster().await {
            Err(AdminError::Protocol(m)) => assert!(m.contains(expected), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn kafka_error_in_api_versions_moves_on_to_the_next_server() {
    let (bad, _) = mock(Box::new(|_, h, _| {
        respond(h, &ApiVersionsResponse::default().with_error_code(-1))
    }))
    .await;
    let (good, _) = mock(Box::new(|_, h, body| answer_basic(h, body))).await;
    match AdminClient::connect(&bad, config(5000)).await {
        Err(e) => assert_eq!(e.kafka_code(), Some(-1), "{e}"),
        Ok(_) => panic!("connected to a broker that failed ApiVersions"),
    }
    let admin = AdminClient::connect(&format!("{bad},{good}"), config(5000))
        .await
        .unwrap();
    assert_eq!(
        admin
            .describe_cluster()
            .await
            .unwrap()
            .cluster_id
            .as_deref(),
        Some("mock-cluster")
    );
}
