//! The API table: every Kafka API this broker serves, its advertised
//! version range and its handler. ApiVersions answers from this list, so
//! the advertised surface is exactly what is implemented.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseKind,
};

use super::handlers;
use crate::broker::BrokerState;

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    /// The API.
    pub api_key: ApiKey,
    /// The request version.
    pub version: i16,
    /// The request header.
    pub header: RequestHeader,
    /// The decoded body.
    pub body: RequestKind,
    /// The client's address.
    pub peer: std::net::SocketAddr,
    /// File regions the response's record placeholders stand for (Fetch:
    /// records sent from segment files, `server/file_region.rs`).
    pub regions: super::file_region::FileRegions,
}

/// A handler failure that is not a Kafka error code: the connection closes.
pub type HandlerError = String;
/// What a handler returns: a response, or none (acks=0 produce).
pub type HandlerFuture =
    Pin<Box<dyn Future<Output = Result<Option<ResponseKind>, HandlerError>> + Send>>;
/// A request handler.
pub type Handler = fn(Arc<BrokerState>, Request) -> HandlerFuture;

/// One served API.
pub struct ApiSpec {
    /// The API key.
    pub key: ApiKey,
    /// Lowest advertised version.
    pub min: i16,
    /// Highest advertised version.
    pub max: i16,
    /// Lowest version actually accepted (Kafka 4 advertises Produce from v0
    /// but rejects v0-2, KAFKA-18659).
    pub decode_min: i16,
    /// The handler.
    pub handler: Handler,
}

const fn api(key: ApiKey, min: i16, max: i16, handler: Handler) -> ApiSpec {
    ApiSpec {
        key,
        min,
        max,
        decode_min: min,
        handler,
    }
}

/// The API surface, with Kafka 4.1's version ranges.
static APIS: &[ApiSpec] = &[
    ApiSpec {
        key: ApiKey::Produce,
        min: 0,
        max: 13,
        decode_min: 3,
        handler: handlers::produce::handle,
    },
    api(ApiKey::Fetch, 4, 17, handlers::fetch::handle),
    api(ApiKey::ListOffsets, 1, 10, handlers::list_offsets::handle),
    api(
        ApiKey::DescribeQuorum,
        0,
        2,
        handlers::describe_quorum::handle,
    ),
    api(ApiKey::ElectLeaders, 0, 2, handlers::elect_leaders::handle),
    api(
        ApiKey::AddRaftVoter,
        0,
        0,
        handlers::raft_voters::handle_add,
    ),
    api(
        ApiKey::RemoveRaftVoter,
        0,
        0,
        handlers::raft_voters::handle_remove,
    ),
    api(
        ApiKey::AlterPartitionReassignments,
        0,
        1,
        handlers::alter_partition_reassignments::handle,
    ),
    api(
        ApiKey::ListPartitionReassignments,
        0,
        0,
        handlers::list_partition_reassignments::handle,
    ),
    api(
        ApiKey::OffsetForLeaderEpoch,
        2,
        4,
        handlers::offset_for_leader_epoch::handle,
    ),
    api(ApiKey::Metadata, 0, 13, handlers::metadata::handle),
    api(ApiKey::OffsetCommit, 2, 9, handlers::offset_commit::handle),
    api(ApiKey::OffsetFetch, 1, 9, handlers::offset_fetch::handle),
    api(
        ApiKey::FindCoordinator,
        0,
        6,
        handlers::find_coordinator::handle,
    ),
    api(ApiKey::JoinGroup, 2, 9, handlers::join_group::handle),
    api(ApiKey::Heartbeat, 0, 4, handlers::heartbeat::handle),
    api(ApiKey::LeaveGroup, 0, 5, handlers::leave_group::handle),
    api(ApiKey::SyncGroup, 0, 5, handlers::sync_group::handle),
    api(
        ApiKey::DescribeGroups,
        0,
        6,
        handlers::describe_groups::handle,
    ),
    api(ApiKey::ListGroups, 0, 5, handlers::list_groups::handle),
    api(ApiKey::ApiVersions, 0, 4, handlers::api_versions::handle),
    api(ApiKey::CreateTopics, 2, 7, handlers::create_topics::handle),
    api(ApiKey::DeleteTopics, 1, 6, handlers::delete_topics::handle),
    api(
        ApiKey::DeleteRecords,
        0,
        2,
        handlers::delete_records::handle,
    ),
    api(ApiKey::DeleteGroups, 0, 2, handlers::delete_groups::handle),
    api(ApiKey::OffsetDelete, 0, 0, handlers::offset_delete::handle),
    api(
        ApiKey::ConsumerGroupHeartbeat,
        0,
        1,
        handlers::consumer_group_heartbeat::handle,
    ),
    api(
        ApiKey::ConsumerGroupDescribe,
        0,
        1,
        handlers::consumer_group_describe::handle,
    ),
    api(
        ApiKey::InitProducerId,
        0,
        5,
        handlers::init_producer_id::handle,
    ),
    api(
        ApiKey::DescribeConfigs,
        1,
        4,
        handlers::describe_configs::handle,
    ),
    api(ApiKey::AlterConfigs, 0, 2, handlers::alter_configs::handle),
    api(
        ApiKey::DescribeLogDirs,
        1,
        4,
        handlers::describe_log_dirs::handle,
    ),
    api(
        ApiKey::CreatePartitions,
        0,
        3,
        handlers::create_partitions::handle,
    ),
    api(
        ApiKey::IncrementalAlterConfigs,
        0,
        1,
        handlers::incremental_alter_configs::handle,
    ),
    api(
        ApiKey::DescribeCluster,
        0,
        2,
        handlers::describe_cluster::handle,
    ),
    api(
        ApiKey::ListConfigResources,
        0,
        1,
        handlers::list_config_resources::handle,
    ),
    api(
        ApiKey::UpdateFeatures,
        0,
        2,
        handlers::update_features::handle,
    ),
    api(
        ApiKey::UnregisterBroker,
        0,
        0,
        handlers::unregister_broker::handle,
    ),
];

