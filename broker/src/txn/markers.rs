//! Writing transaction markers (issue 14): on a partition leader
//! ([`write_local`], what WriteTxnMarkers does on the broker it reaches) and
//! from the coordinator to every partition of a transaction, wherever it is
//! led ([`send_markers`], Kafka's `TransactionMarkerChannelManager`): the
//! partitions are grouped by leader broker, this broker's own are written
//! directly, the others go in one WriteTxnMarkers request per broker, and
//! what failed is retried against the leader of the moment until every
//! partition has its marker, or the coordinator lost the transaction.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    ApiKey, ProducerId, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;
use tracing::{debug, warn};

use super::marker::EndTxnMarker;
use super::marker_plan::{marker_outcome, plan_markers, LeaderLookup, MarkerOutcome};
use super::state::TxnPartition;
use crate::broker::BrokerState;

/// The WriteTxnMarkers version brokers send each other.
const VERSION: i16 = 1;
/// Wait between two rounds of a transaction's markers.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// One transaction's markers.
#[derive(Debug, Clone)]
pub struct MarkerJob {
    /// The producer.
    pub producer_id: i64,
    /// Its epoch as the coordinator knows it.
    pub producer_epoch: i16,
    /// Commit or abort.
    pub commit: bool,
    /// The coordinator epoch writing them.
    pub coordinator_epoch: i32,
}

/// Writes `job`'s marker to each of `partitions` this broker leads and waits
/// until their in-sync replicas hold it (acks=all, as Kafka's
/// `handleWriteTxnMarkersRequest`); the error code of each.
pub async fn write_local(
    state: &BrokerState,
    job: &MarkerJob,
    partitions: &[TxnPartition],
) -> Vec<(TxnPartition, i16)> {
    let image = state.image();
    let timeout = Duration::from_millis(
        state
            .config
            .get_i64("request.timeout.ms", 30_000)
            .clamp(1, 3_600_000) as u64,
    );
    let marker = EndTxnMarker {
        commit: job.commit,
        coordinator_epoch: job.coordinator_epoch,
    };
    let writes = partitions.iter().map(|tp| {
        let image = image.clone();
        async move {
            if tp.0 == crate::group::OFFSETS_TOPIC {
                // The group coordinator appends it and applies it to the
                // producer's pending offsets (Kafka's completeTransaction).
                let code = state
                    .groups
                    .complete_txn(
                        state,
                        tp.1,
                        job.producer_id,
                        job.producer_epoch,
                        marker,
                        timeout,
                    )
                    .await;
                return (tp.clone(), code);
            }
            let part = match state.replicas.leader_of(&image, &tp.0, tp.1) {
                Ok(p) => p,
                Err(e) => return (tp.clone(), e.code),
            };
            let epoch = part.leader_epoch();
            let info = match part.append_marker(job.producer_id, job.producer_epoch, marker) {
                Ok(i) => i,
                Err(e) => {
                    debug!(partition = %part.tp, error = %e, "transaction marker refused");
                    return (tp.clone(), e.code);
                }
            };
            let code = match part
                .wait_replicated(info.last_offset + 1, epoch, 0, timeout)
                .await
            {
                Ok(()) => 0,
                Err(e) => e.code,
            };
            (tp.clone(), code)
        }
    });
    futures::future::join_all(writes).await
}

