//! The coordinator's JoinGroup and LeaveGroup for classic groups: the state
//! machine step, then the group's record when the step must be stored.
//!
//! As in Kafka, a change that must be written to `__consumer_offsets`
//! (a group that became Empty, a static member replaced in a Stable group)
//! is answered only after the write succeeded. When it fails, the group
//! returns to its state before the change, so what is in memory is what a
//! restart reloads, and the request gets the code Kafka maps the append
//! error to (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, ...).

use std::time::Instant;

use kafka_protocol::error::ResponseError;
use tracing::warn;

use super::classic::{ClassicGroup, GroupState, JoinOutcome, JoinRequest, JoinResult};
use super::coordinator::{GroupCoordinator, GroupStore};
use crate::clock::now_ms;

fn join_error(code: i16, member_id: &str) -> JoinOutcome {
    JoinOutcome::Now(JoinResult {
        error: code,
        generation: -1,
        member_id: member_id.to_string(),
        ..Default::default()
    })
}

impl GroupCoordinator {
    /// JoinGroup for a classic group (the coordinator and session-timeout
    /// checks are the caller's). `new_member_id` makes a member id from a
    /// prefix (client id or instance id).
    pub async fn join_classic(
        &self,
        store: &dyn GroupStore,
        group_id: &str,
        join: JoinRequest,
        new_member_id: impl FnOnce(&str) -> String,
    ) -> JoinOutcome {
        let cfg = &self.config;
        let member_id = join.member_id.clone();
        let instance_id = join.instance_id.clone();
        let is_static = instance_id.is_some();
        let mut groups = self.lock().await;
        let now = Instant::now();
        let ms = now_ms();
        if let Some(cg) = groups.consumer.get(group_id) {
            if !cg.is_empty() {
                // A classic member cannot join a group run by the consumer protocol.
                return join_error(ResponseError::InconsistentGroupProtocol.code(), &member_id);
            }
            groups.consumer.remove(group_id);
        }
        if !groups.classic.contains_key(group_id) {
            if !member_id.is_empty() {
                return join_error(ResponseError::UnknownMemberId.code(), &member_id);
            }
            groups
                .classic
                .insert(group_id.to_string(), ClassicGroup::new(group_id, ms));
        }
        let Some(g) = groups.classic.get_mut(group_id) else {
            return join_error(ResponseError::CoordinatorNotAvailable.code(), &member_id);
        };
        if member_id.is_empty() && !is_static && g.members.len() >= cfg.max_size {
            return join_error(ResponseError::GroupMaxSizeReached.code(), &member_id);
        }
        let before = g.snapshot();
        let mut out = g.join(join, now, ms, cfg.initial_delay, new_member_id);
        if let JoinOutcome::AfterStore(result) = out {
            // KIP-345: a static member replaced without a rebalance; its new
            // member id counts only once the group's record holds it.
            out = match self.persist_group(store, g) {
                Ok(()) => JoinOutcome::Now(result),
                Err(code) => {
                    warn!(group = %group_id, code, "cannot store the new member id of a static member; reverting to the old one");
                    g.rollback(before);
                    if let Some(instance) = &instance_id {
                        // As Kafka does, the old member gets a fresh session.
                        g.touch_static(instance, now);
                    }
                    JoinOutcome::Now(JoinResult {
                        error: code,
                        generation: g.generation,
                        protocol_type: g.protocol_type.clone(),
                        protocol_name: g.protocol.clone(),
                        leader: g.leader.clone().unwrap_or_default(),
                        member_id: String::new(),
                        members: vec![],
                    })
                }
            };
        }
        let after = g.snapshot();
        if g.ready_to_complete_join(now) && g.complete_join(now, ms) {
            // The join phase ended with nobody in it: the group is Empty.
            if let Err(code) = self.persist_group(store, g) {
                warn!(group = %group_id, code, "cannot store that the group became Empty; keeping its stored state, will retry");
                g.rollback(after);
            }
        }
        out
    }

    /// LeaveGroup for a classic group: one error code per leaving member, or
    /// the error of the whole request (the group record could not be stored;
    /// nobody left).
    pub async fn leave_classic(
        &self,
        store: &dyn GroupStore,
        group_id: &str,
        leaving: &[(String, Option<String>)],
    ) -> Result<Vec<i16>, i16> {
        let mut groups = self.lock().await;
        let Some(g) = groups.classic.get_mut(group_id) else {
            return Err(ResponseError::UnknownMemberId.code());
        };
        let now = Instant::now();
        let ms = now_ms();
        let before = g.snapshot();
        let codes: Vec<i16> = leaving
            .iter()
            .map(|(id, inst)| g.leave(id, inst.as_deref(), now, ms))
            .collect();
        if before.state != GroupState::Empty && g.state == GroupState::Empty {
            if let Err(code) = self.persist_group(store, g) {
                warn!(group = %group_id, code, "cannot store that the group became Empty; the members stay");
                g.rollback(before);
                return Err(code);
            }
        }
        Ok(codes)
    }
}

#[cfg(test)]
#[path = "write_failure_tests.rs"]
mod write_failure_tests;