/// The transaction APIs, served and advertised on the broker surface only
/// once `txn::TRANSACTIONS_ENABLED` (until then they are unknown, as
/// before the coordinator existed).
static TXN_APIS: &[ApiSpec] = &[
    api(
        ApiKey::AddPartitionsToTxn,
        0,
        5,
        handlers::add_partitions_to_txn::handle,
    ),
    api(
        ApiKey::AddOffsetsToTxn,
        0,
        4,
        handlers::add_offsets_to_txn::handle,
    ),
    api(ApiKey::EndTxn, 0, 5, handlers::end_txn::handle),
    api(
        ApiKey::TxnOffsetCommit,
        0,
        5,
        handlers::txn_offset_commit::handle,
    ),
    api(
        ApiKey::DescribeTransactions,
        0,
        0,
        handlers::describe_transactions::handle,
    ),
    api(
        ApiKey::DescribeProducers,
        0,
        0,
        handlers::describe_producers::handle,
    ),
    api(
        ApiKey::ListTransactions,
        0,
        1,
        handlers::list_transactions::handle,
    ),
    api(
        ApiKey::WriteTxnMarkers,
        1,
        1,
        handlers::write_txn_markers::handle,
    ),
];

/// The APIs a controller listener answers (KIP-919 direct-to-controller
/// admin, `kafka-metadata-quorum --bootstrap-controller`): a subset of
/// Kafka's controller APIs, and nothing a broker serves.
static CONTROLLER_APIS: &[ApiSpec] = &[
    api(
        ApiKey::ApiVersions,
        0,
        4,
        handlers::api_versions::handle_controller,
    ),
    api(
        ApiKey::DescribeCluster,
        0,
        2,
        handlers::describe_cluster::handle_controller,
    ),
    api(
        ApiKey::DescribeQuorum,
        0,
        2,
        handlers::describe_quorum::handle,
    ),
    api(
        ApiKey::AddRaftVoter,
        0,
        0,
        handlers::raft_voters::handle_add,
    ),
    api(
        ApiKey::RemoveRaftVoter,
        0,
        0,
        handlers::raft_voters::handle_remove,
    ),
    api(
        ApiKey::UpdateFeatures,
        0,
        2,
        handlers::update_features::handle,
    ),
    api(
        ApiKey::UnregisterBroker,
        0,
        0,
        handlers::unregister_broker::handle,
    ),
];

/// Which listener a connection came in on, and so which API table serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// A client (broker) listener: `APIS`.
    Broker,
    /// The controller listener: `CONTROLLER_APIS`.
    Controller,
}

/// Every served API.
pub fn api_table() -> &'static [ApiSpec] {
    APIS
}

fn table(s: Surface) -> impl Iterator<Item = &'static ApiSpec> {
    let (main, txn): (&'static [ApiSpec], &'static [ApiSpec]) = match s {
        Surface::Broker if crate::txn::TRANSACTIONS_ENABLED => (APIS, TXN_APIS),
        Surface::Broker => (APIS, &[]),
        Surface::Controller => (CONTROLLER_APIS, &[]),
    };
    main.iter().chain(txn)
}

/// Looks an API up in the table of `surface`.
pub fn find_in(surface: Surface, key: ApiKey) -> Option<&'static ApiSpec> {
    table(surface).find(|a| a.key == key)
}

/// The advertised version ranges.
pub fn advertised() -> Vec<ApiVersion> {
    advertised_in(Surface::Broker)
}

/// The advertised version ranges of `surface`.
pub fn advertised_in(surface: Surface) -> Vec<ApiVersion> {
    table(surface)
        .map(|a| {
            ApiVersion::default()
                .with_api_key(a.key as i16)
                .with_min_version(a.min)
                .with_max_version(a.max)
        })
        .collect()
}

/// The v0 answer to an ApiVersions request at a version we do not support.
pub fn unsupported_api_versions(surface: Surface) -> ResponseKind {
    ResponseKind::ApiVersions(
        ApiVersionsResponse::default()
            .with_error_code(kafka_protocol::error::ResponseError::UnsupportedVersion.code())
            .with_api_keys(advertised_in(surface)),
    )
}

/// The answer to a malformed ApiVersions request.
pub fn invalid_api_versions() -> ResponseKind {
    ResponseKind::ApiVersions(
        ApiVersionsResponse::default()
            .with_error_code(kafka_protocol::error::ResponseError::InvalidRequest.code()),
    )
}

/// Extracts the expected body from a request, or fails the handler.
#[macro_export]
macro_rules! body {
    ($req:expr, $variant:ident) => {
        match $req.body {
            kafka_protocol::messages::RequestKind::$variant(b) => b,
            other => {
                return Err(format!(
                    "expected a {} body, got {:?}",
                    stringify!($variant),
                    std::mem::discriminant(&other)
                ))
            }
        }
    };
}
