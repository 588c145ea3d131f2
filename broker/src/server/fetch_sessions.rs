//! Incremental fetch sessions (KIP-227), as Kafka's `FetchSession.scala`.
//!
//! A fetcher that sends epoch 0 asks for a session: the broker answers the
//! full fetch and, when a slot is free, a session id. Its next requests
//! (epochs 1, 2, ...) list only the partitions whose fetch position changed
//! and the partitions to forget; the broker keeps the rest in the session
//! and answers only the partitions with something new (records, a changed
//! high watermark or log start offset, an error, a diverging epoch). Epoch
//! -1 fetches without a session (and closes the one named).
//!
//! Sessions live in this broker's memory only (as in Kafka): a restarted or
//! other broker answers FETCH_SESSION_ID_NOT_FOUND and the client starts a
//! new one. At most `max.incremental.fetch.session.cache.slots` sessions
//! exist; a new one may take the slot of the least recently used session
//! idle for two minutes (Kafka's `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`),
//! else it is not
//! created (the fetch is answered without a session id, as Kafka does when
//! its cache is full).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use uuid::Uuid;

/// A partition of a session: the topic's name as the client sent it (empty
/// from v13 on), its id (nil before v13), and the partition index.
pub type PartitionKey = (String, Uuid, i32);

/// What a session remembers of one partition: the client's fetch state and
/// what the last response told it.
#[derive(Debug, Clone)]
pub struct SessionPartition {
    /// The topic as the client names it in requests and responses.
    pub topic: TopicName,
    /// The topic id (nil before v13).
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
    /// The offset to fetch from.
    pub fetch_offset: i64,
    /// `partition_max_bytes`.
    pub max_bytes: i32,
    /// The client's current leader epoch (-1: unchecked).
    pub current_leader_epoch: i32,
    /// The epoch of the last fetched batch (followers).
    pub last_fetched_epoch: i32,
    /// The high watermark last sent (-1: none yet, or an error was sent).
    high_watermark: i64,
    /// The log start offset last sent.
    log_start_offset: i64,
}

/// Kafka's INITIAL_EPOCH: a full fetch that asks for a new session.
const INITIAL_EPOCH: i32 = 0;
/// Kafka's FINAL_EPOCH: a full fetch without a session.
const FINAL_EPOCH: i32 = -1;

struct Session {
    /// The epoch the next request must carry.
    epoch: i32,
    partitions: BTreeMap<PartitionKey, SessionPartition>,
    last_used: Instant,
}

/// How one Fetch request uses sessions.
#[derive(Debug)]
pub enum FetchContext {
    /// Epoch -1: no session; the response has session id 0.
    Sessionless,
    /// Epoch 0: a full fetch that creates a session when a slot is free.
    Full,
    /// Epoch > 0: an incremental fetch in session `id`.
    Incremental {
        /// The session.
        id: i32,
    },
}

/// How long a session must be idle before a new one may take its slot
/// (Kafka's `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`).
pub const EVICTION: Duration = Duration::from_secs(120);

