//! ListConfigResources (KIP-1142, Kafka 4.1; v0 was ListClientMetricsResources):
//! the config resources of the requested types. `kafka-configs --describe
//! --entity-type groups` uses it to tell a group with configs from none.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesResponse, ResponseKind};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

/// Handles ListConfigResources.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, ListConfigResources);
    // Kafka's ListConfigResourcesRequest.supportedResourceTypes.
    let supported: &[i8] = if version == 0 {
        &[CLIENT_METRICS]
    } else {
        &[TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP]
    };
    let wanted: Vec<i8> = if body.resource_types.is_empty() {
        supported.to_vec()
    } else {
        body.resource_types.clone()
    };
    if wanted.iter().any(|t| !supported.contains(t)) {
        return Ok(Some(ResponseKind::ListConfigResources(
            ListConfigResourcesResponse::default()
                .with_error_code(ResponseError::UnsupportedVersion.code()),
        )));
    }
    let image = state.image();
    let mut out = Vec::new();
    let mut push = |name: &str, ty: i8| {
        out.push(
            ConfigResource::default()
                .with_resource_name(sb(name))
                .with_resource_type(ty),
        )
    };
    // Kafka's order: groups with configs, client metrics subscriptions (none
    // here), brokers as loggers, brokers, topics.
    if wanted.contains(&GROUP) {
        for g in image.group_configs.keys() {
            push(g, GROUP);
        }
    }
    for ty in [BROKER_LOGGER, BROKER] {
        if wanted.contains(&ty) {
            for b in image.advertised_brokers() {
                push(&b.node_id.to_string(), ty);
            }
        }
    }
    if wanted.contains(&TOPIC) {
        for t in image.topics.keys() {
            push(t, TOPIC);
        }
    }
    Ok(Some(ResponseKind::ListConfigResources(
        ListConfigResourcesResponse::default().with_config_resources(out),
    )))
}
