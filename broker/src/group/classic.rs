//! The classic consumer-group protocol's state machine (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup), as Kafka's `ClassicGroup` runs it.
//!
//! Pure logic: time is passed in, and responses to members parked in a
//! JoinGroup or SyncGroup are delivered through one-shot channels.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

/// The group states, named as Kafka names them in DescribeGroups/ListGroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Members have their assignment.
    Stable,
    /// Removed.
    Dead,
}

impl GroupState {
    /// Kafka's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a parked JoinGroup gets back.
#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    /// Error code.
    pub error: i16,
    /// The generation.
    pub generation: i32,
    /// The protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// Members and their metadata (leader only).
    pub members: Vec<(String, Option<String>, Bytes)>,
}

/// What a parked SyncGroup gets back.
#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    /// Error code.
    pub error: i16,
    /// The protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Bytes,
}

/// A member of a classic group.
#[derive(Debug)]
pub struct Member {
    /// Member id.
    pub member_id: String,
    /// Static membership id (KIP-345).
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Protocols in preference order, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// The current assignment.
    pub assignment: Bytes,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
    /// When the member expires without a heartbeat.
    pub expires_at: Instant,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn touch(&mut self, now: Instant) {
        self.expires_at = now + Duration::from_millis(self.session_timeout_ms.max(0) as u64);
    }

    /// Answers this member's waiting JoinGroup and SyncGroup, if any, with
    /// UNKNOWN_MEMBER_ID (it was removed, or its addition was rolled back).
    pub(super) fn fail_waiters(&mut self) {
        if let Some(w) = self.join_waiter.take() {
            let _ = w.send(JoinResult {
                error: err(ResponseError::UnknownMemberId),
                member_id: self.member_id.clone(),
                generation: -1,
                ..Default::default()
            });
        }
        if let Some(w) = self.sync_waiter.take() {
            let _ = w.send(SyncResult {
                error: err(ResponseError::UnknownMemberId),
                ..Default::default()
            });
        }
    }
}

/// A JoinGroup request, as the state machine needs it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Member id ("" for a new member).
    pub member_id: String,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Protocol type (e.g. "consumer").
    pub protocol_type: String,
    /// Protocols and metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Whether the client does the KIP-394 member id round trip (v4+).
    pub require_known_member_id: bool,
}

/// Outcome of a join: answered now, or parked until the rebalance completes.
#[derive(Debug)]
pub enum JoinOutcome {
    /// Answer now.
    Now(JoinResult),
    /// Answer once the group's metadata record is stored (a static member
    /// replaced in a Stable group, KIP-345); if that fails, the caller
    /// rolls the group back and answers the error, as Kafka does.
    AfterStore(JoinResult),
    /// Wait for the rebalance.
    Wait(oneshot::Receiver<JoinResult>),
}

/// Outcome of a sync.
#[derive(Debug)]
pub enum SyncOutcome {
    /// Answer now.
    Now(SyncResult),
    /// Wait for the leader.
    Wait(oneshot::Receiver<SyncResult>),
}

/// One consumer group: classic membership plus committed offsets.
#[derive(Debug)]
pub struct ClassicGroup {
    /// Group id.
    pub id: String,
    /// State.
    pub state: GroupState,
    /// Generation.
    pub generation: i32,
    /// Protocol type of the members.
    pub protocol_type: Option<String>,
    /// The selected protocol.
    pub protocol: Option<String>,
    /// The leader.
    pub leader: Option<String>,
    /// Members, in join order.
    pub members: IndexMap<String, Member>,
    /// KIP-394: member ids handed out but not yet joined with, and when
    /// each expires (the session timeout of the JoinGroup that got it).
    pending: HashMap<String, Instant>,
    /// Static instance id → member id.
    statics: HashMap<String, String>,
    /// When the current rebalance phase ends regardless.
    pub deadline: Option<Instant>,
    /// The initial rebalance of a group that was Empty: its join phase ends
    /// on this timer alone (`group.initial.rebalance.delay.ms`), not when
    /// every member has joined.
    initial: Option<InitialRebalance>,
    /// Wall-clock time of the last state change (ms).
    pub state_timestamp_ms: i64,
}