/// Sends `job`'s markers for `partitions` to broker `broker` in one
/// WriteTxnMarkers request; the error code of each partition.
async fn write_remote(
    state: &BrokerState,
    broker: i32,
    job: &MarkerJob,
    partitions: &[TxnPartition],
) -> Result<Vec<(TxnPartition, i16)>, String> {
    let addr = crate::replication::fetcher::leader_address(state, broker)
        .ok_or_else(|| format!("broker {broker} has no known address"))?;
    let mut topics: Vec<WritableTxnMarkerTopic> = Vec::new();
    for (t, p) in partitions {
        match topics.last_mut() {
            Some(last) if last.name.as_str() == t.as_str() => last.partition_indexes.push(*p),
            _ => topics.push(
                WritableTxnMarkerTopic::default()
                    .with_name(TopicName(StrBytes::from_string(t.clone())))
                    .with_partition_indexes(vec![*p]),
            ),
        }
    }
    let req = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(ProducerId(job.producer_id))
        .with_producer_epoch(job.producer_epoch)
        .with_transaction_result(job.commit)
        .with_coordinator_epoch(job.coordinator_epoch)
        .with_topics(topics)]);
    let resp = tokio::time::timeout(Duration::from_secs(35), call(&addr, &req))
        .await
        .map_err(|_| format!("WriteTxnMarkers to broker {broker} timed out"))??;
    let mut out = Vec::new();
    for m in resp.markers {
        for t in m.topics {
            for p in t.partitions {
                out.push((
                    (t.name.as_str().to_string(), p.partition_index),
                    p.error_code,
                ));
            }
        }
    }
    Ok(out)
}

/// One WriteTxnMarkers round trip on a fresh connection.
async fn call(addr: &str, req: &WriteTxnMarkersRequest) -> Result<WriteTxnMarkersResponse, String> {
    super::rpc::call(
        addr,
        ApiKey::WriteTxnMarkers,
        VERSION,
        "runnel-txn-markers",
        req,
    )
    .await
}

/// Why a transaction's markers stopped before all were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkersStopped {
    /// The coordinator no longer owns the transaction (`still_owned`
    /// said so, or a partition answered a fenced epoch): a newer one
    /// finishes it.
    Abandoned,
}

/// Writes `job`'s marker to every partition of `partitions`, retrying what
/// fails against the leader of the moment, while `still_owned` holds.
/// Partitions that no longer exist need none.
pub async fn send_markers(
    state: &Arc<BrokerState>,
    job: &MarkerJob,
    partitions: &BTreeSet<TxnPartition>,
    still_owned: impl Fn() -> bool,
) -> Result<(), MarkersStopped> {
    let mut left = partitions.clone();
    let mut round = 0u32;
    while !left.is_empty() {
        if !still_owned() || *state.shutdown.borrow() {
            return Err(MarkersStopped::Abandoned);
        }
        if round > 0 {
            tokio::time::sleep(RETRY_BACKOFF.min(Duration::from_millis(10) * round)).await;
        }
        round = round.saturating_add(1);
        let image = state.image();
        let plan = plan_markers(&left, |t, p| match image.topics.get(t) {
            None => LeaderLookup::NoSuchPartition,
            Some(ti) => match ti.partitions.get(p as usize) {
                None => LeaderLookup::NoSuchPartition,
                Some(pi) if pi.leader < 0 => LeaderLookup::NoLeader,
                Some(pi) => LeaderLookup::Leader(pi.leader),
            },
        });
        for tp in &plan.gone {
            left.remove(tp);
        }
        let sends = plan.by_broker.iter().map(|(broker, parts)| async move {
            if *broker == state.node_id {
                write_local(state, job, parts).await
            } else {
                match write_remote(state, *broker, job, parts).await {
                    Ok(r) => r,
                    Err(e) => {
                        warn!(broker, error = %e, "WriteTxnMarkers failed; retrying");
                        parts
                            .iter()
                            .map(|tp| (tp.clone(), ResponseError::RequestTimedOut.code()))
                            .collect()
                    }
                }
            }
        });
        for results in futures::future::join_all(sends).await {
            for (tp, code) in results {
                let outcome = match code {
                    0 => marker_outcome(None),
                    c => ResponseError::try_from_code(c)
                        .map_or(MarkerOutcome::Unexpected, |e| marker_outcome(Some(e))),
                };
                match outcome {
                    MarkerOutcome::Done => {
                        left.remove(&tp);
                    }
                    MarkerOutcome::Retry => {}
                    MarkerOutcome::Abandon => {
                        warn!(topic = %tp.0, partition = tp.1, code, "transaction marker fenced; abandoning");
                        return Err(MarkersStopped::Abandoned);
                    }
                    MarkerOutcome::Unexpected => {
                        warn!(topic = %tp.0, partition = tp.1, code, "unexpected transaction marker error; retrying");
                    }
                }
            }
        }
    }
    Ok(())
}
