//! The PodDisruptionBudget: voluntary evictions take at most one broker at a time.

use super::names::{Names, Pool};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use runnel_crds::KafkaCluster;

/// `<cluster>-broker`, `maxUnavailable: 1`.
pub fn pdb(kc: &KafkaCluster, names: &Names) -> PodDisruptionBudget {
    pdb_of(kc, Pool::Brokers, names)
}

/// `pool`'s PodDisruptionBudget (`maxUnavailable: 1`), named like its StatefulSet.
pub fn pdb_of(kc: &KafkaCluster, pool: Pool, names: &Names) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: names.child_meta_of(kc, pool, names.statefulset_of(pool)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(names.selector_of(pool)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
