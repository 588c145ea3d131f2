//! Produce: validate and append record batches; acks 0, 1 and all.
//!
//! acks=all is refused with NOT_ENOUGH_REPLICAS when the ISR is smaller
//! than `min.insync.replicas`, and otherwise answered once the high
//! watermark covers the append (every ISR member holds it), within the
//! request's timeout, while this broker still leads in the same epoch.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse, ResponseKind};

use super::leader_hint::LeaderHints;

use super::{sb, topic_name};
use crate::body;
use crate::broker::BrokerState;
use crate::controller::NewTopic;
use crate::error::ApiError;
use crate::metadata::ClusterImage;
use crate::protocol::batch::BatchHeader;
use crate::replication::TxnVerification;
use crate::server::dispatch::{HandlerFuture, Request};
use crate::txn::verify;

/// Handles Produce.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

fn error_response(index: i32, e: &ApiError) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(e.code)
        .with_base_offset(-1)
        .with_error_message(e.message.as_deref().map(sb))
        .with_record_errors(
            e.record_errors
                .iter()
                .map(|(i, m)| {
                    BatchIndexAndErrorMessage::default()
                        .with_batch_index(*i)
                        .with_batch_index_error_message(Some(sb(m)))
                })
                .collect(),
        )
}

/// Per partition, what its append must show for KIP-890 part 1, or the
/// error it answers instead.
type Verified = HashMap<(String, i32), Result<TxnVerification, ApiError>>;

