//! The KIP-848 consumer group (`group.protocol=consumer`): the group state
//! machine behind `ConsumerGroupHeartbeat`, as pure logic. Time is passed
//! in; nothing here does I/O.
//!
//! Modelled on Kafka 4.0's group coordinator
//! (`group-coordinator/src/main/java/org/apache/kafka/coordinator/group/`):
//!
//! * `GroupMetadataManager.consumerGroupHeartbeat` / `consumerGroupLeave` —
//!   request validation, member creation and fencing, static membership,
//!   group epoch bumps, target assignment, response shaping;
//! * `modern/consumer/CurrentAssignmentBuilder` — the per-member
//!   reconciliation state machine (`STABLE`, `UNREVOKED_PARTITIONS`,
//!   `UNRELEASED_PARTITIONS`);
//! * `modern/TargetAssignmentBuilder` — the assignor sees each member's
//!   previous *target* assignment; a replacing static member inherits the
//!   target of the member it replaces;
//! * `modern/consumer/ConsumerGroup` — group state, partition ownership,
//!   `validateOffsetCommit` / `validateOffsetFetch`.
//!
//! The central invariant: a partition is *owned* by a member while it is in
//! that member's assigned partitions or its partitions pending revocation,
//! and a member is only given a partition nobody else owns. So no partition
//! is ever owned by two members.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::assignor::{self, AssignorMember, SUPPORTED_ASSIGNORS};
use super::topic_regex::TopicRegex;

/// Member epoch of a (dynamic or static) member leaving the group for good.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// Member epoch of a static member leaving temporarily (it keeps its
/// assignment until it rejoins or its session expires).
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// A topic as the group coordinator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub id: Uuid,
    pub name: String,
    pub partitions: i32,
}

/// Broker configuration for consumer groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms` (45000).
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (5000).
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.max.size` (Kafka's default is `Integer.MAX_VALUE`).
    pub max_size: usize,
    /// The assignor used when no member asks for one: the first of
    /// `group.consumer.assignors` ("uniform").
    pub default_assignor: String,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        ConsumerGroupConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: i32::MAX as usize,
            default_assignor: "uniform".to_string(),
        }
    }
}

/// The fields of a `ConsumerGroupHeartbeat` request the group needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    /// -1 when not sent.
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned_partitions: Option<Vec<(Uuid, Vec<i32>)>>,
    pub client_id: String,
    pub client_host: String,
}

impl Default for HeartbeatRequest {
    fn default() -> Self {
        HeartbeatRequest {
            member_id: String::new(),
            instance_id: None,
            rack_id: None,
            member_epoch: 0,
            rebalance_timeout_ms: -1,
            subscribed_topic_names: None,
            subscribed_topic_regex: None,
            server_assignor: None,
            owned_partitions: None,
            client_id: String::new(),
            client_host: String::new(),
        }
    }
}

/// The fields of a `ConsumerGroupHeartbeat` response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatResponse {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Present only on (re)join, a full request, or when the member's
    /// assigned partitions changed.
    pub assignment: Option<Vec<(Uuid, Vec<i32>)>>,
}

/// A member's reconciliation state (Kafka's `modern/MemberState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberState {
    /// Reconciled with the target assignment at its epoch.
    #[default]
    Stable,
    /// Must revoke partitions before moving to the next epoch.
    UnrevokedPartitions,
    /// At the target epoch, waiting for partitions other members still own.
    UnreleasedPartitions,
}

impl MemberState {
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Stable => "STABLE",
            MemberState::UnrevokedPartitions => "UNREVOKED_PARTITIONS",
            MemberState::UnreleasedPartitions => "UNRELEASED_PARTITIONS",
        }
    }
}

/// A member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: BTreeSet<String>,
    pub subscribed_topic_regex: Option<String>,
    /// The server assignor the member asked for, if any.
    pub assignor: Option<String>,
    /// The member's current assignment (what it may consume now).
    pub assigned: BTreeMap<Uuid, Vec<i32>>,
    /// Partitions the member must give up before it moves on.
    pub pending_revocation: BTreeMap<Uuid, Vec<i32>>,
    /// The member's target assignment.
    pub target: BTreeMap<Uuid, Vec<i32>>,
    session_deadline: Option<Instant>,
    /// (deadline, member epoch at scheduling) of the rebalance timeout,
    /// armed while the member is in `UNREVOKED_PARTITIONS`.
    rebalance_deadline: Option<(Instant, i32)>,
}

impl ConsumerMember {
    fn new(member_id: String) -> Self {
        ConsumerMember {
            member_id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            member_epoch: 0,
            previous_member_epoch: -1,
            state: MemberState::Stable,
            rebalance_timeout_ms: -1,
            subscribed_topic_names: BTreeSet::new(),
            subscribed_topic_regex: None,
            assignor: None,
            assigned: BTreeMap::new(),
            pending_revocation: BTreeMap::new(),
            target: BTreeMap::new(),
            session_deadline: None,
            rebalance_deadline: None,
        }
    }

    pub fn state_name(&self) -> &'static str {
        self.state.name()
    }

    /// Kafka's `ModernGroupMember.isReconciledTo`.
    pub fn is_reconciled_to(&self, target_assignment_epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == target_assignment_epoch
    }

    /// The assignment as a heartbeat response carries it.
    pub fn assignment_list(&self) -> Vec<(Uuid, Vec<i32>)> {
        self.assigned
            .iter()
            .map(|(t, ps)| (*t, ps.clone()))
            .collect()
    }

    fn update_member_epoch(&mut self, epoch: i32) {
        self.previous_member_epoch = self.member_epoch;
        self.member_epoch = epoch;
    }

    fn same_assignment_state(&self, other: &ConsumerMember) -> bool {
        self.state == other.state
            && self.member_epoch == other.member_epoch
            && self.previous_member_epoch == other.previous_member_epoch
            && self.assigned == other.assigned
            && self.pending_revocation == other.pending_revocation
    }
}

/// An error answered to a heartbeat: code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HbError {
    code: i16,
    message: String,
}

impl HbError {
    fn new(error: ResponseError, message: impl Into<String>) -> Self {
        HbError {
            code: error.code(),
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        HbError::new(ResponseError::InvalidRequest, message)
    }
}

type Tp = (Uuid, i32);
type PartSets = BTreeMap<Uuid, BTreeSet<i32>>;

fn to_sets(map: &BTreeMap<Uuid, Vec<i32>>) -> PartSets {
    map.iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(t, ps)| (*t, ps.iter().copied().collect()))
        .collect()
}

fn to_vecs(map: &PartSets) -> BTreeMap<Uuid, Vec<i32>> {
    map.iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(t, ps)| (*t, ps.iter().copied().collect()))
        .collect()
}

/// Kafka's `CurrentAssignmentBuilder.ownsRevokedPartitions`: whether the
/// owned partitions the member reported still include any partition it
/// must revoke. Not reporting them counts as still owning.
fn owns_revoked(owned: Option<&[(Uuid, Vec<i32>)]>, revoking: &BTreeMap<Uuid, Vec<i32>>) -> bool {
    let Some(owned) = owned else { return true };
    owned.iter().any(|(topic, partitions)| {
        revoking
            .get(topic)
            .is_some_and(|pending| partitions.iter().any(|p| pending.contains(p)))
    })
}

/// Kafka's `GroupMetadataManager.isSubset`: the reported owned partitions
/// are all in `assigned` (not reporting them is not a subset).
fn is_subset(owned: Option<&[(Uuid, Vec<i32>)]>, assigned: &BTreeMap<Uuid, Vec<i32>>) -> bool {
    let Some(owned) = owned else { return false };
    owned.iter().all(|(topic, partitions)| {
        assigned
            .get(topic)
            .is_some_and(|have| partitions.iter().all(|p| have.contains(p)))
    })
}

/// The reconciliation engine: Kafka's `CurrentAssignmentBuilder.build`.
/// `owned_by_others` holds every partition another member owns (assigned
/// or pending revocation); `subscribed` the ids of the topics the member
/// subscribes to.
fn reconcile(
    member: &ConsumerMember,
    target_epoch: i32,
    target: &BTreeMap<Uuid, Vec<i32>>,
    owned_by_others: &HashSet<Tp>,
    owned: Option<&[(Uuid, Vec<i32>)]>,
    subscribed: &BTreeSet<Uuid>,
) -> ConsumerMember {
    match member.state {
        MemberState::Stable => {
            if member.member_epoch != target_epoch {
                compute_next_assignment(
                    member,
                    target_epoch,
                    target,
                    owned_by_others,
                    owned,
                    subscribed,
                )
            } else {
                member.clone()
            }
        }
        MemberState::UnrevokedPartitions => {
            if owns_revoked(owned, &member.pending_revocation) {
                member.clone()
            } else {
                compute_next_assignment(
                    member,
                    target_epoch,
                    target,
                    owned_by_others,
                    owned,
                    subscribed,
                )
            }
        }
        MemberState::UnreleasedPartitions => compute_next_assignment(
            member,
            target_epoch,
            target,
            owned_by_others,
            owned,
            subscribed,
        ),
    }
}

