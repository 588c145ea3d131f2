//! AlterPartitionReassignments on the active controller, and the step that
//! completes reassignments once their new replicas are in sync (run after
//! every ISR change and on the controller's timer).

use kafka_protocol::error::ResponseError;
use tracing::info;

use super::{reassign, Controller};
use crate::error::ApiError;
use crate::metadata::MetadataRecord;

/// One partition's answer.
pub type ReassignResult = (String, i32, Result<(), ApiError>);

impl Controller {
    /// Starts (`Some(target)`) or cancels (`None`) reassignments.
    pub async fn alter_reassignments(
        &self,
        changes: Vec<(String, i32, Option<Vec<i32>>)>,
    ) -> Vec<ReassignResult> {
        let _g = self.lock.lock().await;
        let image = self.quorum.image();
        let registered = |b: i32| image.brokers.contains_key(&b);
        let usable = |b: i32| image.broker_usable(b);
        let mut out = Vec::with_capacity(changes.len());
        let mut records: Vec<(usize, MetadataRecord)> = Vec::new();
        for (topic, index, target) in changes {
            let found = image.topics.get(&topic).and_then(|t| {
                let p = usize::try_from(index)
                    .ok()
                    .and_then(|i| t.partitions.get(i))?;
                Some((t.topic_id, p))
            });
            let Some((topic_id, p)) = found else {
                out.push((
                    topic,
                    index,
                    Err(ApiError::code(ResponseError::UnknownTopicOrPartition)),
                ));
                continue;
            };
            let planned = match &target {
                Some(t) => reassign::start(p, t, registered, usable),
                None => reassign::cancel(p, usable),
            };
            match planned {
                Ok(state) => {
                    info!(topic, partition = index, target = ?target, replicas = ?state.replicas, "reassignment");
                    records.push((out.len(), state.record(topic_id, index)));
                    out.push((topic, index, Ok(())));
                }
                Err(e) => out.push((topic, index, Err(e))),
            }
        }
        self.commit_planned(records, &mut out, |r, e| r.2 = Err(e))
            .await;
        if let Err(e) = self.reconcile_partitions().await {
            tracing::warn!(error = %e, "leader election after reassignment failed");
        }
        out
    }

    /// Completes every reassignment whose added replicas are all in the
    /// ISR. Call with the controller lock held.
    pub(crate) async fn complete_reassignments(&self) -> Result<(), ApiError> {
        let image = self.quorum.image();
        let usable = |b: i32| image.broker_usable(b);
        let mut records = Vec::new();
        for t in image.topics.values() {
            for (i, p) in t.partitions.iter().enumerate() {
                if let Some(done) = reassign::complete(p, usable) {
                    info!(topic = %t.name, partition = i, replicas = ?done.replicas, "reassignment complete");
                    records.push(done.record(t.topic_id, i as i32));
                }
            }
        }
        self.commit_chunked(records).await?;
        Ok(())
    }
}
