//! The active controller's side of AddRaftVoter and RemoveRaftVoter: the
//! quorum leader changes its voter set; the refusals become Kafka's error
//! codes. The controller lock is not held: openraft serializes membership
//! changes itself (a second one in progress is REQUEST_TIMED_OUT), and the
//! catch-up wait must not stall heartbeats.

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::Controller;
use crate::error::ApiError;
use crate::metadata::VoterChangeError;

fn api_error(e: VoterChangeError) -> ApiError {
    let code = match &e {
        // The channel finds the new leader and retries.
        VoterChangeError::NotLeader => ResponseError::NotController,
        VoterChangeError::Unsupported(_) => ResponseError::UnsupportedVersion,
        VoterChangeError::TimedOut(_) => ResponseError::RequestTimedOut,
        VoterChangeError::Duplicate(_) => ResponseError::DuplicateVoter,
        VoterChangeError::NotFound(_) => ResponseError::VoterNotFound,
        VoterChangeError::Invalid(_) => ResponseError::InvalidRequest,
        VoterChangeError::Failed(_) => ResponseError::UnknownServerError,
    };
    ApiError::new(code, e.to_string())
}

impl Controller {
    /// The listener a voter is reached on: the first of
    /// `controller.listener.names` (Kafka's default controller listener).
    fn default_controller_listener(&self) -> String {
        self.config
            .controller_listener_names
            .first()
            .cloned()
            .unwrap_or_else(|| "CONTROLLER".into())
    }

    /// AddRaftVoter: promotes the observing controller `voter_id`.
    pub async fn add_raft_voter(
        &self,
        voter_id: i32,
        directory_id: Uuid,
        endpoints: Vec<(String, String, u16)>,
    ) -> Result<(), ApiError> {
        let listener = self.default_controller_listener();
        self.quorum
            .add_voter(voter_id, directory_id, endpoints, &listener)
            .await
            .map_err(api_error)
    }

    /// RemoveRaftVoter: removes voter `voter_id` of directory `directory_id`.
    pub async fn remove_raft_voter(
        &self,
        voter_id: i32,
        directory_id: Uuid,
    ) -> Result<(), ApiError> {
        self.quorum
            .remove_voter(voter_id, directory_id)
            .await
            .map_err(api_error)
    }
}