/// Kafka's `CurrentAssignmentBuilder.computeNextAssignment`.
fn compute_next_assignment(
    member: &ConsumerMember,
    target_epoch: i32,
    target: &BTreeMap<Uuid, Vec<i32>>,
    owned_by_others: &HashSet<Tp>,
    owned: Option<&[(Uuid, Vec<i32>)]>,
    subscribed: &BTreeSet<Uuid>,
) -> ConsumerMember {
    let target = to_sets(target);
    let current = to_sets(&member.assigned);
    let empty = BTreeSet::new();
    let mut has_unreleased = false;
    let mut new_assigned = PartSets::new();
    let mut revoke = PartSets::new();
    let mut pending_assignment = PartSets::new();
    let topics: BTreeSet<Uuid> = target.keys().chain(current.keys()).copied().collect();
    for topic in topics {
        let target_t = if subscribed.contains(&topic) {
            target.get(&topic).unwrap_or(&empty)
        } else {
            &empty
        };
        let current_t = current.get(&topic).unwrap_or(&empty);
        // Assigned = current ∩ target; revoke = current − assigned.
        let keep: BTreeSet<i32> = current_t.intersection(target_t).copied().collect();
        let gone: BTreeSet<i32> = current_t.difference(&keep).copied().collect();
        // Pending assignment = target − assigned − unreleased.
        let mut add: BTreeSet<i32> = target_t.difference(&keep).copied().collect();
        let before = add.len();
        add.retain(|p| !owned_by_others.contains(&(topic, *p)));
        has_unreleased |= add.len() != before;
        if !keep.is_empty() {
            new_assigned.insert(topic, keep);
        }
        if !gone.is_empty() {
            revoke.insert(topic, gone);
        }
        if !add.is_empty() {
            pending_assignment.insert(topic, add);
        }
    }

    let mut next = member.clone();
    let revoke = to_vecs(&revoke);
    if !revoke.is_empty() && owns_revoked(owned, &revoke) {
        // Stay in the current epoch until the client confirms the revocation.
        next.state = MemberState::UnrevokedPartitions;
        next.update_member_epoch(member.member_epoch);
        next.assigned = to_vecs(&new_assigned);
        next.pending_revocation = revoke;
    } else {
        for (topic, add) in pending_assignment {
            new_assigned.entry(topic).or_default().extend(add);
        }
        next.state = if has_unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
        next.update_member_epoch(target_epoch);
        next.assigned = to_vecs(&new_assigned);
        next.pending_revocation = BTreeMap::new();
    }
    next
}

/// A consumer group using the KIP-848 protocol.
#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    group_id: String,
    group_epoch: i32,
    /// Epoch of the current target assignment.
    assignment_epoch: i32,
    /// Members in join order.
    members: IndexMap<String, ConsumerMember>,
    /// instance id → member id of static members.
    static_members: HashMap<String, String>,
    /// The subscribed topics that exist, as last seen.
    subscription_metadata: BTreeMap<String, TopicMeta>,
    /// regex → topic names it matched, as last resolved.
    resolved_regexes: BTreeMap<String, BTreeSet<String>>,
    dead: bool,
    /// Set by [`ConsumerGroup::restore`]: the hash of the subscription
    /// metadata the persisted group had, until the first metadata refresh
    /// compares it with the topics that exist now.
    restored_metadata_hash: Option<i64>,
}

impl ConsumerGroup {
    pub fn new(id: &str) -> Self {
        ConsumerGroup {
            group_id: id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: IndexMap::new(),
            static_members: HashMap::new(),
            subscription_metadata: BTreeMap::new(),
            resolved_regexes: BTreeMap::new(),
            dead: false,
            restored_metadata_hash: None,
        }
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    pub fn group_epoch(&self) -> i32 {
        self.group_epoch
    }

    /// The epoch of the target assignment.
    pub fn assignment_epoch(&self) -> i32 {
        self.assignment_epoch
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn members(&self) -> impl Iterator<Item = &ConsumerMember> {
        self.members.values()
    }

    pub fn member(&self, member_id: &str) -> Option<&ConsumerMember> {
        self.members.get(member_id)
    }

    /// Marks the group deleted (DeleteGroups); it then reports "Dead" and
    /// refuses heartbeats with GROUP_ID_NOT_FOUND.
    pub fn mark_dead(&mut self) {
        self.dead = true;
    }

    /// Kafka's `ConsumerGroup.ConsumerGroupState` as `toString` prints it.
    pub fn state_name(&self) -> &'static str {
        if self.dead {
            "Dead"
        } else if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Every topic name a member subscribes to, by name or through a regex
    /// (resolved against the topics last seen).
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| self.effective_subscription(m))
            .collect()
    }

    /// The server assignor the group uses now: the one most members ask for
    /// (ties by name), else the configured default.
    pub fn preferred_assignor(&self, cfg: &ConsumerGroupConfig) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.assignor {
                *counts.entry(a.as_str()).or_default() += 1;
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in counts {
            if best.is_none_or(|(_, c)| count > c) {
                best = Some((name, count));
            }
        }
        best.map(|(n, _)| n.to_string())
            .unwrap_or_else(|| cfg.default_assignor.clone())
    }

    fn effective_subscription(&self, member: &ConsumerMember) -> BTreeSet<String> {
        let mut topics = member.subscribed_topic_names.clone();
        if let Some(regex) = &member.subscribed_topic_regex {
            if let Some(resolved) = self.resolved_regexes.get(regex) {
                topics.extend(resolved.iter().cloned());
            }
        }
        topics
    }

    fn subscribed_topic_ids(&self, member: &ConsumerMember) -> BTreeSet<Uuid> {
        self.effective_subscription(member)
            .iter()
            .filter_map(|name| self.subscription_metadata.get(name))
            .map(|t| t.id)
            .collect()
    }