#[cfg(test)]
#[path = "classic_tests.rs"]
mod tests;

#[path = "classic_state.rs"]
mod state;

/// The timer of an initial rebalance, as Kafka's
/// `tryCompleteInitialRebalanceElseSchedule` runs it: when it fires and a new
/// member joined meanwhile, it is re-armed for another delay (as long as the
/// rebalance timeout allows); otherwise the join phase completes, whether
/// or not member ids handed out with MEMBER_ID_REQUIRED came back.
#[derive(Debug, Clone, Copy)]
struct InitialRebalance {
    fires_at: Instant,
    delay: Duration,
    remaining: Duration,
    new_member_added: bool,
}

fn err(e: ResponseError) -> i16 {
    e.code()
}

impl ClassicGroup {
    /// A new, empty group.
    pub fn new(id: &str, now_ms: i64) -> Self {
        Self {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: IndexMap::new(),
            pending: HashMap::new(),
            statics: HashMap::new(),
            deadline: None,
            initial: None,
            state_timestamp_ms: now_ms,
        }
    }

    fn set_state(&mut self, s: GroupState, now_ms: i64) {
        self.state = s;
        self.state_timestamp_ms = now_ms;
    }

    /// Whether a member id is known.
    pub fn has_member(&self, id: &str) -> bool {
        self.members.contains_key(id)
    }

