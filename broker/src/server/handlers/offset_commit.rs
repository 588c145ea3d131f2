//! OffsetCommit: commits for group members, and simple (group-less)
//! commits with generation -1.

use crate::clock::now_ms;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitResponse, ResponseKind};

use crate::body;
use crate::broker::BrokerState;
use crate::group::classic::{ClassicGroup, GroupState};
use crate::group::commit::{check_classic_member, commit_entry, CommitPartition};

use crate::server::dispatch::{HandlerFuture, Request};

/// Handles OffsetCommit.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

/// Kafka's ClassicGroup.validateOffsetCommit.
fn validate(
    g: &ClassicGroup,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
) -> Result<(), i16> {
    if g.state == GroupState::Dead {
        return Err(ResponseError::CoordinatorNotAvailable.code());
    }
    if generation < 0 && g.state == GroupState::Empty {
        return Ok(());
    }
    if g.state == GroupState::CompletingRebalance {
        return Err(ResponseError::RebalanceInProgress.code());
    }
    check_classic_member(g, member_id, instance_id, generation)
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, OffsetCommit);
    let group_id = body.group_id.0.to_string();
    let respond = |code_for: &dyn Fn(i32, usize) -> i16| {
        let topics = body
            .topics
            .iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .enumerate()
                            .map(|(i, p)| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code_for(p.partition_index, i))
                            })
                            .collect(),
                    )
            })
            .collect();
        Ok(Some(ResponseKind::OffsetCommit(
            OffsetCommitResponse::default().with_topics(topics),
        )))
    };
    if let Err(code) = state.groups.check_coordinator(&state, &group_id) {
        return respond(&|_, _| code);
    }
    let write = state.groups.writer(&state, &group_id);
    let mut groups = state.groups.lock().await;
    let generation = body.generation_id_or_member_epoch;
    if let Some(cg) = groups.consumer.get(&group_id) {
        if let Err(code) = cg.validate_offset_commit(body.member_id.as_str(), generation) {
            return respond(&|_, _| code);
        }
    } else if !groups.classic.contains_key(&group_id) {
        if generation >= 0 {
            let code = if version >= 9 {
                ResponseError::GroupIdNotFound.code()
            } else {
                ResponseError::IllegalGeneration.code()
            };
            return respond(&|_, _| code);
        }
        groups
            .classic
            .insert(group_id.clone(), ClassicGroup::new(&group_id, now_ms()));
    }
    if let Some(g) = groups.classic.get(&group_id) {
        if let Err(code) = validate(
            g,
            body.member_id.as_str(),
            body.group_instance_id.as_ref().map(|s| s.as_str()),
            generation,
        ) {
            return respond(&|_, _| code);
        }
    }
    let ts = now_ms();
    let image = state.image();
    let max_meta = state.groups.config.max_metadata_bytes;
    let mut records = Vec::new();
    let mut accepted = Vec::new();
    let mut errors: Vec<Vec<i16>> = Vec::new();
    for t in &body.topics {
        let mut errs = Vec::new();
        for p in &t.partitions {
            let entry = CommitPartition {
                topic: t.name.as_str(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_deref(),
            };
            match commit_entry(&image, &group_id, &entry, ts, max_meta) {
                Ok((v, r)) => {
                    records.push(r);
                    accepted.push(((t.name.to_string(), p.partition_index), v));
                    errs.push(0);
                }
                Err(code) => errs.push(code),
            }
        }
        errors.push(errs);
    }
    let persisted = state.groups.persist(&write, &group_id, records);
    if persisted.is_ok() {
        // A transaction's pending offset of the same partition, written
        // before this commit, no longer wins when it commits.
        let p = state.groups.partition_for(&group_id);
        if let Some(pending) = groups.txn.get_mut(&p) {
            for ((t, part), _) in &accepted {
                pending.plain_commit(&(group_id.clone(), t.clone(), *part));
            }
        }
        let offsets = groups.offsets.entry(group_id.clone()).or_default();
        for (k, v) in accepted {
            offsets.insert(k, v);
        }
    }
    drop(groups);
    // Acknowledged only once the commit is replicated to the in-sync
    // replicas (timeout: COORDINATOR_NOT_AVAILABLE, as Kafka maps it). The
    // offsets stay in memory either way: they are in the leader's log, which
    // this leadership never truncates; a new leadership reloads from the log.
    let persisted = match persisted {
        Ok(()) => write.replicated().await,
        e => e,
    };
    let flat: Vec<i16> = errors.into_iter().flatten().collect();
    let mut idx = 0usize;
    let topics = body
        .topics
        .iter()
        .map(|t| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let mut code = flat.get(idx).copied().unwrap_or(0);
                            idx += 1;
                            if code == 0 {
                                if let Err(c) = persisted {
                                    code = c;
                                }
                            }
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    Ok(Some(ResponseKind::OffsetCommit(
        OffsetCommitResponse::default().with_topics(topics),
    )))
}
