//! A classic group's state as data: snapshots to roll back to when a
//! change cannot be stored, and the `GroupMetadataValue` record form.

use std::collections::HashSet;
use std::time::Instant;

use super::{ClassicGroup, GroupState, Member};
use crate::group::records::{GroupMetadataValue, MemberMetadata};

impl Member {
    /// A copy of the member's state, without its parked requests.
    fn clone_state(&self) -> Member {
        Member {
            member_id: self.member_id.clone(),
            instance_id: self.instance_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            session_timeout_ms: self.session_timeout_ms,
            protocols: self.protocols.clone(),
            assignment: self.assignment.clone(),
            join_waiter: None,
            sync_waiter: None,
            expires_at: self.expires_at,
        }
    }
}

impl ClassicGroup {
    /// Restarts the session of the static member with `instance` id.
    pub fn touch_static(&mut self, instance: &str, now: Instant) {
        let Some(id) = self.statics.get(instance) else {
            return;
        };
        if let Some(m) = self.members.get_mut(id) {
            m.touch(now);
        }
    }

    /// A copy of the group's state (parked requests stay with `self`), to
    /// [`rollback`](Self::rollback) to when a change cannot be stored.
    pub fn snapshot(&self) -> ClassicGroup {
        ClassicGroup {
            id: self.id.clone(),
            state: self.state,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            members: self
                .members
                .iter()
                .map(|(id, m)| (id.clone(), m.clone_state()))
                .collect(),
            pending: self.pending.clone(),
            statics: self.statics.clone(),
            deadline: self.deadline,
            initial: self.initial,
            state_timestamp_ms: self.state_timestamp_ms,
        }
    }

    /// Returns to `snapshot`: the change since then was not stored, so the
    /// group must stay what `__consumer_offsets` holds. Parked requests of
    /// members the snapshot has stay parked; those of members it lacks are
    /// answered UNKNOWN_MEMBER_ID.
    pub fn rollback(&mut self, mut snapshot: ClassicGroup) {
        for (id, m) in self.members.iter_mut() {
            if let Some(s) = snapshot.members.get_mut(id) {
                s.join_waiter = m.join_waiter.take();
                s.sync_waiter = m.sync_waiter.take();
            }
        }
        for m in self.members.values_mut() {
            m.fail_waiters();
        }
        *self = snapshot;
    }

    /// The persisted form of the group.
    pub fn to_record(&self) -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(self.protocol.as_deref().unwrap_or_default()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Restores a group from its persisted form (members get a fresh session).
    pub fn restore(&mut self, v: GroupMetadataValue, now: Instant) {
        self.generation = v.generation;
        self.protocol_type = (!v.protocol_type.is_empty()).then_some(v.protocol_type);
        self.protocol = v.protocol;
        self.leader = v.leader;
        self.state_timestamp_ms = v.current_state_timestamp;
        self.members.clear();
        self.statics.clear();
        let protocol = self.protocol.clone().unwrap_or_default();
        for m in v.members {
            if let Some(inst) = &m.group_instance_id {
                self.statics.insert(inst.clone(), m.member_id.clone());
            }
            let mut member = Member {
                member_id: m.member_id.clone(),
                instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                protocols: vec![(protocol.clone(), m.subscription)],
                assignment: m.assignment,
                join_waiter: None,
                sync_waiter: None,
                expires_at: now,
            };
            member.touch(now);
            self.members.insert(m.member_id, member);
        }
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
    }

    /// Topics the group's members subscribe to, when known (consumer protocol).
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") || self.members.is_empty() {
            return None;
        }
        let protocol = self.protocol.clone()?;
        let mut out = HashSet::new();
        for m in self.members.values() {
            out.extend(crate::group::subscription::topics(
                &m.metadata_for(&protocol),
            )?);
        }
        Some(out)
    }
}
