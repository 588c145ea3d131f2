//! The API versions a broker advertised, and version negotiation.

use std::collections::HashMap;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

use crate::error::AdminError;

/// The `(min, max)` version of every API key a broker advertised in ApiVersions.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ApiVersionTable {
    ranges: HashMap<i16, VersionRange>,
}

impl ApiVersionTable {
    /// Builds the table from ApiVersions entries `(api_key, min, max)`.
    pub(crate) fn new(entries: impl IntoIterator<Item = (i16, i16, i16)>) -> Self {
        ApiVersionTable {
            ranges: entries
                .into_iter()
                .map(|(key, min, max)| (key, VersionRange { min, max }))
                .collect(),
        }
    }

    /// The broker's range for `api`, if it advertised the API.
    pub(crate) fn broker_range(&self, api: ApiKey) -> Option<VersionRange> {
        self.ranges.get(&(api as i16)).copied()
    }

    /// The highest version of `api` that both the broker and this library
    /// (kafka-protocol) support, and that is at least `min_needed`.
    pub(crate) fn pick(&self, api: ApiKey, min_needed: i16) -> Result<i16, AdminError> {
        let broker = self
            .broker_range(api)
            .ok_or_else(|| AdminError::Protocol(format!("the broker does not support {api:?}")))?;
        let mut ours = api.valid_versions();
        ours.min = ours.min.max(min_needed);
        let both = broker.intersect(&ours);
        if both.is_empty() {
            return Err(AdminError::Protocol(format!(
                "no common version of {api:?}: broker supports {broker}, this client {ours}"
            )));
        }
        Ok(both.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_highest_common_version() {
        let t = ApiVersionTable::new([
            (ApiKey::Metadata as i16, 0, 99),
            (ApiKey::CreateTopics as i16, 0, 4),
            (ApiKey::DeleteTopics as i16, 0, 0),
        ]);
        // capped at what kafka-protocol 0.18 implements
        assert_eq!(t.pick(ApiKey::Metadata, 0).ok(), Some(13));
        assert_eq!(t.pick(ApiKey::CreateTopics, 0).ok(), Some(4));
        // DeleteTopics v0 is below kafka-protocol's minimum (1)
        assert!(matches!(
            t.pick(ApiKey::DeleteTopics, 0),
            Err(AdminError::Protocol(_))
        ));
        assert!(matches!(
            t.pick(ApiKey::CreateTopics, 5),
            Err(AdminError::Protocol(_))
        ));
        match t.pick(ApiKey::DescribeCluster, 0) {
            Err(AdminError::Protocol(m)) => assert!(m.contains("DescribeCluster"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