    /// Resolves every member regex against `topics` (Kafka matches the
    /// whole topic name, `Pattern.matcher(topic).matches()`).
    fn refresh_regexes(&mut self, topics: &BTreeMap<String, TopicMeta>) {
        let regexes: BTreeSet<String> = self
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.clone())
            .collect();
        let mut resolved = BTreeMap::new();
        for source in regexes {
            let matched = match TopicRegex::new(&source) {
                Ok(re) => topics.keys().filter(|t| re.matches(t)).cloned().collect(),
                Err(why) => {
                    // Validated when a member subscribed; cannot happen.
                    tracing::error!(group = %self.group_id, regex = %source, %why, "cannot compile a subscribed regex");
                    BTreeSet::new()
                }
            };
            resolved.insert(source, matched);
        }
        self.resolved_regexes = resolved;
    }

    /// The subscribed topics that exist in `topics`.
    fn compute_subscription_metadata(
        &self,
        topics: &BTreeMap<String, TopicMeta>,
    ) -> BTreeMap<String, TopicMeta> {
        self.subscribed_topics()
            .into_iter()
            .filter_map(|name| topics.get(&name).map(|t| (name, t.clone())))
            .collect()
    }

    /// Re-resolves regexes and the subscription metadata; bumps the group
    /// epoch when the subscribed topics that exist (or their partition
    /// counts or ids) changed. Returns whether the epoch was bumped.
    fn refresh_metadata(&mut self, topics: &BTreeMap<String, TopicMeta>) -> bool {
        self.refresh_regexes(topics);
        let metadata = self.compute_subscription_metadata(topics);
        if let Some(hash) = self.restored_metadata_hash.take() {
            // First refresh after a restore: only the hash was persisted.
            let changed = subscription_metadata_hash(&metadata) != hash;
            self.subscription_metadata = metadata;
            return changed;
        }
        if metadata != self.subscription_metadata {
            tracing::debug!(group = %self.group_id, "subscription metadata changed");
            self.subscription_metadata = metadata;
            true
        } else {
            false
        }
    }

    /// Topics were created, deleted or grew partitions: if that changes what
    /// the group subscribes to, the group epoch is bumped and the next
    /// heartbeat computes a new target assignment (as Kafka does).
    pub fn on_metadata_change(&mut self, topics: &BTreeMap<String, TopicMeta>) {
        if self.dead {
            return;
        }
        if self.refresh_metadata(topics) {
            self.bump_group_epoch();
        }
    }

    fn bump_group_epoch(&mut self) {
        self.group_epoch += 1;
        tracing::info!(group = %self.group_id, epoch = self.group_epoch, "bumped group epoch");
    }

    /// Computes a new target assignment at the group epoch (Kafka's
    /// `updateTargetAssignment` + `TargetAssignmentBuilder`).
    fn update_target_assignment(&mut self, cfg: &ConsumerGroupConfig) {
        let name = self.preferred_assignor(cfg);
        let assignor = assignor::assignor(&name)
            .or_else(|| assignor::assignor("uniform"))
            .expect("the uniform assignor exists");
        let members: Vec<AssignorMember> = self
            .members
            .values()
            .map(|m| AssignorMember {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                subscribed: self.effective_subscription(m),
                current: m.target.clone(),
            })
            .collect();
        let mut result = assignor.assign(&members, &self.subscription_metadata);
        for member in self.members.values_mut() {
            member.target = result.remove(&member.member_id).unwrap_or_default();
            member.target.retain(|_, ps| !ps.is_empty());
        }
        self.assignment_epoch = self.group_epoch;
        tracing::info!(
            group = %self.group_id,
            epoch = self.group_epoch,
            assignor = assignor.name(),
            "computed a new target assignment"
        );
    }

    /// Every partition owned (assigned or pending revocation) by a member
    /// other than `except`.
    fn owned_by_others(&self, except: &str) -> HashSet<Tp> {
        self.members
            .values()
            .filter(|m| m.member_id != except)
            .flat_map(|m| m.assigned.iter().chain(m.pending_revocation.iter()))
            .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
            .collect()
    }

    /// Removes a member and bumps the group epoch (Kafka's
    /// `consumerGroupFenceMember`). Its partitions become free at once.
    fn remove_member(&mut self, member_id: &str) {
        let Some(member) = self.members.shift_remove(member_id) else {
            return;
        };
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        // The subscription metadata without the leaving member.
        let still = self.subscribed_topics();
        self.subscription_metadata
            .retain(|name, _| still.contains(name));
        self.resolved_regexes.retain(|regex, _| {
            self.members
                .values()
                .any(|m| m.subscribed_topic_regex.as_deref() == Some(regex))
        });
        self.bump_group_epoch();
    }

    /// Handles one `ConsumerGroupHeartbeat`. `new_member_id` is called when
    /// a member joins without an id (Kafka 4 clients send their own).
    pub fn heartbeat(
        &mut self,
        req: HeartbeatRequest,
        topics: &BTreeMap<String, TopicMeta>,
        now: Instant,
        cfg: &ConsumerGroupConfig,
        new_member_id: impl FnOnce() -> String,
    ) -> HeartbeatResponse {
        match self.try_heartbeat(req, topics, now, cfg, new_member_id) {
            Ok(response) => response,
            Err(e) => HeartbeatResponse {
                error_code: e.code,
                error_message: Some(e.message),
                ..HeartbeatResponse::default()
            },
        }
    }

    fn try_heartbeat(
        &mut self,
        req: HeartbeatRequest,
        topics: &BTreeMap<String, TopicMeta>,
        now: Instant,
        cfg: &ConsumerGroupConfig,
        new_member_id: impl FnOnce() -> String,
    ) -> Result<HeartbeatResponse, HbError> {
        validate_request(&req)?;
        if self.dead {
            return Err(HbError::new(
                ResponseError::GroupIdNotFound,
                format!("Group {} not found.", self.group_id),
            ));
        }
        if req.member_epoch == LEAVE_GROUP_MEMBER_EPOCH
            || req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
        {
            return self.leave(&req);
        }

        // Kafka's throwIfConsumerGroupIsFull.
        if self.members.len() >= cfg.max_size
            && (req.member_id.is_empty() || !self.members.contains_key(&req.member_id))
        {
            return Err(HbError::new(
                ResponseError::GroupMaxSizeReached,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    cfg.max_size
                ),
            ));
        }

        let joining = req.member_epoch == 0;
        let member_id = if req.member_id.is_empty() {
            new_member_id()
        } else {
            req.member_id.clone()
        };
        let owned = req.owned_partitions.as_deref();
        let (member, replaced) = match &req.instance_id {
            None => (
                self.dynamic_member(&member_id, req.member_epoch, owned, joining)?,
                None,
            ),
            Some(instance) => {
                self.static_member(&member_id, instance, req.member_epoch, owned, joining)?
            }
        };

        // 1. Update the member; a changed subscription bumps the group epoch.
        let mut updated = member.clone();
        if let Some(instance) = &req.instance_id {
            updated.instance_id = Some(instance.clone());
        }
        if let Some(rack) = &req.rack_id {
            updated.rack_id = Some(rack.clone());
        }
        if req.rebalance_timeout_ms != -1 {
            updated.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if let Some(a) = &req.server_assignor {
            updated.assignor = Some(a.clone());
        }
        if let Some(names) = &req.subscribed_topic_names {
            updated.subscribed_topic_names = names.iter().cloned().collect();
        }
        if let Some(regex) = &req.subscribed_topic_regex {
            updated.subscribed_topic_regex = (!regex.is_empty()).then(|| regex.clone());
        }
        updated.client_id = req.client_id.clone();
        updated.client_host = req.client_host.clone();
        let mut bump = updated.subscribed_topic_names != member.subscribed_topic_names
            || updated.subscribed_topic_regex != member.subscribed_topic_regex;
        if joining && replaced.is_none() && !self.members.contains_key(&member_id) {
            tracing::info!(group = %self.group_id, member = %member_id, "member joins the consumer group");
        }

        if let Some(old) = &replaced {
            // The static member's new incarnation replaces the old one.
            self.members.shift_remove(old);
            tracing::info!(group = %self.group_id, member = %member_id, replaced = %old, "static member re-joins");
        }
        if let Some(instance) = &updated.instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        self.members.insert(member_id.clone(), updated);

        if self.refresh_metadata(topics) {
            bump = true;
        }
        if bump {
            self.bump_group_epoch();
        }

        // 2. A new target assignment when the group epoch moved past it.
        if self.group_epoch > self.assignment_epoch {
            self.update_target_assignment(cfg);
        }

        // 3. Reconcile the member towards its target.
        let target_epoch = self.assignment_epoch;
        let subscribed = match self.members.get(&member_id) {
            Some(m) => self.subscribed_topic_ids(m),
            None => BTreeSet::new(),
        };
        let others = self.owned_by_others(&member_id);
        let member_now = self
            .members
            .get_mut(&member_id)
            .expect("the member was just inserted");
        if !member_now.is_reconciled_to(target_epoch) {
            let target = member_now.target.clone();
            let next = reconcile(
                member_now,
                target_epoch,
                &target,
                &others,
                owned,
                &subscribed,
            );
            if !next.same_assignment_state(member_now) {
                tracing::debug!(
                    group = %self.group_id,
                    member = %member_id,
                    epoch = next.member_epoch,
                    state = next.state.name(),
                    "member assignment changed"
                );
                let rebalance_deadline =
                    (next.state == MemberState::UnrevokedPartitions).then(|| {
                        (
                            now + Duration::from_millis(next.rebalance_timeout_ms.max(0) as u64),
                            next.member_epoch,
                        )
                    });
                *member_now = next;
                member_now.rebalance_deadline = rebalance_deadline;
            }
        }
        member_now.session_deadline =
            Some(now + Duration::from_millis(cfg.session_timeout_ms.max(0) as u64));

        // The assignment goes out on a (re)join, a full request, or a change.
        let full_request = req.rebalance_timeout_ms != -1
            && (req.subscribed_topic_names.is_some() || req.subscribed_topic_regex.is_some())
            && req.owned_partitions.is_some();
        let changed = member_now.assigned != member.assigned;
        Ok(HeartbeatResponse {
            error_code: 0,
            error_message: None,
            member_id: Some(member_id),
            member_epoch: member_now.member_epoch,
            heartbeat_interval_ms: cfg.heartbeat_interval_ms,
            assignment: (joining || full_request || changed).then(|| member_now.assignment_list()),
        })
    }

    /// Kafka's `throwIfConsumerGroupMemberEpochIsInvalid`, with the fix of
    /// KAFKA-19233: epoch 0 is a rejoin (a fenced client keeps its member id
    /// and rejoins with epoch 0) and is always accepted.
    fn check_member_epoch(
        member: &ConsumerMember,
        received: i32,
        owned: Option<&[(Uuid, Vec<i32>)]>,
    ) -> Result<(), HbError> {
        if received == 0 {
            return Ok(());
        }
        if received > member.member_epoch {
            return Err(HbError::new(
                ResponseError::FencedMemberEpoch,
                format!(
                    "The consumer group member has a greater member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                    member.member_epoch
                ),
            ));
        }
        if received < member.member_epoch
            && (received != member.previous_member_epoch || !is_subset(owned, &member.assigned))
        {
            return Err(HbError::new(
                ResponseError::FencedMemberEpoch,
                format!(
                    "The consumer group member has a smaller member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                    member.member_epoch
                ),
            ));
        }
        Ok(())
    }

    fn unknown_member(&self, member_id: &str) -> HbError {
        HbError::new(
            ResponseError::UnknownMemberId,
            format!(
                "Member {member_id} is not a member of group {}.",
                self.group_id
            ),
        )
    }

    fn dynamic_member(
        &self,
        member_id: &str,
        epoch: i32,
        owned: Option<&[(Uuid, Vec<i32>)]>,
        joining: bool,
    ) -> Result<ConsumerMember, HbError> {
        match self.members.get(member_id) {
            Some(m) => {
                Self::check_member_epoch(m, epoch, owned)?;
                Ok(m.clone())
            }
            None if joining => Ok(ConsumerMember::new(member_id.to_string())),
            None => Err(self.unknown_member(member_id)),
        }
    }

    /// Kafka's `getOrMaybeSubscribeStaticConsumerGroupMember`. Returns the
    /// member and, when it replaces a departed static member, that member's
    /// id.
    fn static_member(
        &self,
        member_id: &str,
        instance: &str,
        epoch: i32,
        owned: Option<&[(Uuid, Vec<i32>)]>,
        joining: bool,
    ) -> Result<(ConsumerMember, Option<String>), HbError> {
        let existing = self
            .static_members
            .get(instance)
            .and_then(|id| self.members.get(id));
        if joining {
            match existing {
                None => Ok((
                    self.members
                        .get(member_id)
                        .cloned()
                        .unwrap_or_else(|| ConsumerMember::new(member_id.to_string())),
                    None,
                )),
                // The same incarnation rejoining after being fenced.
                Some(e) if e.member_id == member_id => Ok((e.clone(), None)),
                Some(e) if e.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH => Err(HbError::new(
                    ResponseError::UnreleasedInstanceId,
                    format!(
                        "Static member {member_id} with instance id {instance} cannot join the group because the instance id is owned by {} member.",
                        e.member_id
                    ),
                )),
                Some(e) => {
                    // Take over the departed member's state under the new id.
                    let mut m = e.clone();
                    m.member_id = member_id.to_string();
                    m.member_epoch = 0;
                    m.previous_member_epoch = 0;
                    m.rebalance_deadline = None;
                    Ok((m, Some(e.member_id.clone())))
                }
            }
        } else {
            let Some(e) = existing else {
                return Err(HbError::new(
                    ResponseError::UnknownMemberId,
                    format!("Instance id {instance} is unknown."),
                ));
            };
            if e.member_id != member_id {
                return Err(HbError::new(
                    ResponseError::FencedInstanceId,
                    format!(
                        "Static member {member_id} with instance id {instance} was fenced by member {}.",
                        e.member_id
                    ),
                ));
            }
            Self::check_member_epoch(e, epoch, owned)?;
            Ok((e.clone(), None))
        }
    }

    /// Kafka's `consumerGroupLeave`.
    fn leave(&mut self, req: &HeartbeatRequest) -> Result<HeartbeatResponse, HbError> {
        let response = HeartbeatResponse {
            member_id: Some(req.member_id.clone()),
            member_epoch: req.member_epoch,
            ..HeartbeatResponse::default()
        };
        match &req.instance_id {
            None => {
                if !self.members.contains_key(&req.member_id) {
                    return Err(self.unknown_member(&req.member_id));
                }
                tracing::info!(group = %self.group_id, member = %req.member_id, "member left the consumer group");
                self.remove_member(&req.member_id);
                Ok(response)
            }
            Some(instance) => {
                let Some(existing) = self.static_members.get(instance).cloned() else {
                    return Err(HbError::new(
                        ResponseError::UnknownMemberId,
                        format!("Instance id {instance} is unknown."),
                    ));
                };
                if existing != req.member_id {
                    return Err(HbError::new(
                        ResponseError::FencedInstanceId,
                        format!(
                            "Static member {} with instance id {instance} was fenced by member {existing}.",
                            req.member_id
                        ),
                    ));
                }
                if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                    // Temporary leave: keep the assignment, drop the
                    // partitions pending revocation (the client released
                    // everything), no epoch bump.
                    if let Some(m) = self.members.get_mut(&existing) {
                        m.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
                        m.pending_revocation.clear();
                        m.rebalance_deadline = None;
                    }
                    tracing::info!(group = %self.group_id, member = %existing, instance = %instance, "static member temporarily left");
                } else {
                    tracing::info!(group = %self.group_id, member = %existing, instance = %instance, "static member left");
                    self.remove_member(&existing);
                }
                Ok(response)
            }
        }
    }

    /// Expires members whose session timed out, and members that did not
    /// revoke their partitions within their rebalance timeout. Returns true
    /// when a member was removed.
    pub fn tick(&mut self, now: Instant) -> bool {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline.is_some_and(|d| now >= d)
                    || m.rebalance_deadline
                        .is_some_and(|(d, epoch)| now >= d && m.member_epoch == epoch)
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.group_id, member = %id, "member fenced: session or rebalance timeout expired");
            self.remove_member(id);
        }
        !expired.is_empty()
    }

    /// The earliest session or rebalance deadline, for scheduling `tick`.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.members
            .values()
            .flat_map(|m| {
                m.session_deadline
                    .into_iter()
                    .chain(m.rebalance_deadline.map(|(d, _)| d))
            })
            .min()
    }

    /// Kafka's `ConsumerGroup.validateOffsetCommit` (for members of this
    /// protocol): epoch < 0 commits are accepted only when the group is
    /// empty (admin / standalone commits); otherwise the member must exist
    /// (UNKNOWN_MEMBER_ID) and send its current epoch (STALE_MEMBER_EPOCH).
    pub fn validate_offset_commit(&self, member_id: &str, member_epoch: i32) -> Result<(), i16> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or(ResponseError::UnknownMemberId.code())?;
        if member.member_epoch != member_epoch {
            return Err(ResponseError::StaleMemberEpoch.code());
        }
        Ok(())
    }

    /// Kafka's `ConsumerGroup.validateOffsetFetch`: no member id with an
    /// epoch < 0 is an admin fetch and always allowed.
    pub fn validate_offset_fetch(
        &self,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), i16> {
        let Some(member_id) = member_id else {
            if member_epoch < 0 {
                return Ok(());
            }
            return Err(ResponseError::UnknownMemberId.code());
        };
        let member = self
            .members
            .get(member_id)
            .ok_or(ResponseError::UnknownMemberId.code())?;
        if member.member_epoch != member_epoch {
            return Err(ResponseError::StaleMemberEpoch.code());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Restoring a group from `__consumer_offsets` (see `consumer_records.rs`)
// ---------------------------------------------------------------------------

impl ConsumerMember {
    /// A member with the given id and the defaults of a fresh member, for
    /// rebuilding members from persisted records: fill in the public
    /// fields, then hand it to [`ConsumerGroup::restore`], which arms its
    /// timers.
    pub fn restored(member_id: impl Into<String>) -> Self {
        ConsumerMember::new(member_id.into())
    }
}

impl ConsumerGroup {
    /// Rebuilds a group from persisted state (the coordinator loading
    /// `__consumer_offsets`). As Kafka's `GroupMetadataManager.onLoaded`
    /// does, every member's session timer restarts at `now` + the session
    /// timeout, and members in `UNREVOKED_PARTITIONS` get a fresh rebalance
    /// timer at their current epoch. Static members are re-indexed by
    /// instance id (the last member with a given instance id wins).
    ///
    /// `metadata_hash` is what [`ConsumerGroup::metadata_hash`] returned
    /// when the group was persisted: the first metadata refresh (heartbeat
    /// or [`ConsumerGroup::on_metadata_change`]) bumps the group epoch only
    /// if the subscribed topics that exist then hash differently.
    pub fn restore(
        group_id: &str,
        group_epoch: i32,
        assignment_epoch: i32,
        metadata_hash: i64,
        members: Vec<ConsumerMember>,
        now: Instant,
        cfg: &ConsumerGroupConfig,
    ) -> Self {
        let mut group = ConsumerGroup::new(group_id);
        group.group_epoch = group_epoch;
        group.assignment_epoch = assignment_epoch;
        group.restored_metadata_hash = Some(metadata_hash);
        let session = Duration::from_millis(cfg.session_timeout_ms.max(0) as u64);
        for mut m in members {
            m.session_deadline = Some(now + session);
            m.rebalance_deadline = (m.state == MemberState::UnrevokedPartitions).then(|| {
                (
                    now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
                    m.member_epoch,
                )
            });
            if let Some(instance) = &m.instance_id {
                group
                    .static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            group.members.insert(m.member_id.clone(), m);
        }
        group
    }

    /// A hash of the subscription metadata (the subscribed topics that
    /// exist: id, name, partition count), 0 when there is none — persisted
    /// as `ConsumerGroupMetadataValue.metadataHash`. Not Kafka's KIP-1101
    /// hash: a Kafka reading our records sees a mismatch and rebalances
    /// once, which is harmless.
    pub fn metadata_hash(&self) -> i64 {
        match self.restored_metadata_hash {
            Some(hash) => hash,
            None => subscription_metadata_hash(&self.subscription_metadata),
        }
    }
}

/// FNV-1a (64-bit) over every topic's id, name and partition count, in
/// name order; 0 for no topics.
fn subscription_metadata_hash(metadata: &BTreeMap<String, TopicMeta>) -> i64 {
    if metadata.is_empty() {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (name, t) in metadata {
        eat(t.id.as_bytes());
        eat(&(name.len() as u64).to_be_bytes());
        eat(name.as_bytes());
        eat(&t.partitions.to_be_bytes());
    }
    h as i64
}

/// Kafka 4.0's `throwIfConsumerGroupHeartbeatRequestIsInvalid`, in its
/// order. An empty member id is accepted on a join (v0 semantics; the
/// group generates the id).
fn validate_request(req: &HeartbeatRequest) -> Result<(), HbError> {
    let blank = |s: &Option<String>| s.as_deref().is_some_and(|v| v.trim().is_empty());
    if req.member_epoch != 0 && req.member_id.trim().is_empty() {
        return Err(HbError::invalid("MemberId can't be empty."));
    }
    if blank(&req.instance_id) {
        return Err(HbError::invalid("InstanceId can't be empty."));
    }
    if blank(&req.rack_id) {
        return Err(HbError::invalid("RackId can't be empty."));
    }
    if req.member_epoch == 0 {
        if req.rebalance_timeout_ms == -1 {
            return Err(HbError::invalid(
                "RebalanceTimeoutMs must be provided in first request.",
            ));
        }
        if req.owned_partitions.as_ref().is_none_or(|o| !o.is_empty()) {
            return Err(HbError::invalid(
                "TopicPartitions must be empty when (re-)joining.",
            ));
        }
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return Err(HbError::invalid(
                "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
            ));
        }
    } else if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        if req.instance_id.is_none() {
            return Err(HbError::invalid("InstanceId can't be null."));
        }
    } else if req.member_epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        return Err(HbError::invalid("MemberEpoch is invalid."));
    }
    if let Some(source) = req
        .subscribed_topic_regex
        .as_deref()
        .filter(|r| !r.is_empty())
    {
        // Kafka's Utils.throwIfRegularExpressionIsInvalid.
        if let Err(why) = TopicRegex::new(source) {
            return Err(HbError::new(
                ResponseError::InvalidRegularExpression,
                format!(
                    "SubscribedTopicRegex `{source}` is not a valid regular expression: {why}."
                ),
            ));
        }
    }
    if let Some(a) = &req.server_assignor {
        if !SUPPORTED_ASSIGNORS.contains(&a.as_str()) {
            return Err(HbError::new(
                ResponseError::UnsupportedAssignor,
                format!(
                    "ServerAssignor {a} is not supported. Supported assignors: {}.",
                    SUPPORTED_ASSIGNORS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;

    fn topics(list: &[(&str, u128, i32)]) -> BTreeMap<String, TopicMeta> {
        list.iter()
            .map(|(name, id, partitions)| {
                (
                    name.to_string(),
                    TopicMeta {
                        id: Uuid::from_u128(*id),
                        name: name.to_string(),
                        partitions: *partitions,
                    },
                )
            })
            .collect()
    }

    fn cfg() -> ConsumerGroupConfig {
        ConsumerGroupConfig::default()
    }

    fn join(member_id: &str, subs: &[&str]) -> HeartbeatRequest {
        HeartbeatRequest {
            member_id: member_id.to_string(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(subs.iter().map(|s| s.to_string()).collect()),
            owned_partitions: Some(vec![]),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            ..HeartbeatRequest::default()
        }
    }

    fn beat(member_id: &str, epoch: i32, owned: &[(Uuid, Vec<i32>)]) -> HeartbeatRequest {
        HeartbeatRequest {
            member_id: member_id.to_string(),
            member_epoch: epoch,
            owned_partitions: Some(owned.to_vec()),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            ..HeartbeatRequest::default()
        }
    }

    fn no_id() -> String {
        panic!("no member id should be generated")
    }

    fn count(a: &Option<Vec<(Uuid, Vec<i32>)>>) -> usize {
        a.as_ref()
            .map(|a| a.iter().map(|(_, p)| p.len()).sum())
            .unwrap_or(0)
    }

    /// No partition is owned (assigned or pending revocation) by two
    /// members, on the coordinator's side.
    fn assert_no_double_ownership(g: &ConsumerGroup) {
        let mut seen: HashMap<Tp, String> = HashMap::new();
        for m in g.members() {
            for (t, ps) in m.assigned.iter().chain(m.pending_revocation.iter()) {
                for p in ps {
                    if let Some(other) = seen.insert((*t, *p), m.member_id.clone()) {
                        panic!("{t}/{p} owned by {other} and {}", m.member_id);
                    }
                }
            }
        }
    }

    /// A simulated KIP-848 client: adopts any assignment it receives at once
    /// and reports what it owns on every heartbeat.
    #[derive(Debug, Clone)]
    struct Client {
        id: String,
        epoch: i32,
        owned: BTreeMap<Uuid, Vec<i32>>,
        subs: Vec<String>,
        instance: Option<String>,
    }

    impl Client {
        fn new(id: &str, subs: &[&str]) -> Self {
            Client {
                id: id.into(),
                epoch: 0,
                owned: BTreeMap::new(),
                subs: subs.iter().map(|s| s.to_string()).collect(),
                instance: None,
            }
        }

        fn owned_list(&self) -> Vec<(Uuid, Vec<i32>)> {
            self.owned.iter().map(|(t, p)| (*t, p.clone())).collect()
        }

        fn request(&self) -> HeartbeatRequest {
            if self.epoch == 0 {
                let subs: Vec<&str> = self.subs.iter().map(String::as_str).collect();
                HeartbeatRequest {
                    instance_id: self.instance.clone(),
                    ..join(&self.id, &subs)
                }
            } else {
                HeartbeatRequest {
                    instance_id: self.instance.clone(),
                    ..beat(&self.id, self.epoch, &self.owned_list())
                }
            }
        }

        fn apply(&mut self, r: &HeartbeatResponse) {
            assert_eq!(r.error_code, 0, "{:?}", r.error_message);
            self.epoch = r.member_epoch;
            if let Some(a) = &r.assignment {
                self.owned = a.iter().filter(|&(_, p)| !p.is_empty()).cloned().collect();
            }
        }

        fn heartbeat(
            &mut self,
            g: &mut ConsumerGroup,
            t: &BTreeMap<String, TopicMeta>,
            now: Instant,
        ) -> HeartbeatResponse {
            let r = g.heartbeat(self.request(), t, now, &cfg(), no_id);
            self.apply(&r);
            r
        }
    }

    fn assert_clients_disjoint(clients: &[Client]) {
        let mut seen: HashMap<Tp, &str> = HashMap::new();
        for c in clients {
            for (t, ps) in &c.owned {
                for p in ps {
                    if let Some(other) = seen.insert((*t, *p), &c.id) {
                        panic!("clients {other} and {} both consume {t}/{p}", c.id);
                    }
                }
            }
        }
    }

    /// Heartbeats every client in turn until the group is Stable, asserting
    /// the ownership invariant after every single heartbeat.
    fn converge(
        g: &mut ConsumerGroup,
        clients: &mut [Client],
        t: &BTreeMap<String, TopicMeta>,
        now: Instant,
    ) -> usize {
        for round in 0..20 {
            for i in 0..clients.len() {
                clients[i].heartbeat(g, t, now);
                assert_no_double_ownership(g);
                assert_clients_disjoint(clients);
            }
            if g.state_name() == "Stable" {
                return round + 1;
            }
        }
        panic!(
            "group did not stabilize: {:?}",
            g.members().collect::<Vec<_>>()
        );
    }

    #[test]
    fn join_assign_stable() {
        let t = topics(&[("orders", 1, 4)]);
        let mut g = ConsumerGroup::new("g");
        assert_eq!(g.state_name(), "Empty");
        assert!(g.is_empty());
        let now = Instant::now();
        let mut req = join("", &["orders"]);
        req.member_id.clear();
        let r = g.heartbeat(req, &t, now, &cfg(), || "generated".into());
        assert_eq!(r.error_code, 0);
        assert_eq!(r.member_id.as_deref(), Some("generated"));
        assert_eq!(r.member_epoch, 1);
        assert_eq!(r.heartbeat_interval_ms, 5000);
        assert_eq!(
            r.assignment,
            Some(vec![(Uuid::from_u128(1), vec![0, 1, 2, 3])])
        );
        assert_eq!(g.group_epoch(), 1);
        assert_eq!(g.assignment_epoch(), 1);
        assert_eq!(g.state_name(), "Stable");
        assert_eq!(
            g.subscribed_topics(),
            ["orders".to_string()].into_iter().collect()
        );

        // A plain heartbeat: no assignment in the response.
        let owned = vec![(Uuid::from_u128(1), vec![0, 1, 2, 3])];
        let r = g.heartbeat(beat("generated", 1, &owned), &t, now, &cfg(), no_id);
        assert_eq!(
            (r.error_code, r.member_epoch, r.assignment.clone()),
            (0, 1, None)
        );

        // A full request (timeout + subscription + owned) gets it again.
        let mut full = beat("generated", 1, &owned);
        full.rebalance_timeout_ms = 30_000;
        full.subscribed_topic_names = Some(vec!["orders".into()]);
        let r = g.heartbeat(full, &t, now, &cfg(), no_id);
        assert_eq!(r.assignment, Some(owned));
        assert_eq!(g.group_epoch(), 1, "same subscription: no bump");

        let m = g.member("generated").expect("member");
        assert_eq!(m.client_id, "client");
        assert_eq!(m.state_name(), "STABLE");
        assert_eq!(m.target, m.assigned);
    }

    #[test]
    fn client_generated_member_id_is_kept() {
        let t = topics(&[("a", 1, 1)]);
        let mut g = ConsumerGroup::new("g");
        let r = g.heartbeat(
            join("4f0c-client-uuid", &["a"]),
            &t,
            Instant::now(),
            &cfg(),
            no_id,
        );
        assert_eq!(r.member_id.as_deref(), Some("4f0c-client-uuid"));
    }

    #[test]
    fn second_member_waits_for_revocation() {
        let t = topics(&[("t", 1, 6)]);
        let id = Uuid::from_u128(1);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        let mut a = Client::new("a", &["t"]);
        a.heartbeat(&mut g, &t, now);
        assert_eq!(a.owned[&id].len(), 6);

        // b joins: epoch 2, target 3/3, but a still owns b's partitions.
        let mut b = Client::new("b", &["t"]);
        let r = b.heartbeat(&mut g, &t, now);
        assert_eq!(g.group_epoch(), 2);
        assert_eq!(r.member_epoch, 2);
        assert_eq!(count(&r.assignment), 0, "b must wait for a to revoke");
        assert_eq!(
            g.member("b").map(|m| m.state),
            Some(MemberState::UnreleasedPartitions)
        );
        assert_eq!(g.state_name(), "Reconciling");
        assert_no_double_ownership(&g);

        // a heartbeats: it is asked to revoke 3 and stays at epoch 1.
        let r = a.heartbeat(&mut g, &t, now);
        assert_eq!(r.member_epoch, 1);
        assert_eq!(count(&r.assignment), 3);
        assert_eq!(
            g.member("a").map(|m| m.state),
            Some(MemberState::UnrevokedPartitions)
        );
        assert_no_double_ownership(&g);

        // b heartbeats before a acknowledges: still nothing.
        let r = b.heartbeat(&mut g, &t, now);
        assert_eq!(r.assignment, None);
        assert!(b.owned.is_empty());

        // a acknowledges the revocation → epoch 2, stable.
        let r = a.heartbeat(&mut g, &t, now);
        assert_eq!(r.member_epoch, 2);
        assert_eq!(g.member("a").map(|m| m.state), Some(MemberState::Stable));

        // Now b gets the released partitions.
        let r = b.heartbeat(&mut g, &t, now);
        assert_eq!(count(&r.assignment), 3);
        assert_eq!(g.state_name(), "Stable");
        assert_clients_disjoint(&[a, b]);
        assert_no_double_ownership(&g);
    }

    #[test]
    fn many_members_never_double_owned() {
        let t = topics(&[("x", 1, 7), ("y", 2, 5)]);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        let mut clients: Vec<Client> = Vec::new();
        for i in 0..5 {
            let subs: &[&str] = if i % 2 == 0 { &["x", "y"] } else { &["x"] };
            clients.push(Client::new(&format!("m{i}"), subs));
            converge(&mut g, &mut clients, &t, now);
        }
        let total: usize = clients
            .iter()
            .map(|c| c.owned.values().map(Vec::len).sum::<usize>())
            .sum();
        assert_eq!(total, 12);
        // Members leave one by one (epoch -1); the rest pick up the slack.
        while clients.len() > 1 {
            let gone = clients.remove(0);
            let r = g.heartbeat(beat(&gone.id, -1, &[]), &t, now, &cfg(), no_id);
            assert_eq!((r.error_code, r.member_epoch), (0, -1));
            converge(&mut g, &mut clients, &t, now);
            let total: usize = clients
                .iter()
                .map(|c| c.owned.values().map(Vec::len).sum::<usize>())
                .sum();
            assert_eq!(total, 12);
        }
    }

    #[test]
    fn leave_with_epoch_minus_one() {
        let t = topics(&[("t", 1, 4)]);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        let mut clients = vec![Client::new("a", &["t"]), Client::new("b", &["t"])];
        converge(&mut g, &mut clients, &t, now);
        let epoch = g.group_epoch();
        let r = g.heartbeat(beat("a", -1, &[]), &t, now, &cfg(), no_id);
        assert_eq!(r.error_code, 0);
        assert_eq!(r.member_id.as_deref(), Some("a"));
        assert_eq!(r.member_epoch, -1);
        assert_eq!(g.group_epoch(), epoch + 1);
        assert!(g.member("a").is_none());
        assert_eq!(g.state_name(), "Assigning");
        let mut rest = vec![clients.remove(1)];
        converge(&mut g, &mut rest, &t, now);
        assert_eq!(rest[0].owned[&Uuid::from_u128(1)], vec![0, 1, 2, 3]);

        // Leaving twice: unknown.
        let r = g.heartbeat(beat("a", -1, &[]), &t, now, &cfg(), no_id);
        assert_eq!(r.error_code, ResponseError::UnknownMemberId.code());

        // The last member leaves: Empty.
        g.heartbeat(beat("b", -1, &[]), &t, now, &cfg(), no_id);
        assert_eq!(g.state_name(), "Empty");
        assert!(g.is_empty());
    }

    #[test]
    fn fencing() {
        let t = topics(&[("t", 1, 2)]);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        let mut a = Client::new("a", &["t"]);
        a.heartbeat(&mut g, &t, now);
        assert_eq!(a.epoch, 1);

        // Epoch ahead of the coordinator.
        let r = g.heartbeat(beat("a", 5, &a.owned_list()), &t, now, &cfg(), no_id);
        assert_eq!(r.error_code, ResponseError::FencedMemberEpoch.code());
        assert!(r.member_id.is_none());

        // Unknown member.
        let r = g.heartbeat(beat("ghost", 1, &[]), &t, now, &cfg(), no_id);
        assert_eq!(r.error_code, ResponseError::UnknownMemberId.code());

        // Move a to epoch 2 (b joins, a has to give up a partition).
        let mut b = Client::new("b", &["t"]);
        b.heartbeat(&mut g, &t, now);
        a.heartbeat(&mut g, &t, now); // revoke, still epoch 1
        a.heartbeat(&mut g, &t, now); // acked → epoch 2
        assert_eq!(a.epoch, 2);
        assert_eq!(g.member("a").map(|m| m.previous_member_epoch), Some(1));

        // The previous epoch with a subset of the assignment is accepted
        // (the response with the new epoch may have been lost)...
        let r = g.heartbeat(beat("a", 1, &a.owned_list()), &t, now, &cfg(), no_id);
        assert_eq!(r.error_code, 0);
        assert_eq!(r.member_epoch, 2);
        // ...but not while claiming partitions it no longer has...
        let r = g.heartbeat(
            beat("a", 1, &[(Uuid::from_u128(1), vec![0, 1])]),
            &t,
            now,
            &cfg(),
            no_id,
        );
        assert_eq!(r.error_code, ResponseError::FencedMemberEpoch.code());
        // ...nor a smaller epoch that is not the previous one.
        let r = g.heartbeat(beat("b", 1, &[]), &t, now, &cfg(), no_id);
        assert_eq!(
            r.error_code,
            ResponseError::FencedMemberEpoch.code(),
            "b's previous epoch is 0"
        );

        // A fenced member rejoins with epoch 0 and the same id (KAFKA-19233).
        let r = g.heartbeat(join("a", &["t"]), &t, now, &cfg(), no_id);
        assert_eq!(r.error_code, 0);
        assert_eq!(r.member_epoch, 2);
        assert!(r.assignment.is_some());
        assert_no_double_ownership(&g);
    }

    #[test]
    fn session_expiry_hands_partitions_over() {
        let t = topics(&[("t", 1, 4)]);
        let mut g = ConsumerGroup::new("g");
        let start = Instant::now();
        let mut clients = vec![Client::new("a", &["t"]), Client::new("b", &["t"])];
        converge(&mut g, &mut clients, &t, start);
        assert_eq!(
            g.next_deadline(),
            Some(start + Duration::from_millis(45_000))
        );

        // b keeps heartbeating; a goes silent.
        let later = start + Duration::from_secs(30);
        clients[1].heartbeat(&mut g, &t, later);
        assert!(!g.tick(start + Duration::from_millis(44_999)));
        assert!(g.tick(start + Duration::from_millis(45_000)));
        assert!(g.member("a").is_none());
        assert!(g.member("b").is_some());
        assert!(!g.tick(start + Duration::from_millis(45_001)));

        let mut b = vec![clients.remove(1)];
        converge(&mut g, &mut b, &t, later);
        assert_eq!(b[0].owned[&Uuid::from_u128(1)], vec![0, 1, 2, 3]);

        // A heartbeat from the expired member is refused.
        let r = g.heartbeat(beat("a", 2, &[]), &t, later, &cfg(), no_id);
        assert_eq!(r.error_code, ResponseError::UnknownMemberId.code());
    }

    #[test]
    fn rebalance_timeout_fences_a_member_that_does_not_revoke() {
        let t = topics(&[("t", 1, 4)]);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        let mut a = Client::new("a", &["t"]);
        a.heartbeat(&mut g, &t, now);
        let mut b = Client::new("b", &["t"]);
        b.heartbeat(&mut g, &t, now);
        // a is asked to revoke but (stubbornly) keeps reporting everything.
        let stubborn = a.owned_list();
        let r = g.heartbeat(beat("a", 1, &stubborn), &t, now, &cfg(), no_id);
        assert_eq!(count(&r.assignment), 2);
        let r = g.heartbeat(
            beat("a", 1, &stubborn),
            &t,
            now + Duration::from_secs(10),
            &cfg(),
            no_id,
        );
        assert_eq!(r.error_code, 0);
        assert_eq!(
            g.member("a").map(|m| m.state),
            Some(MemberState::UnrevokedPartitions)
        );
        // Heartbeats keep the session alive, but the rebalance timeout
        // (30 s from entering UNREVOKED_PARTITIONS) fences it.
        assert!(!g.tick(now + Duration::from_millis(29_999)));
        assert!(g.tick(now + Duration::from_millis(30_000)));
        assert!(g.member("a").is_none());
    }

    #[test]
    fn static_member_temporary_leave_and_rejoin_keeps_assignment() {
        let t = topics(&[("t", 1, 4)]);
        let id = Uuid::from_u128(1);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        let mut s = Client::new("s1", &["t"]);
        s.instance = Some("instance-0".into());
        let mut d = Client::new("d", &["t"]);
        let mut clients = vec![s, d.clone()];
        converge(&mut g, &mut clients, &t, now);
        let static_parts = clients[0].owned[&id].clone();
        assert_eq!(static_parts.len(), 2);
        let epoch = g.group_epoch();

        // Temporary leave: epoch -2, member stays with its assignment.
        let mut leave = beat("s1", -2, &[]);
        leave.instance_id = Some("instance-0".into());
        let r = g.heartbeat(leave, &t, now, &cfg(), no_id);
        assert_eq!((r.error_code, r.member_epoch), (0, -2));
        assert_eq!(g.group_epoch(), epoch, "no rebalance on a temporary leave");
        let m = g.member("s1").expect("still a member");
        assert_eq!(m.member_epoch, -2);
        assert_eq!(m.assigned[&id], static_parts);
        assert_eq!(g.state_name(), "Reconciling");

        // The dynamic member does not get the static member's partitions.
        d = clients.remove(1);
        let r = d.heartbeat(&mut g, &t, now);
        assert_eq!(r.assignment, None);
        assert_no_double_ownership(&g);

        // Restart with a new member id and the same instance id.
        let mut s2 = Client::new("s2", &["t"]);
        s2.instance = Some("instance-0".into());
        let r = s2.heartbeat(&mut g, &t, now);
        assert_eq!(r.member_id.as_deref(), Some("s2"));
        assert_eq!(r.member_epoch, epoch);
        assert_eq!(s2.owned[&id], static_parts);
        assert!(g.member("s1").is_none());
        assert_eq!(g.group_epoch(), epoch);
        assert_eq!(g.state_name(), "Stable");
        assert_no_double_ownership(&g);

        // The old incarnation is fenced by the new one.
        let mut old = beat("s1", epoch, &[]);
        old.instance_id = Some("instance-0".into());
        let r = g.heartbeat(old, &t, now, &cfg(), no_id);
        assert_eq!(r.error_code, ResponseError::FencedInstanceId.code());

        // A second instance with the same id while s2 is active: refused.
        let mut dup = join("s3", &["t"]);
        dup.instance_id = Some("instance-0".into());
        let r = g.heartbeat(dup, &t, now, &cfg(), no_id);
        assert_eq!(r.error_code, ResponseError::UnreleasedInstanceId.code());

        // Unknown instance id on a heartbeat.
        let mut unknown = beat("s9", 3, &[]);
        unknown.instance_id = Some("instance-9".into());
        let r = g.heartbeat(unknown, &t, now, &cfg(), no_id);
        assert_eq!(r.error_code, ResponseError::UnknownMemberId.code());
    }

    #[test]
    fn static_member_that_never_returns_expires() {
        let t = topics(&[("t", 1, 2)]);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        let mut s = Client::new("s1", &["t"]);
        s.instance = Some("i".into());
        s.heartbeat(&mut g, &t, now);
        let mut leave = beat("s1", -2, &[]);
        leave.instance_id = Some("i".into());
        g.heartbeat(leave, &t, now + Duration::from_secs(1), &cfg(), no_id);
        assert!(g.tick(now + Duration::from_secs(45)));
        assert!(g.is_empty());
        // The instance id is free again.
        let mut s2 = Client::new("s2", &["t"]);
        s2.instance = Some("i".into());
        let r = s2.heartbeat(&mut g, &t, now + Duration::from_secs(46));
        assert_eq!(count(&r.assignment), 2);
    }

    #[test]
    fn new_partitions_and_deleted_topics() {
        let mut t = topics(&[("t", 1, 2), ("u", 2, 2)]);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        let mut clients = vec![Client::new("a", &["t", "u"]), Client::new("b", &["t", "u"])];
        converge(&mut g, &mut clients, &t, now);
        let epoch = g.group_epoch();

        // t grows from 2 to 6 partitions.
        t.insert(
            "t".into(),
            TopicMeta {
                id: Uuid::from_u128(1),
                name: "t".into(),
                partitions: 6,
            },
        );
        g.on_metadata_change(&t);
        assert_eq!(g.group_epoch(), epoch + 1);
        assert_eq!(g.state_name(), "Assigning");
        converge(&mut g, &mut clients, &t, now);
        let owned_t: usize = clients
            .iter()
            .map(|c| c.owned.get(&Uuid::from_u128(1)).map_or(0, Vec::len))
            .sum();
        assert_eq!(owned_t, 6);

        // Unrelated metadata changes do not bump the epoch.
        let epoch = g.group_epoch();
        let mut with_other = t.clone();
        with_other.insert(
            "other".into(),
            TopicMeta {
                id: Uuid::from_u128(9),
                name: "other".into(),
                partitions: 3,
            },
        );
        g.on_metadata_change(&with_other);
        assert_eq!(g.group_epoch(), epoch);

        // u is deleted: its partitions are revoked everywhere.
        t.remove("u");
        converge(&mut g, &mut clients, &t, now); // noticed through heartbeats too
        assert_eq!(g.group_epoch(), epoch + 1);
        for c in &clients {
            assert!(!c.owned.contains_key(&Uuid::from_u128(2)), "{c:?}");
        }
        for m in g.members() {
            assert!(!m.assigned.contains_key(&Uuid::from_u128(2)));
        }
    }

    #[test]
    fn subscription_change_bumps_and_revokes() {
        let t = topics(&[("t", 1, 2), ("u", 2, 2)]);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        let mut a = Client::new("a", &["t"]);
        a.heartbeat(&mut g, &t, now);
        let mut req = beat("a", 1, &a.owned_list());
        req.subscribed_topic_names = Some(vec!["u".into()]);
        let r = g.heartbeat(req, &t, now, &cfg(), no_id);
        assert_eq!(g.group_epoch(), 2);
        // t must be revoked first (still epoch 1, empty assignment).
        assert_eq!((r.member_epoch, count(&r.assignment)), (1, 0));
        a.apply(&r);
        let r = a.heartbeat(&mut g, &t, now);
        assert_eq!(r.member_epoch, 2);
        assert_eq!(
            a.owned,
            [(Uuid::from_u128(2), vec![0, 1])].into_iter().collect()
        );
    }

    #[test]
    fn regex_subscription() {
        let mut t = topics(&[("orders-eu", 1, 1), ("orders-us", 2, 1), ("payments", 3, 1)]);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        let mut req = join("a", &[]);
        req.subscribed_topic_names = None;
        req.subscribed_topic_regex = Some("orders-.*".into());
        let r = g.heartbeat(req, &t, now, &cfg(), no_id);
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
        assert_eq!(count(&r.assignment), 2);
        assert_eq!(
            g.subscribed_topics(),
            ["orders-eu".to_string(), "orders-us".to_string()]
                .into_iter()
                .collect()
        );
        // A newly created matching topic is picked up.
        t.insert(
            "orders-ap".into(),
            TopicMeta {
                id: Uuid::from_u128(4),
                name: "orders-ap".into(),
                partitions: 1,
            },
        );
        g.on_metadata_change(&t);
        let r = g.heartbeat(beat("a", 1, &[]), &t, now, &cfg(), no_id);
        assert_eq!(r.member_epoch, 2);
        assert_eq!(count(&r.assignment), 3);

        // Invalid and unsupported expressions.
        let mut bad = join("b", &[]);
        bad.subscribed_topic_regex = Some("orders-(".into());
        let r = g.heartbeat(bad, &t, now, &cfg(), no_id);
        assert_eq!(r.error_code, ResponseError::InvalidRegularExpression.code());
        assert_eq!(
            r.error_message.as_deref(),
            Some("SubscribedTopicRegex `orders-(` is not a valid regular expression: missing closing ).")
        );
        // RE2 syntax the old hand-written engine refused.
        let mut flags = join("b", &[]);
        flags.subscribed_topic_regex = Some("(?i)ORDERS-EU".into());
        let r = g.heartbeat(flags, &t, now, &cfg(), no_id);
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    }

    #[test]
    fn regex_matches_whole_names_including_internal_topics() {
        let t = topics(&[
            ("orders", 1, 1),
            ("orders-v2", 2, 1),
            ("__consumer_offsets", 3, 2),
        ]);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        let mut req = join("a", &[]);
        req.subscribed_topic_names = None;
        req.subscribed_topic_regex = Some("orders".into());
        let r = g.heartbeat(req, &t, now, &cfg(), no_id);
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
        assert_eq!(r.assignment, Some(vec![(Uuid::from_u128(1), vec![0])]));
        let mut req = join("b", &[]);
        req.subscribed_topic_names = None;
        req.subscribed_topic_regex = Some("__consumer_off.*".into());
        g.heartbeat(req, &t, now, &cfg(), no_id);
        assert!(g.subscribed_topics().contains("__consumer_offsets"));
        assert!(!g.subscribed_topics().contains("orders-v2"));
    }

    #[test]
    fn request_validation() {
        let t = topics(&[("t", 1, 1)]);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        let invalid = ResponseError::InvalidRequest.code();
        let mut cases: Vec<(HeartbeatRequest, i16, &str)> = Vec::new();
        cases.push((beat("", 1, &[]), invalid, "MemberId can't be empty."));
        let mut r = join("a", &["t"]);
        r.instance_id = Some(" ".into());
        cases.push((r, invalid, "InstanceId can't be empty."));
        let mut r = join("a", &["t"]);
        r.rack_id = Some(String::new());
        cases.push((r, invalid, "RackId can't be empty."));
        let mut r = join("a", &["t"]);
        r.rebalance_timeout_ms = -1;
        cases.push((
            r,
            invalid,
            "RebalanceTimeoutMs must be provided in first request.",
        ));
        let mut r = join("a", &["t"]);
        r.owned_partitions = None;
        cases.push((
            r,
            invalid,
            "TopicPartitions must be empty when (re-)joining.",
        ));
        let mut r = join("a", &["t"]);
        r.owned_partitions = Some(vec![(Uuid::from_u128(1), vec![0])]);
        cases.push((
            r,
            invalid,
            "TopicPartitions must be empty when (re-)joining.",
        ));
        let mut r = join("a", &["t"]);
        r.subscribed_topic_names = None;
        cases.push((
            r,
            invalid,
            "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
        ));
        cases.push((beat("a", -2, &[]), invalid, "InstanceId can't be null."));
        cases.push((beat("a", -3, &[]), invalid, "MemberEpoch is invalid."));
        let mut r = join("a", &["t"]);
        r.server_assignor = Some("sticky".into());
        cases.push((
            r,
            ResponseError::UnsupportedAssignor.code(),
            "ServerAssignor sticky is not supported. Supported assignors: uniform, range.",
        ));
        for (req, code, message) in cases {
            let r = g.heartbeat(req.clone(), &t, now, &cfg(), no_id);
            assert_eq!(
                (r.error_code, r.error_message.as_deref()),
                (code, Some(message)),
                "{req:?}"
            );
            assert_eq!(r.member_id, None);
        }
        assert!(g.is_empty(), "invalid requests change nothing");
        assert_eq!(g.group_epoch(), 0);

        // A joiner may subscribe to nothing.
        let r = g.heartbeat(join("a", &[]), &t, now, &cfg(), no_id);
        assert_eq!((r.error_code, r.member_epoch), (0, 0));
        assert_eq!(r.assignment, Some(vec![]));
    }

    #[test]
    fn group_max_size() {
        let t = topics(&[("t", 1, 3)]);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        let small = ConsumerGroupConfig {
            max_size: 1,
            ..cfg()
        };
        let r = g.heartbeat(join("a", &["t"]), &t, now, &small, no_id);
        assert_eq!(r.error_code, 0);
        let r = g.heartbeat(join("b", &["t"]), &t, now, &small, no_id);
        assert_eq!(r.error_code, ResponseError::GroupMaxSizeReached.code());
        assert_eq!(
            r.error_message.as_deref(),
            Some("The consumer group has reached its maximum capacity of 1 members.")
        );
        // The existing member is unaffected.
        let r = g.heartbeat(beat("a", 1, &[]), &t, now, &small, no_id);
        assert_eq!(r.error_code, 0);
    }

    #[test]
    fn server_assignor_choice() {
        let t = topics(&[("t0", 1, 3), ("t1", 2, 3)]);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        for id in ["M0", "M1"] {
            let mut req = join(id, &["t0", "t1"]);
            req.server_assignor = Some("range".into());
            g.heartbeat(req, &t, now, &cfg(), no_id);
        }
        assert_eq!(g.preferred_assignor(&cfg()), "range");
        let m0 = g.member("M0").expect("M0");
        assert_eq!(m0.target[&Uuid::from_u128(1)], vec![0, 1]);
        assert_eq!(m0.target[&Uuid::from_u128(2)], vec![0, 1]);
        assert_eq!(m0.assignor.as_deref(), Some("range"));
    }

    #[test]
    fn offset_commit_validation() {
        let t = topics(&[("t", 1, 1)]);
        let mut g = ConsumerGroup::new("g");
        let now = Instant::now();
        // Empty group: admin/standalone commits are fine.
        assert_eq!(g.validate_offset_commit("", -1), Ok(()));
        g.heartbeat(join("a", &["t"]), &t, now, &cfg(), no_id);
        assert_eq!(g.validate_offset_commit("a", 1), Ok(()));
        assert_eq!(
            g.validate_offset_commit("a", 0),
            Err(ResponseError::StaleMemberEpoch.code())
        );
        assert_eq!(
            g.validate_offset_commit("a", 2),
            Err(ResponseError::StaleMemberEpoch.code())
        );
        assert_eq!(
            g.validate_offset_commit("zz", 1),
            Err(ResponseError::UnknownMemberId.code())
        );
        // Not empty any more: an admin commit is refused.
        assert_eq!(
            g.validate_offset_commit("", -1),
            Err(ResponseError::UnknownMemberId.code())
        );
        assert_eq!(g.validate_offset_fetch(None, -1), Ok(()));
        assert_eq!(g.validate_offset_fetch(Some("a"), 1), Ok(()));
        assert_eq!(
            g.validate_offset_fetch(Some("a"), 7),
            Err(ResponseError::StaleMemberEpoch.code())
        );
        assert_eq!(
            g.validate_offset_fetch(Some("x"), 1),
            Err(ResponseError::UnknownMemberId.code())
        );
    }

    #[test]
    fn dead_group() {
        let t = topics(&[("t", 1, 1)]);
        let mut g = ConsumerGroup::new("g");
        g.mark_dead();
        assert_eq!(g.state_name(), "Dead");
        let r = g.heartbeat(join("a", &["t"]), &t, Instant::now(), &cfg(), no_id);
        assert_eq!(r.error_code, ResponseError::GroupIdNotFound.code());
    }
}