/// The broker's fetch sessions.
pub struct FetchSessions {
    slots: usize,
    eviction: Duration,
    sessions: Mutex<HashMap<i32, Session>>,
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

fn key(topic: &TopicName, topic_id: Uuid, partition: i32) -> PartitionKey {
    (topic.0.to_string(), topic_id, partition)
}

impl FetchSessions {
    /// A cache of at most `slots` sessions (0: none are created); a session
    /// idle for `eviction` may give its slot to a new one.
    pub fn new(slots: usize, eviction: Duration) -> Self {
        Self {
            slots,
            eviction,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many sessions exist.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the request's session fields: closes a session a full fetch
    /// names, or checks and advances an incremental one and applies the
    /// request's partition changes and forgotten partitions to it. With the
    /// context come the partitions to fetch: the request's (a full fetch), or
    /// every partition of the session (incremental).
    pub fn begin(
        &self,
        req: &FetchRequest,
    ) -> Result<(FetchContext, Vec<SessionPartition>), ResponseError> {
        let (id, epoch) = (req.session_id, req.session_epoch);
        let requested = || {
            req.topics.iter().flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| SessionPartition::from_request(&t.topic, t.topic_id, p))
            })
        };
        if epoch == INITIAL_EPOCH || epoch == FINAL_EPOCH {
            if id != 0 {
                // A full fetch closes the session it names (Kafka's
                // FetchManager.newContext): a client resetting its session.
                self.lock().remove(&id);
            }
            let ctx = if epoch == INITIAL_EPOCH && self.slots > 0 {
                FetchContext::Full
            } else {
                FetchContext::Sessionless
            };
            return Ok((ctx, requested().collect()));
        }
        if epoch < FINAL_EPOCH {
            return Err(ResponseError::InvalidFetchSessionEpoch);
        }
        let mut sessions = self.lock();
        let Some(s) = sessions.get_mut(&id) else {
            return Err(ResponseError::FetchSessionIdNotFound);
        };
        if s.epoch != epoch {
            return Err(ResponseError::InvalidFetchSessionEpoch);
        }
        s.epoch = next_epoch(s.epoch);
        s.last_used = Instant::now();
        // A partition the request names takes the request's fetch state and
        // keeps what the session last told the client of it.
        for mut p in requested() {
            let k = key(&p.topic, p.topic_id, p.partition);
            if let Some(old) = s.partitions.get(&k) {
                p.high_watermark = old.high_watermark;
                p.log_start_offset = old.log_start_offset;
            }
            s.partitions.insert(k, p);
        }
        for f in &req.forgotten_topics_data {
            for p in &f.partitions {
                s.partitions.remove(&key(&f.topic, f.topic_id, *p));
            }
        }
        Ok((
            FetchContext::Incremental { id },
            s.partitions.values().cloned().collect(),
        ))
    }

    /// Sets the response's session id and, for an incremental fetch, keeps
    /// only the partitions with news for the client, remembering what was
    /// sent. A full fetch with epoch 0 creates its session here, from the
    /// partitions [`FetchSessions::begin`] gave and this response.
    pub fn finish(
        &self,
        ctx: &FetchContext,
        req_partitions: &[SessionPartition],
        resp: &mut FetchResponse,
    ) {
        match ctx {
            FetchContext::Sessionless => resp.session_id = 0,
            FetchContext::Full => {
                let mut partitions: BTreeMap<PartitionKey, SessionPartition> = req_partitions
                    .iter()
                    .map(|p| (key(&p.topic, p.topic_id, p.partition), p.clone()))
                    .collect();
                for t in &resp.responses {
                    for pd in &t.partitions {
                        if let Some(p) =
                            partitions.get_mut(&key(&t.topic, t.topic_id, pd.partition_index))
                        {
                            must_respond(p, pd);
                        }
                    }
                }
                resp.session_id = self.create(partitions);
            }
            FetchContext::Incremental { id } => {
                resp.session_id = *id;
                let mut sessions = self.lock();
                // Evicted meanwhile: answer in full; the next request gets
                // FETCH_SESSION_ID_NOT_FOUND and the client starts again.
                let Some(s) = sessions.get_mut(id) else {
                    return;
                };
                for t in &mut resp.responses {
                    let (topic, topic_id) = (t.topic.clone(), t.topic_id);
                    t.partitions.retain(|pd| {
                        match s
                            .partitions
                            .get_mut(&key(&topic, topic_id, pd.partition_index))
                        {
                            Some(p) => must_respond(p, pd),
                            None => true,
                        }
                    });
                }
                resp.responses.retain(|t| !t.partitions.is_empty());
            }
        }
    }

