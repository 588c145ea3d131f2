//! DescribeCluster: cluster id, controller and brokers.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{DescribeClusterResponse, ResponseKind};

use super::{broker, sb};
use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles DescribeCluster.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

/// Handles DescribeCluster on the controller listener (KIP-919): endpoint
/// type 2 only, listing the quorum's voters at their controller endpoint and
/// the quorum leader as the controller.
pub fn handle_controller(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(async move {
        let body = body!(req, DescribeCluster);
        if body.endpoint_type != 2 {
            return Ok(Some(ResponseKind::DescribeCluster(
                DescribeClusterResponse::default()
                    .with_error_code(ResponseError::UnsupportedEndpointType.code())
                    .with_error_message(Some(sb(
                        "Only controllers can be described through this listener",
                    )))
                    .with_endpoint_type(body.endpoint_type),
            )));
        }
        let listener = state.config.controller_listener_names.first().cloned();
        let status = state.quorum.status();
        let controllers = status
            .voters
            .iter()
            .filter_map(|v| {
                let (host, port) = match v
                    .endpoints
                    .iter()
                    .find(|(n, _, _)| Some(n) == listener.as_ref())
                {
                    Some((_, h, p)) => (h.clone(), i32::from(*p)),
                    None => {
                        let (h, p) = v.addr.rsplit_once(':')?;
                        (h.to_string(), p.parse().ok()?)
                    }
                };
                Some(
                    DescribeClusterBroker::default()
                        .with_broker_id(broker(v.node_id))
                        .with_host(sb(&host))
                        .with_port(port),
                )
            })
            .collect();
        Ok(Some(ResponseKind::DescribeCluster(
            DescribeClusterResponse::default()
                .with_endpoint_type(2)
                .with_cluster_id(sb(&state.cluster_id))
                .with_controller_id(broker(status.leader.unwrap_or(-1)))
                .with_brokers(controllers),
        )))
    })
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, DescribeCluster);
    // Endpoint type 1 is brokers; 2 (controllers) is for KIP-919 clients.
    if body.endpoint_type != 1 {
        return Ok(Some(ResponseKind::DescribeCluster(
            DescribeClusterResponse::default()
                .with_error_code(ResponseError::UnsupportedEndpointType.code())
                .with_error_message(Some(sb(
                    "Only brokers can be described through this listener",
                )))
                .with_endpoint_type(body.endpoint_type),
        )));
    }
    let image = state.image();
    let mut brokers: Vec<DescribeClusterBroker> = image
        .client_brokers(state.stopping_self())
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(broker(b.node_id))
                .with_host(sb(b.host))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.map(sb))
        })
        .collect();
    if body.include_fenced_brokers {
        // v2 (KIP-1073): registered but fenced brokers too, marked.
        for b in image.brokers.values() {
            if brokers.iter().any(|x| x.broker_id.0 == b.node_id) {
                continue;
            }
            let Some(ep) = b.endpoints.first() else {
                continue;
            };
            brokers.push(
                DescribeClusterBroker::default()
                    .with_broker_id(broker(b.node_id))
                    .with_host(sb(&ep.host))
                    .with_port(i32::from(ep.port))
                    .with_rack(b.rack.as_deref().map(sb))
                    .with_is_fenced(b.fenced),
            );
        }
        brokers.sort_by_key(|b| b.broker_id.0);
    }
    let controller = image.client_visible_controller(state.node_id);
    Ok(Some(ResponseKind::DescribeCluster(
        DescribeClusterResponse::default()
            .with_endpoint_type(1)
            .with_cluster_id(sb(&state.cluster_id))
            .with_controller_id(broker(controller))
            .with_brokers(brokers),
    )))
}
