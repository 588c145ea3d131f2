//! The PodDisruptionBudget: voluntary evictions take at most one broker at a time.

use super::names::Names;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use kube::Resource;
use runnel_crds::KafkaCluster;

/// `<cluster>-broker`, `maxUnavailable: 1`.
pub fn pdb(kc: &KafkaCluster, names: &Names) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: ObjectMeta {
            name: Some(names.statefulset()),
            namespace: Some(names.namespace.clone()),
            labels: Some(names.labels()),
            owner_references: kc.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(names.selector()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