/// KIP-890 part 1 (Kafka's `ReplicaManager.handleProduceAppend`): the
/// partitions whose transactional batch does not continue its producer's
/// open transaction here are verified with the transaction coordinator,
/// all in one request; the rest need no guard. Returns the per-partition
/// outcomes and what the others use.
async fn verify_txn(
    state: &Arc<BrokerState>,
    version: i16,
    body: &ProduceRequest,
    image: &ClusterImage,
) -> (Verified, TxnVerification) {
    let mut out = Verified::new();
    if !verify::enabled(state) {
        return (out, TxnVerification::Off);
    }
    let default = TxnVerification::Guard(None);
    let Some(tid) = body
        .transactional_id
        .as_ref()
        .map(|t| t.as_str().to_string())
    else {
        return (out, default);
    };
    let mut producers: BTreeSet<(i64, i16)> = BTreeSet::new();
    let mut txn_parts: Vec<(String, i32)> = Vec::new();
    let mut guards: BTreeMap<(String, i32), u64> = BTreeMap::new();
    for t in &body.topic_data {
        let name = if version >= 13 {
            image.topic_by_id(&t.topic_id).map(|x| x.name.clone())
        } else {
            Some(t.name.0.to_string())
        };
        let Some(name) = name else { continue };
        for p in &t.partition_data {
            let Some(h) = p.records.as_ref().and_then(|r| BatchHeader::parse(r).ok()) else {
                continue;
            };
            if !h.is_transactional() || h.is_control() || h.producer_id < 0 {
                continue;
            }
            producers.insert((h.producer_id, h.producer_epoch));
            txn_parts.push((name.clone(), p.index));
            let Ok(part) = state.replicas.leader_of(image, &name, p.index) else {
                continue;
            };
            if let Some(g) = part.start_txn_verification(h.producer_id, h.producer_epoch) {
                guards.insert((name.clone(), p.index), g);
            }
        }
    }
    if producers.len() > 1 {
        let e = ApiError::new(
            ResponseError::InvalidProducerIdMapping,
            "Transactional records contained more than one producer ID",
        );
        for tp in txn_parts {
            out.insert(tp, Err(e.clone()));
        }
        return (out, default);
    }
    let Some((pid, epoch)) = producers.into_iter().next() else {
        return (out, default);
    };
    if guards.is_empty() {
        return (out, default);
    }
    let wanted: BTreeSet<(String, i32)> = guards.keys().cloned().collect();
    let codes = verify::verify_for_produce(state, &tid, pid, epoch, &wanted, version).await;
    for (tp, g) in guards {
        let code = codes.get(&tp).copied().unwrap_or(0);
        let outcome = match verify::produce_error(code, version) {
            Some(e) => {
                tracing::debug!(transactional_id = %tid, topic = %tp.0, partition = tp.1, code, "transaction verification refused a produce");
                Err(e)
            }
            // Produce v12+ added the partition: a marker of the previous
            // transaction may have dropped the guard meanwhile, so take
            // one again (its epoch bump fences that transaction's late
            // writes instead).
            None if version >= 12 => Ok(TxnVerification::Guard(
                state
                    .replicas
                    .leader_of(image, &tp.0, tp.1)
                    .ok()
                    .and_then(|part| part.start_txn_verification(pid, epoch)),
            )),
            None => Ok(TxnVerification::Guard(Some(g))),
        };
        out.insert(tp, outcome);
    }
    (out, default)
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, Produce);
    let acks = body.acks;
    let timeout_ms = body.timeout_ms;
    let mut image = state.image();
    if body.transactional_id.is_some() && !crate::txn::TRANSACTIONS_ENABLED {
        // Transactions are not served; we do not advertise their APIs.
        let e = ApiError::new(
            ResponseError::TransactionalIdAuthorizationFailed,
            "transactional produce is not supported by this broker",
        );
        return Ok(Some(ResponseKind::Produce(
            ProduceResponse::default().with_responses(
                body.topic_data
                    .iter()
                    .map(|t| {
                        TopicProduceResponse::default()
                            .with_name(t.name.clone())
                            .with_topic_id(t.topic_id)
                            .with_partition_responses(
                                t.partition_data
                                    .iter()
                                    .map(|p| error_response(p.index, &e))
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        )));
    }
    // Auto-create unknown topics (by name) when enabled.
    if version < 13 && state.config.get_bool("auto.create.topics.enable", true) {
        let missing: Vec<NewTopic> = body
            .topic_data
            .iter()
            .map(|t| t.name.0.to_string())
            .filter(|n| {
                !image.topics.contains_key(n) && crate::controller::validate_topic_name(n).is_ok()
            })
            .map(|name| NewTopic {
                name,
                num_partitions: -1,
                replication_factor: -1,
                assignments: vec![],
                configs: BTreeMap::new(),
            })
            .collect();
        if !missing.is_empty() {
            state.controller.create_topics(missing, false).await;
            state.catch_up().await;
            image = state.image();
        }
    }
    let (verified, no_guard) = verify_txn(&state, version, &body, &image).await;
    let mut responses = Vec::with_capacity(body.topic_data.len());
    let mut names = Vec::with_capacity(body.topic_data.len());
    for t in body.topic_data {
        let topic = if version >= 13 {
            image.topic_by_id(&t.topic_id).map(|x| x.name.clone())
        } else {
            Some(t.name.0.to_string())
        };
        let mut parts = Vec::with_capacity(t.partition_data.len());
        let mut waits = Vec::new();
        for p in t.partition_data {
            let result = (|| {
                if acks != 0 && acks != 1 && acks != -1 {
                    return Err(ApiError::code(ResponseError::InvalidRequiredAcks));
                }
                let Some(name) = &topic else {
                    return Err(ApiError::code(ResponseError::UnknownTopicId));
                };
                // Clients may not write internal topics (Kafka's
                // ReplicaManager: internalTopicsAllowed is false for them).
                if super::is_internal(name) && image.topics.contains_key(name) {
                    return Err(ApiError::new(
                        ResponseError::InvalidTopicException,
                        format!("Cannot append to internal topic {name}"),
                    ));
                }
                let part = state.replicas.leader_of(&image, name, p.index)?;
                let verify = match verified.get(&(name.clone(), p.index)) {
                    Some(Err(e)) => return Err(e.clone()),
                    Some(Ok(v)) => *v,
                    None => no_guard,
                };
                let Some(records) = p.records.as_ref() else {
                    return Err(ApiError::new(
                        ResponseError::InvalidRecord,
                        "the partition data carries no records",
                    ));
                };
                let mut buf = records.to_vec();
                // acks=all: refuse before appending when the ISR is below
                // min.insync.replicas, then wait for the ISR to hold it.
                let min_isr = (acks == -1).then(|| {
                    let cfg = image
                        .topics
                        .get(name)
                        .map(|t| state.replicas.log_config(&image, t));
                    cfg.map(|c| c.min_insync_replicas.max(1) as usize)
                        .unwrap_or(1)
                });
                let epoch = part.leader_epoch();
                let info = part.append_client(&mut buf, min_isr, verify)?;
                if let Some(min) = min_isr {
                    waits.push((parts.len(), part.clone(), info.last_offset + 1, epoch, min));
                }
                Ok(info)
            })();
            parts.push(match result {
                Ok(info) => PartitionProduceResponse::default()
                    .with_index(p.index)
                    .with_base_offset(info.base_offset)
                    .with_log_append_time_ms(info.log_append_time)
                    .with_log_start_offset(info.log_start_offset),
                Err(e) => {
                    tracing::debug!(topic = ?topic, partition = p.index, error = %e, "produce rejected");
                    error_response(p.index, &e)
                }
            });
        }
        // acks=all: every partition of the topic waits at once, within the
        // request's timeout.
        let timeout = std::time::Duration::from_millis(timeout_ms.max(0) as u64);
        let results = futures::future::join_all(waits.drain(..).map(
            |(i, part, offset, epoch, min)| async move {
                (i, part.wait_replicated(offset, epoch, min, timeout).await)
            },
        ))
        .await;
        for (i, r) in results {
            if let Err(e) = r {
                tracing::debug!(partition = parts[i].index, error = %e, "acks=all not satisfied");
                parts[i] = error_response(parts[i].index, &e);
            }
        }
        names.push(topic.clone());
        responses.push(
            TopicProduceResponse::default()
                .with_name(if version >= 13 {
                    Default::default()
                } else {
                    topic_name(topic.as_deref().unwrap_or(""))
                })
                .with_topic_id(t.topic_id)
                .with_partition_responses(parts),
        );
    }
    if acks == 0 {
        return Ok(None);
    }
    // KIP-951 (Produce v10+): where this broker does not lead, the leader it
    // knows now.
    let hints = (version >= 10).then(|| {
        let mut h = LeaderHints::new(state.image(), state.node_id, state.stopping_self());
        let not_leader = ResponseError::NotLeaderOrFollower.code();
        for (t, name) in responses.iter_mut().zip(&names) {
            let Some(name) = name else { continue };
            for p in t
                .partition_responses
                .iter_mut()
                .filter(|p| p.error_code == not_leader)
            {
                let (leader, epoch) = h.leader(name, p.index);
                p.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(leader))
                    .with_leader_epoch(epoch);
            }
        }
        h
    });
    let node_endpoints = hints
        .map(|h| {
            h.endpoints()
                .into_iter()
                .map(|e| {
                    NodeEndpoint::default()
                        .with_node_id(BrokerId(e.node_id))
                        .with_host(sb(&e.host))
                        .with_port(e.port)
                        .with_rack(e.rack.as_deref().map(sb))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(ResponseKind::Produce(
        ProduceResponse::default()
            .with_responses(responses)
            .with_node_endpoints(node_endpoints),
    )))
}
