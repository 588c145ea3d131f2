//! Leader elections an operator asks for (ElectLeaders, as
//! `kafka-leader-election` sends) and the automatic rebalance of
//! leadership to preferred replicas (`auto.leader.rebalance.enable`).

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};
use tracing::info;

use super::{elections, Controller};
use crate::error::ApiError;
use crate::metadata::MetadataRecord;

/// Which election ElectLeaders asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionType {
    /// The preferred replica leads (type 0).
    Preferred,
    /// Any live replica may lead a leaderless partition (type 1).
    Unclean,
}

/// One partition's election outcome.
pub type ElectionResult = (String, i32, Result<(), ApiError>);

impl Controller {
    /// ElectLeaders: `partitions` `None` means every partition (then, as in
    /// Kafka, partitions that need no election are left out of the answer).
    pub async fn elect_leaders(
        &self,
        kind: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Vec<ElectionResult> {
        let _g = self.lock.lock().await;
        let image = self.quorum.image();
        let all = partitions.is_none();
        let wanted: Vec<(String, i32)> = partitions.unwrap_or_else(|| {
            image
                .topics
                .values()
                .flat_map(|t| (0..t.partitions.len() as i32).map(|p| (t.name.clone(), p)))
                .collect()
        });
        let usable = |b: i32| image.broker_usable(b);
        let mut out = Vec::new();
        let mut records: Vec<(usize, MetadataRecord)> = Vec::new();
        for (topic, index) in wanted {
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
            let decided = match kind {
                ElectionType::Preferred => {
                    elections::preferred(p, usable).map(|l| (l, p.isr.clone()))
                }
                ElectionType::Unclean => elections::unclean(p, usable),
            };
            match decided {
                Ok((leader, isr)) => {
                    records.push((
                        out.len(),
                        elections::change(topic_id, index, p, leader, isr),
                    ));
                    out.push((topic, index, Ok(())));
                }
                Err(ResponseError::ElectionNotNeeded) if all => {}
                Err(code) => out.push((topic, index, Err(ApiError::code(code)))),
            }
        }
        if !records.is_empty() {
            info!(kind = ?kind, elections = records.len(), "electing leaders");
        }
        self.commit_planned(records, &mut out, |r, e| r.2 = Err(e))
            .await;
        out
    }

    /// The automatic leader rebalance: every partition whose preferred
    /// replica is live and in the ISR but does not lead gets it back as
    /// leader. Call with the controller lock held.
    pub(crate) async fn balance_leaders(&self) -> Result<usize, ApiError> {
        let image = self.quorum.image();
        let usable = |b: i32| image.broker_usable(b);
        let mut records = Vec::new();
        for t in image.topics.values() {
            for (i, p) in t.partitions.iter().enumerate() {
                if let Ok(leader) = elections::preferred(p, usable) {
                    records.push(elections::change(
                        t.topic_id,
                        i as i32,
                        p,
                        leader,
                        p.isr.clone(),
                    ));
                }
            }
        }
        let n = records.len();
        if n > 0 {
            info!(
                partitions = n,
                "moving leadership back to preferred replicas"
            );
        }
        self.commit_chunked(records).await?;
        Ok(n)
    }
}
