//! Reading the consumer protocol's subscription metadata (the bytes a
//! classic `consumer` member sends in JoinGroup).

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

/// The topics a subscription names, or `None` if it does not parse.
pub fn topics(metadata: &Bytes) -> Option<Vec<String>> {
    let mut b = metadata.clone();
    if b.remaining() < 2 {
        return None;
    }
    let version = b.get_i16();
    // Newer versions than we know are decoded as the newest we know, as Kafka does.
    let v = version.clamp(0, 3);
    let s = ConsumerProtocolSubscription::decode(&mut b, v).ok()?;
    Some(s.topics.into_iter().map(|t| t.to_string()).collect())
}
