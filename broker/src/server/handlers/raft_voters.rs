//! AddRaftVoter (80) and RemoveRaftVoter (81): KIP-853 changes of the
//! metadata quorum's voter set (`kafka-metadata-quorum add-controller` /
//! `remove-controller`). A broker passes them to the active controller, as
//! Kafka's broker forwards them; the leader checks and commits the change
//! (`metadata::quorum::voters`).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{AddRaftVoterResponse, RemoveRaftVoterResponse, ResponseKind};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::error::ApiError;
use crate::server::dispatch::{HandlerFuture, Request};

/// INCONSISTENT_CLUSTER_ID when the request names another cluster (Kafka's
/// raft client checks it first; null means "don't check").
fn check_cluster(state: &BrokerState, asked: Option<&str>) -> Result<(), ApiError> {
    match asked {
        Some(c) if c != state.cluster_id => Err(ApiError::new(
            ResponseError::InconsistentClusterId,
            format!(
                "The given id \"{c}\" doesn't match the cluster id \"{}\"",
                state.cluster_id
            ),
        )),
        _ => Ok(()),
    }
}

/// Handles AddRaftVoter.
pub fn handle_add(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(async move {
        let body = body!(req, AddRaftVoter);
        let result = match check_cluster(&state, body.cluster_id.as_deref()) {
            Err(e) => Err(e),
            Ok(()) => {
                let endpoints = body
                    .listeners
                    .iter()
                    .map(|l| (l.name.to_string(), l.host.to_string(), l.port))
                    .collect();
                state
                    .controller
                    .add_raft_voter(body.voter_id, body.voter_directory_id, endpoints)
                    .await
            }
        };
        let (code, message) = split(result);
        Ok(Some(ResponseKind::AddRaftVoter(
            AddRaftVoterResponse::default()
                .with_error_code(code)
                .with_error_message(message),
        )))
    })
}

/// Handles RemoveRaftVoter.
pub fn handle_remove(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(async move {
        let body = body!(req, RemoveRaftVoter);
        let result = match check_cluster(&state, body.cluster_id.as_deref()) {
            Err(e) => Err(e),
            Ok(()) => {
                state
                    .controller
                    .remove_raft_voter(body.voter_id, body.voter_directory_id)
                    .await
            }
        };
        let (code, message) = split(result);
        Ok(Some(ResponseKind::RemoveRaftVoter(
            RemoveRaftVoterResponse::default()
                .with_error_code(code)
                .with_error_message(message),
        )))
    })
}

fn split(r: Result<(), ApiError>) -> (i16, Option<kafka_protocol::protocol::StrBytes>) {
    match r {
        Ok(()) => (0, None),
        Err(e) => (e.code, e.message.as_deref().map(sb)),
    }
}