    /// A new session's id, or 0 when no slot is free.
    fn create(&self, partitions: BTreeMap<PartitionKey, SessionPartition>) -> i32 {
        let mut sessions = self.lock();
        let now = Instant::now();
        if sessions.len() >= self.slots {
            let idle = sessions
                .iter()
                .filter(|(_, s)| now.duration_since(s.last_used) >= self.eviction)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id);
            match idle {
                Some(id) => {
                    sessions.remove(&id);
                }
                None => return 0,
            }
        }
        let id = loop {
            let id = rand::random::<i32>() & i32::MAX;
            if id != 0 && !sessions.contains_key(&id) {
                break id;
            }
        };
        sessions.insert(
            id,
            Session {
                epoch: 1,
                partitions,
                last_used: now,
            },
        );
        id
    }
}

/// Kafka's `CachedPartition.maybeUpdateResponseData`: whether an
/// incremental response must carry this partition, remembering what it
/// tells the client.
fn must_respond(p: &mut SessionPartition, pd: &PartitionData) -> bool {
    let mut must = pd.records.as_ref().is_some_and(|r| !r.is_empty());
    if p.high_watermark != pd.high_watermark {
        must = true;
        p.high_watermark = pd.high_watermark;
    }
    if p.log_start_offset != pd.log_start_offset {
        must = true;
        p.log_start_offset = pd.log_start_offset;
    }
    if pd.error_code != 0 {
        // Sent again once the error goes away.
        p.high_watermark = -1;
        must = true;
    }
    if pd.diverging_epoch.epoch >= 0 {
        must = true;
    }
    must
}