    fn supports(&self, req: &JoinRequest) -> bool {
        if self.members.is_empty() {
            return !req.protocol_type.is_empty() && !req.protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(req.protocol_type.as_str())
            && req.protocols.iter().any(|(n, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(x, _)| x == n))
            })
    }

    fn max_rebalance_timeout(&self) -> Duration {
        Duration::from_millis(
            self.members
                .values()
                .map(|m| m.rebalance_timeout_ms.max(0))
                .max()
                .unwrap_or(0) as u64,
        )
    }

    /// Starts (or continues) a rebalance.
    fn prepare_rebalance(&mut self, now: Instant, now_ms: i64, initial_delay: Duration) {
        if self.state == GroupState::CompletingRebalance {
            // Members parked in SyncGroup must rejoin.
            for m in self.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult {
                        error: err(ResponseError::RebalanceInProgress),
                        ..Default::default()
                    });
                }
            }
        }
        let was_empty = self.state == GroupState::Empty;
        if self.state != GroupState::PreparingRebalance {
            let timeout = self.max_rebalance_timeout();
            self.deadline = Some(now + timeout);
            self.initial = was_empty.then(|| InitialRebalance {
                fires_at: now + initial_delay,
                delay: initial_delay,
                remaining: timeout.saturating_sub(initial_delay),
                new_member_added: false,
            });
        }
        self.set_state(GroupState::PreparingRebalance, now_ms);
    }

    /// Handles JoinGroup.
    pub fn join(
        &mut self,
        req: JoinRequest,
        now: Instant,
        now_ms: i64,
        initial_delay: Duration,
        new_member_id: impl FnOnce(&str) -> String,
    ) -> JoinOutcome {
        let fail = |code: ResponseError, member_id: &str| {
            JoinOutcome::Now(JoinResult {
                error: err(code),
                member_id: member_id.to_string(),
                generation: -1,
                ..Default::default()
            })
        };
        if self.state == GroupState::Dead {
            return fail(ResponseError::CoordinatorNotAvailable, &req.member_id);
        }
        if !self.supports(&req) {
            return fail(ResponseError::InconsistentGroupProtocol, &req.member_id);
        }
        let member_id = req.member_id.clone();
        if member_id.is_empty() {
            if let Some(instance) = &req.instance_id {
                // A static member rejoining under a new incarnation; its ids
                // start with the instance id, as Kafka's do.
                let new_id = new_member_id(instance);
                if let Some(old_id) = self.statics.get(instance).cloned() {
                    if let Some(mut old) = self.members.shift_remove(&old_id) {
                        if let Some(w) = old.join_waiter.take() {
                            let _ = w.send(JoinResult {
                                error: err(ResponseError::FencedInstanceId),
                                member_id: old_id.clone(),
                                generation: -1,
                                ..Default::default()
                            });
                        }
                        let was_leader = self.leader.as_deref() == Some(old_id.as_str());
                        old.member_id = new_id.clone();
                        old.protocols = req.protocols.clone();
                        old.session_timeout_ms = req.session_timeout_ms;
                        old.rebalance_timeout_ms = req.rebalance_timeout_ms;
                        old.client_id = req.client_id.clone();
                        old.client_host = req.client_host.clone();
                        old.touch(now);
                        self.members.insert(new_id.clone(), old);
                        self.statics.insert(instance.clone(), new_id.clone());
                        if was_leader {
                            self.leader = Some(new_id.clone());
                        }
                        if self.state == GroupState::Stable
                            && self.select_protocol() == self.protocol
                        {
                            // KIP-345: the selected protocol would not change, so
                            // no rebalance (Kafka compares the protocol, not the
                            // metadata); the member gets the current generation
                            // and then its assignment.
                            return JoinOutcome::AfterStore(self.join_result(&new_id, false));
                        }
                        self.prepare_rebalance(now, now_ms, initial_delay);
                        return self.park_join(&new_id);
                    }
                }
                self.statics.insert(instance.clone(), new_id.clone());
                self.add_member(&new_id, &req, now);
                self.prepare_rebalance(now, now_ms, initial_delay);
                return self.park_join(&new_id);
            }
            let new_id = new_member_id(&req.client_id);
            if req.require_known_member_id {
                // KIP-394: hand out the id; the member joins again with it.
                // It expires after the session timeout unless it comes back.
                let ttl = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
                self.pending.insert(new_id.clone(), now + ttl);
                return fail(ResponseError::MemberIdRequired, &new_id);
            }
            self.add_member(&new_id, &req, now);
            self.prepare_rebalance(now, now_ms, initial_delay);
            return self.park_join(&new_id);
        }
        // A known (or pending) member.
        if let Some(instance) = &req.instance_id {
            if let Some(current) = self.statics.get(instance) {
                if current != &member_id {
                    return fail(ResponseError::FencedInstanceId, &member_id);
                }
            }
        }
        if self.pending.remove(&member_id).is_some() {
            self.add_member(&member_id, &req, now);
            self.prepare_rebalance(now, now_ms, initial_delay);
            return self.park_join(&member_id);
        }
        let Some(m) = self.members.get_mut(&member_id) else {
            return fail(ResponseError::UnknownMemberId, &member_id);
        };
        let changed = m.protocols != req.protocols;
        m.protocols = req.protocols.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.touch(now);
        match self.state {
            GroupState::PreparingRebalance => self.park_join(&member_id),
            GroupState::CompletingRebalance | GroupState::Stable => {
                let is_leader = self.leader.as_deref() == Some(member_id.as_str());
                if self.state == GroupState::CompletingRebalance && !changed {
                    // A retried join: answer with the current generation.
                    return JoinOutcome::Now(self.join_result(&member_id, is_leader));
                }
                if self.state == GroupState::Stable && !changed && !is_leader {
                    return JoinOutcome::Now(self.join_result(&member_id, false));
                }
                self.prepare_rebalance(now, now_ms, initial_delay);
                self.park_join(&member_id)
            }
            GroupState::Empty | GroupState::Dead => {
                fail(ResponseError::UnknownMemberId, &member_id)
            }
        }
    }

    fn add_member(&mut self, id: &str, req: &JoinRequest, now: Instant) {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.state == GroupState::PreparingRebalance {
            if let Some(initial) = &mut self.initial {
                initial.new_member_added = true;
            }
        }
        let mut m = Member {
            member_id: id.to_string(),
            instance_id: req.instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            session_timeout_ms: req.session_timeout_ms,
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            join_waiter: None,
            sync_waiter: None,
            expires_at: now,
        };
        m.touch(now);
        self.members.insert(id.to_string(), m);
        if self.leader.is_none() {
            self.leader = Some(id.to_string());
        }
    }

    fn park_join(&mut self, id: &str) -> JoinOutcome {
        let (tx, rx) = oneshot::channel();
        if let Some(m) = self.members.get_mut(id) {
            if let Some(old) = m.join_waiter.replace(tx) {
                let _ = old.send(JoinResult {
                    error: err(ResponseError::RebalanceInProgress),
                    member_id: id.to_string(),
                    generation: -1,
                    ..Default::default()
                });
            }
        }
        JoinOutcome::Wait(rx)
    }

    fn join_result(&self, id: &str, with_members: bool) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResult {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: id.to_string(),
            members: if with_members {
                self.members
                    .values()
                    .map(|m| {
                        (
                            m.member_id.clone(),
                            m.instance_id.clone(),
                            m.metadata_for(&protocol),
                        )
                    })
                    .collect()
            } else {
                vec![]
            },
        }
    }

    /// Whether every member has a JoinGroup parked (the join phase can end).
    pub fn all_joined(&self) -> bool {
        self.members.values().all(|m| m.join_waiter.is_some()) && self.pending.is_empty()
    }

    /// The protocol the members would select now (Kafka's
    /// `ClassicGroup.selectProtocol`): each member votes for its most
    /// preferred protocol that every member supports.
    fn select_protocol(&self) -> Option<String> {
        let candidates: Vec<String> = self
            .members
            .values()
            .next()
            .map(|m| m.protocols.iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default();
        let supported: Vec<&String> = candidates
            .iter()
            .filter(|c| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *c))
            })
            .collect();
        let mut votes: HashMap<&String, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| supported.contains(&n)) {
                *votes.entry(n).or_default() += 1;
            }
        }
        let chosen = supported
            .iter()
            .max_by_key(|c| {
                (
                    votes.get(**c).copied().unwrap_or(0),
                    std::cmp::Reverse(candidates.iter().position(|x| x == **c)),
                )
            })
            .map(|c| (*c).clone());
        chosen
    }

    /// Ends the join phase: drops members that did not rejoin, bumps the
    /// generation, selects the protocol and answers every parked join.
    /// Returns true when the group became Empty.
    pub fn complete_join(&mut self, now: Instant, now_ms: i64) -> bool {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.generation += 1;
        self.deadline = None;
        self.initial = None;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.set_state(GroupState::Empty, now_ms);
            return true;
        }
        self.protocol = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.set_state(GroupState::CompletingRebalance, now_ms);
        self.deadline = Some(now + self.max_rebalance_timeout());
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let is_leader = self.leader.as_deref() == Some(id.as_str());
            let result = self.join_result(&id, is_leader);
            if let Some(m) = self.members.get_mut(&id) {
                m.touch(now);
                if let Some(w) = m.join_waiter.take() {
                    let _ = w.send(result);
                }
            }
        }
        false
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.shift_remove(id) {
            if let Some(inst) = &m.instance_id {
                if self.statics.get(inst).map(String::as_str) == Some(id) {
                    self.statics.remove(inst);
                }
            }
            m.fail_waiters();
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), i16> {
        if let Some(inst) = instance_id {
            match self.statics.get(inst) {
                Some(current) if current != member_id => {
                    return Err(err(ResponseError::FencedInstanceId))
                }
                None if self.members.contains_key(member_id) => {}
                None => return Err(err(ResponseError::UnknownMemberId)),
                _ => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(err(ResponseError::UnknownMemberId));
        }
        if generation != self.generation {
            return Err(err(ResponseError::IllegalGeneration));
        }
        Ok(())
    }

    /// Handles SyncGroup. Returns the outcome and whether the group just
    /// became Stable (its metadata should be persisted).
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
        now_ms: i64,
    ) -> (SyncOutcome, bool) {
        let fail = |code: i16| {
            (
                SyncOutcome::Now(SyncResult {
                    error: code,
                    ..Default::default()
                }),
                false,
            )
        };
        if self.state == GroupState::Dead || self.state == GroupState::Empty {
            return fail(err(ResponseError::UnknownMemberId));
        }
        if let Err(code) = self.check_member(member_id, instance_id, generation) {
            return fail(code);
        }
        if protocol_type.is_some_and(|p| Some(p) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|p| Some(p) != self.protocol.as_deref())
        {
            return fail(err(ResponseError::InconsistentGroupProtocol));
        }
        match self.state {
            GroupState::PreparingRebalance => fail(err(ResponseError::RebalanceInProgress)),
            GroupState::Stable => {
                let m = &self.members[member_id];
                (SyncOutcome::Now(self.sync_result(&m.assignment)), false)
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(member_id) {
                    m.sync_waiter = Some(tx);
                    m.touch(now);
                }
                if self.leader.as_deref() != Some(member_id) {
                    return (SyncOutcome::Wait(rx), false);
                }
                let given: HashMap<String, Bytes> = assignments.into_iter().collect();
                for m in self.members.values_mut() {
                    m.assignment = given.get(&m.member_id).cloned().unwrap_or_default();
                }
                self.set_state(GroupState::Stable, now_ms);
                self.deadline = None;
                // The caller persists the group, then calls `finish_sync`.
                (SyncOutcome::Wait(rx), true)
            }
            GroupState::Empty | GroupState::Dead => fail(err(ResponseError::UnknownMemberId)),
        }
    }

    /// Completes a leader's SyncGroup once the group's record is (or failed
    /// to be) stored: members get their assignments, or every parked member
    /// gets the error and the group rebalances again, as in Kafka.
    pub fn finish_sync(&mut self, stored: Result<(), i16>, now: Instant, now_ms: i64) {
        match stored {
            Ok(()) => {
                let ids: Vec<String> = self.members.keys().cloned().collect();
                for id in ids {
                    let result = self.sync_result(&self.members[&id].assignment);
                    if let Some(w) = self.members.get_mut(&id).and_then(|m| m.sync_waiter.take()) {
                        let _ = w.send(result);
                    }
                }
            }
            Err(code) => {
                for m in self.members.values_mut() {
                    m.assignment = Bytes::new();
                    if let Some(w) = m.sync_waiter.take() {
                        let _ = w.send(SyncResult {
                            error: code,
                            ..Default::default()
                        });
                    }
                }
                self.prepare_rebalance(now, now_ms, Duration::ZERO);
            }
        }
    }

    fn sync_result(&self, assignment: &Bytes) -> SyncResult {
        SyncResult {
            error: 0,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: assignment.clone(),
        }
    }

    /// Handles Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        if self.state == GroupState::Dead {
            return err(ResponseError::CoordinatorNotAvailable);
        }
        if self.state == GroupState::Empty {
            return err(ResponseError::UnknownMemberId);
        }
        if let Err(code) = self.check_member(member_id, instance_id, generation) {
            return code;
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.touch(now);
        }
        match self.state {
            GroupState::PreparingRebalance => err(ResponseError::RebalanceInProgress),
            _ => 0,
        }
    }

    /// Handles one member of a LeaveGroup. Returns its error code.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        now_ms: i64,
    ) -> i16 {
        let id = match instance_id {
            Some(inst) => match self.statics.get(inst) {
                None => return err(ResponseError::UnknownMemberId),
                Some(cur) if !member_id.is_empty() && cur != member_id => {
                    return err(ResponseError::FencedInstanceId)
                }
                Some(cur) => cur.clone(),
            },
            None => member_id.to_string(),
        };
        if self.pending.remove(&id).is_some() {
            return 0;
        }
        if !self.members.contains_key(&id) {
            return err(ResponseError::UnknownMemberId);
        }
        self.remove_member(&id);
        self.after_removal(now, now_ms);
        0
    }

    fn after_removal(&mut self, now: Instant, now_ms: i64) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if self.members.is_empty() {
                    self.generation += 1;
                    self.protocol = None;
                    self.set_state(GroupState::Empty, now_ms);
                } else {
                    self.prepare_rebalance(now, now_ms, Duration::ZERO);
                }
            }
            GroupState::PreparingRebalance if self.members.is_empty() => {
                self.generation += 1;
                self.protocol = None;
                self.deadline = None;
                self.set_state(GroupState::Empty, now_ms);
            }
            _ => {}
        }
    }

    /// Whether [`tick`](Self::tick) has anything to do at `now` (cheap; lets
    /// the coordinator skip the snapshot of idle groups).
    pub fn tick_due(&self, now: Instant) -> bool {
        self.state == GroupState::PreparingRebalance
            || (self.state == GroupState::CompletingRebalance
                && self.deadline.is_some_and(|d| d <= now))
            || self.pending.values().any(|e| *e <= now)
            || self
                .members
                .values()
                .any(|m| m.join_waiter.is_none() && m.expires_at <= now)
    }

    /// Time-driven transitions: session expiry, end of the join phase, a
    /// leader that never synced. Returns true if the group changed in a way
    /// worth persisting (it became Empty).
    pub fn tick(&mut self, now: Instant, now_ms: i64) -> bool {
        // Members parked in a join are covered by the rebalance deadline.
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.expires_at <= now)
            .map(|m| m.member_id.clone())
            .collect();
        let before = self.pending.len();
        self.pending.retain(|_, expires| *expires > now);
        if self.pending.len() < before {
            tracing::info!(group = %self.id, count = before - self.pending.len(), "pending member ids expired after their session timeout");
        }
        let mut became_empty = false;
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            let was = self.state;
            self.remove_member(&id);
            self.after_removal(now, now_ms);
            became_empty |= was != GroupState::Empty && self.state == GroupState::Empty;
        }
        if self.ready_to_complete_join(now) {
            became_empty |= self.complete_join(now, now_ms);
            return became_empty;
        }
        match self.state {
            GroupState::CompletingRebalance if self.deadline.is_some_and(|d| d <= now) => {
                // The leader never sent its assignment: start over without
                // the members that did not sync.
                let lazy: Vec<String> = self
                    .members
                    .values()
                    .filter(|m| m.sync_waiter.is_none())
                    .map(|m| m.member_id.clone())
                    .collect();
                for id in lazy {
                    self.remove_member(&id);
                }
                self.deadline = None;
                self.state = GroupState::Stable;
                self.after_removal(now, now_ms);
            }
            _ => {}
        }
        became_empty
    }

    /// Whether the join phase can end now. An initial rebalance ends when
    /// its timer fires with no new member since the last firing (re-arming
    /// it otherwise); any other ends when every member and every pending
    /// member id has joined, or at the rebalance timeout.
    pub fn ready_to_complete_join(&mut self, now: Instant) -> bool {
        if self.state != GroupState::PreparingRebalance {
            return false;
        }
        if let Some(initial) = &mut self.initial {
            if initial.fires_at > now {
                return false;
            }
            if initial.new_member_added && !initial.remaining.is_zero() {
                let next = initial.delay.min(initial.remaining);
                initial.remaining = initial.remaining.saturating_sub(initial.delay);
                initial.fires_at = now + next;
                initial.new_member_added = false;
                return false;
            }
            return true;
        }
        self.deadline.is_none_or(|d| d <= now) || self.all_joined()
    }
}
