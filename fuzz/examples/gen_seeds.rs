//! Writes the seed inputs of both fuzz targets into `seeds/` (tracked; the
//! replay test and tests/compat/test_fuzz_frames.py read them): one
//! well-formed request frame for every API and version the broker decodes
//! (defaults plus a few populated bodies), and real RecordBatch v2 payloads in
//! every codec. Rerun it when the API table changes:
//!
//! ```text
//! cargo run -p runnel-fuzz --example gen_seeds
//! ```

use std::fs;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use runnel_broker::server::api_table;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}

fn batch(n: i32, compression: Compression, base_sequence: i32) -> Vec<u8> {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: if base_sequence >= 0 { 1000 } else { -1 },
            producer_epoch: if base_sequence >= 0 { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: if base_sequence >= 0 {
                base_sequence + i
            } else {
                -1
            },
            timestamp: 1_700_000_000_000 + i64::from(i),
            key: if i % 3 == 2 {
                None
            } else {
                Some(Bytes::from(format!("key-{i}")))
            },
            value: Some(Bytes::from(vec![b'a' + (i % 26) as u8; 10 + i as usize])),
            headers: if i % 2 == 0 {
                [(s("h"), Some(Bytes::from_static(b"x"))), (s("n"), None)]
                    .into_iter()
                    .collect()
            } else {
                Default::default()
            },
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    buf.to_vec()
}

fn frame(api: ApiKey, version: i16, body: &RequestKind) -> Option<Vec<u8>> {
    let mut b = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(s("fuzz-seed")))
        .encode(&mut b, api.request_header_version(version))
        .ok()?;
    body.encode(&mut b, version).ok()?;
    Some(b.to_vec())
}

fn populated(api: ApiKey, records: &Bytes) -> Vec<RequestKind> {
    let topic = || TopicName(s("orders"));
    let uuid = uuid_like();
    match api {
        ApiKey::Produce => {
            let mut out = Vec::new();
            for by_id in [false, true] {
                let mut p = PartitionProduceData::default();
                p.index = 0;
                p.records = Some(records.clone());
                let mut t = TopicProduceData::default();
                if by_id {
                    t.topic_id = uuid;
                } else {
                    t.name = topic();
                }
                t.partition_data = vec![p];
                let mut r = ProduceRequest::default();
                r.acks = -1;
                r.timeout_ms = 30_000;
                r.topic_data = vec![t];
                out.push(RequestKind::Produce(r));
            }
            out
        }
        ApiKey::Fetch => {
            let mut out = Vec::new();
            for by_id in [false, true] {
                let mut p = FetchPartition::default();
                p.partition = 0;
                p.fetch_offset = 5;
                p.partition_max_bytes = 1 << 20;
                let mut t = FetchTopic::default();
                if by_id {
                    t.topic_id = uuid;
                } else {
                    t.topic = topic();
                }
                t.partitions = vec![p];
                let mut r = FetchRequest::default();
                r.max_wait_ms = 500;
                r.min_bytes = 1;
                r.max_bytes = 50 << 20;
                r.topics = vec![t];
                out.push(RequestKind::Fetch(r));
            }
            out
        }
        ApiKey::Metadata => {
            let mut t = MetadataRequestTopic::default();
            t.name = Some(topic());
            let mut r = MetadataRequest::default();
            r.topics = Some(vec![t]);
            r.allow_auto_topic_creation = true;
            vec![RequestKind::Metadata(r)]
        }
        ApiKey::CreateTopics => {
            let mut c = CreatableTopicConfig::default();
            c.name = s("cleanup.policy");
            c.value = Some(s("compact"));
            let mut t = CreatableTopic::default();
            t.name = topic();
            t.num_partitions = 3;
            t.replication_factor = 1;
            t.configs = vec![c];
            let mut r = CreateTopicsRequest::default();
            r.topics = vec![t];
            r.timeout_ms = 1000;
            vec![RequestKind::CreateTopics(r)]
        }
        ApiKey::JoinGroup => {
            let mut p = JoinGroupRequestProtocol::default();
            p.name = s("range");
            p.metadata =
                Bytes::from_static(b"\x00\x01\x00\x00\x00\x01\x00\x06orders\xff\xff\xff\xff");
            let mut r = JoinGroupRequest::default();
            r.group_id = GroupId(s("g1"));
            r.session_timeout_ms = 45_000;
            r.rebalance_timeout_ms = 300_000;
            r.protocol_type = s("consumer");
            r.protocols = vec![p];
            vec![RequestKind::JoinGroup(r)]
        }
        ApiKey::OffsetCommit => {
            let mut p = OffsetCommitRequestPartition::default();
            p.partition_index = 0;
            p.committed_offset = 42;
            p.committed_metadata = Some(s(""));
            let mut t = OffsetCommitRequestTopic::default();
            t.name = topic();
            t.partitions = vec![p];
            let mut r = OffsetCommitRequest::default();
            r.group_id = GroupId(s("g1"));
            r.generation_id_or_member_epoch = 1;
            r.member_id = s("m-1");
            r.topics = vec![t];
            vec![RequestKind::OffsetCommit(r)]
        }
        _ => Vec::new(),
    }
}