impl SessionPartition {
    /// A partition as a full fetch request lists it.
    pub fn from_request(
        topic: &TopicName,
        topic_id: Uuid,
        p: &kafka_protocol::messages::fetch_request::FetchPartition,
    ) -> Self {
        Self {
            topic: topic.clone(),
            topic_id,
            partition: p.partition,
            fetch_offset: p.fetch_offset,
            max_bytes: p.partition_max_bytes,
            current_leader_epoch: p.current_leader_epoch,
            last_fetched_epoch: p.last_fetched_epoch,
            high_watermark: -1,
            log_start_offset: -1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
    use kafka_protocol::messages::fetch_response::FetchableTopicResponse;

    fn req(id: i32, epoch: i32, parts: &[(i32, i64)], forget: &[i32]) -> FetchRequest {
        let t = TopicName(kafka_protocol::protocol::StrBytes::from_static_str("t"));
        FetchRequest::default()
            .with_session_id(id)
            .with_session_epoch(epoch)
            .with_topics(vec![FetchTopic::default()
                .with_topic(t.clone())
                .with_partitions(
                    parts
                        .iter()
                        .map(|&(p, o)| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(o)
                        })
                        .collect(),
                )])
            .with_forgotten_topics_data(if forget.is_empty() {
                vec![]
            } else {
                vec![ForgottenTopic::default()
                    .with_topic(t)
                    .with_partitions(forget.to_vec())]
            })
    }

    fn resp(parts: &[(i32, i64, usize)]) -> FetchResponse {
        let t = TopicName(kafka_protocol::protocol::StrBytes::from_static_str("t"));
        FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(t)
            .with_partitions(
                parts
                    .iter()
                    .map(|&(p, hw, n)| {
                        PartitionData::default()
                            .with_partition_index(p)
                            .with_high_watermark(hw)
                            .with_log_start_offset(0)
                            .with_records(Some(bytes::Bytes::from(vec![0u8; n])))
                    })
                    .collect(),
            )])
    }

    fn listed(r: &FetchResponse) -> Vec<i32> {
        r.responses
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
            .collect()
    }

    fn full(cache: &FetchSessions, parts: &[(i32, i64)], r: &mut FetchResponse) -> i32 {
        let (ctx, ps) = cache.begin(&req(0, 0, parts, &[])).expect("full");
        cache.finish(&ctx, &ps, r);
        r.session_id
    }

    #[test]
    fn an_incremental_fetch_answers_only_what_changed() {
        let cache = FetchSessions::new(10, Duration::from_secs(120));
        let mut r = resp(&[(0, 5, 10), (1, 0, 0)]);
        let id = full(&cache, &[(0, 0), (1, 0)], &mut r);
        assert!(id > 0);
        assert_eq!(listed(&r), vec![0, 1], "a full response lists everything");

        // epoch 1: partition 0 moved on; nothing new anywhere
        let (ctx, partitions) = cache
            .begin(&req(id, 1, &[(0, 5)], &[]))
            .expect("incremental");
        assert!(matches!(ctx, FetchContext::Incremental { id: i } if i == id));
        assert_eq!(
            partitions
                .iter()
                .map(|p| (p.partition, p.fetch_offset))
                .collect::<Vec<_>>(),
            vec![(0, 5), (1, 0)]
        );
        let mut r = resp(&[(0, 5, 0), (1, 0, 0)]);
        cache.finish(&ctx, &[], &mut r);
        assert_eq!((r.session_id, listed(&r)), (id, vec![]));

        // epoch 2: partition 1's high watermark moved
        let (ctx, _) = cache.begin(&req(id, 2, &[], &[])).expect("incremental");
        let mut r = resp(&[(0, 5, 0), (1, 3, 0)]);
        cache.finish(&ctx, &[], &mut r);
        assert_eq!(listed(&r), vec![1]);

        // a stale epoch, an unknown session
        assert_eq!(
            cache.begin(&req(id, 2, &[], &[])).err(),
            Some(ResponseError::InvalidFetchSessionEpoch)
        );
        assert_eq!(
            cache.begin(&req(id + 1, 1, &[], &[])).err(),
            Some(ResponseError::FetchSessionIdNotFound)
        );

        // forgetting partition 0
        let (_, partitions) = cache.begin(&req(id, 3, &[], &[0])).expect("incremental");
        assert_eq!(
            partitions.iter().map(|p| p.partition).collect::<Vec<_>>(),
            vec![1]
        );

        // epoch -1 closes it
        cache.begin(&req(id, -1, &[], &[])).expect("close");
        assert!(cache.is_empty());
    }

    #[test]
    fn errors_are_always_sent_and_sent_again_when_they_clear() {
        let cache = FetchSessions::new(10, Duration::from_secs(120));
        let mut r = resp(&[(0, 5, 0)]);
        let id = full(&cache, &[(0, 5)], &mut r);
        let (ctx, _) = cache.begin(&req(id, 1, &[], &[])).expect("incremental");
        let mut r = resp(&[(0, 5, 0)]);
        r.responses[0].partitions[0].error_code = 6;
        cache.finish(&ctx, &[], &mut r);
        assert_eq!(listed(&r), vec![0]);
        let (ctx, _) = cache.begin(&req(id, 2, &[], &[])).expect("incremental");
        let mut r = resp(&[(0, 5, 0)]);
        cache.finish(&ctx, &[], &mut r);
        assert_eq!(
            listed(&r),
            vec![0],
            "the partition is sent again after its error"
        );
    }

    #[test]
    fn a_full_cache_creates_no_session_until_one_is_idle_long_enough() {
        let cache = FetchSessions::new(1, Duration::from_millis(50));
        assert!(full(&cache, &[(0, 0)], &mut resp(&[(0, 0, 0)])) > 0);
        assert_eq!(
            full(&cache, &[(0, 0)], &mut resp(&[(0, 0, 0)])),
            0,
            "no slot free"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            full(&cache, &[(0, 0)], &mut resp(&[(0, 0, 0)])) > 0,
            "the idle one gave way"
        );
        assert_eq!(cache.len(), 1);
        let none = FetchSessions::new(0, Duration::from_secs(1));
        assert!(matches!(
            none.begin(&req(0, 0, &[], &[])),
            Ok((FetchContext::Sessionless, _))
        ));
    }
}
