//! KIP-853 voter changes of the KRaft metadata quorum: AddRaftVoter and
//! RemoveRaftVoter (what `kafka-metadata-quorum add-controller` and
//! `remove-controller` send; a broker forwards them to the active controller).

use kafka_protocol::messages::add_raft_voter_request::Listener;
use kafka_protocol::messages::{AddRaftVoterRequest, RemoveRaftVoterRequest};
use kafka_protocol::protocol::StrBytes;

use crate::client::message;
use crate::error::AdminError;
use crate::AdminClient;

/// The metadata topic's cluster-wide request timeout Kafka's tool uses.
const TIMEOUT_MS: i32 = 30_000;

impl AdminClient {
    /// AddRaftVoter: makes the controller `id`, whose metadata directory is `directory`
    /// and which follows the metadata log as an observer, a voter reachable at
    /// `endpoints` (`(listener name, host, port)`). Kafka answers REQUEST_TIMED_OUT
    /// while the observer has not caught up, DUPLICATE_VOTER when it already votes.
    pub async fn add_raft_voter(
        &self,
        id: i32,
        directory: uuid::Uuid,
        endpoints: &[(String, String, u16)],
    ) -> Result<(), AdminError> {
        let listeners: Vec<Listener> = endpoints
            .iter()
            .map(|(name, host, port)| {
                Listener::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_host(StrBytes::from_string(host.clone()))
                    .with_port(*port)
            })
            .collect();
        let (_, r) = self
            .call(0, |_| {
                // No cluster id: the controller then does not check it (an empty one
                // would not match).
                Ok(AddRaftVoterRequest::default()
                    .with_cluster_id(None)
                    .with_timeout_ms(TIMEOUT_MS)
                    .with_voter_id(id)
                    .with_voter_directory_id(directory)
                    .with_listeners(listeners.clone()))
            })
            .await?;
        if r.error_code != 0 {
            return Err(AdminError::kafka(
                "AddRaftVoter",
                r.error_code,
                message(r.error_message),
            ));
        }
        Ok(())
    }

    /// RemoveRaftVoter: takes the voter `id` with metadata directory `directory` out of
    /// the quorum (VOTER_NOT_FOUND when no such voter).
    pub async fn remove_raft_voter(
        &self,
        id: i32,
        directory: uuid::Uuid,
    ) -> Result<(), AdminError> {
        let (_, r) = self
            .call(0, |_| {
                Ok(RemoveRaftVoterRequest::default()
                    .with_cluster_id(None)
                    .with_voter_id(id)
                    .with_voter_directory_id(directory))
            })
            .await?;
        if r.error_code != 0 {
            return Err(AdminError::kafka(
                "RemoveRaftVoter",
                r.error_code,
                message(r.error_message),
            ));
        }
        Ok(())
    }
}