fn uuid_like() -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
}

fn default_body(api: ApiKey) -> RequestKind {
    macro_rules! d {
        ($($k:ident => $t:ident),* $(,)?) => {
            match api {
                $(ApiKey::$k => RequestKind::$k($t::default()),)*
                other => panic!("no default body for {other:?}"),
            }
        };
    }
    d!(
        Produce => ProduceRequest,
        Fetch => FetchRequest,
        ListOffsets => ListOffsetsRequest,
        Metadata => MetadataRequest,
        OffsetCommit => OffsetCommitRequest,
        OffsetFetch => OffsetFetchRequest,
        FindCoordinator => FindCoordinatorRequest,
        JoinGroup => JoinGroupRequest,
        Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest,
        SyncGroup => SyncGroupRequest,
        DescribeGroups => DescribeGroupsRequest,
        ListGroups => ListGroupsRequest,
        ApiVersions => ApiVersionsRequest,
        CreateTopics => CreateTopicsRequest,
        DeleteTopics => DeleteTopicsRequest,
        DeleteRecords => DeleteRecordsRequest,
        DeleteGroups => DeleteGroupsRequest,
        OffsetDelete => OffsetDeleteRequest,
        ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest,
        ConsumerGroupDescribe => ConsumerGroupDescribeRequest,
        InitProducerId => InitProducerIdRequest,
        DescribeConfigs => DescribeConfigsRequest,
        AlterConfigs => AlterConfigsRequest,
        DescribeLogDirs => DescribeLogDirsRequest,
        CreatePartitions => CreatePartitionsRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        DescribeCluster => DescribeClusterRequest,
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let req_dir = root.join("decode_request");
    let batch_dir = root.join("validate_batch");
    // Start afresh, so seeds of versions no longer served do not linger.
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&req_dir).expect("mkdir");
    fs::create_dir_all(&batch_dir).expect("mkdir");

    let codecs = [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ];
    let mut nb = 0;
    for (name, c) in codecs {
        for (n, seq) in [(1, -1), (3, 0)] {
            write(&batch_dir, &format!("{name}-{n}"), &batch(n, c, seq));
            nb += 1;
        }
    }
    let mut two = batch(2, Compression::None, -1);
    two.extend(batch(1, Compression::Gzip, -1));
    write(&batch_dir, "two-batches", &two);
    nb += 1;

    let records = Bytes::from(batch(2, Compression::None, 0));
    let mut nr = 0;
    for spec in api_table() {
        for v in spec.decode_min..=spec.max {
            let mut bodies = vec![default_body(spec.key)];
            bodies.extend(populated(spec.key, &records));
            for (i, body) in bodies.iter().enumerate() {
                if let Some(f) = frame(spec.key, v, body) {
                    // Each seed must decode, or it teaches the fuzzer nothing.
                    if runnel_broker::protocol::request::decode(spec.key, v, Bytes::from(f.clone()))
                        .is_ok()
                    {
                        write(&req_dir, &format!("{:?}-v{v}-{i}", spec.key), &f);
                        nr += 1;
                    }
                }
            }
        }
    }
    println!(
        "wrote {nr} request seeds and {nb} batch seeds under {}",
        root.display()
    );
}
