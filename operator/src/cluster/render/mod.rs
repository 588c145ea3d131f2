//! Pure builders of a KafkaCluster's children: same spec in, same objects out, no I/O,
//! so every child can be unit-tested and server-side apply sees no spurious changes.

pub mod config;
pub mod names;
pub mod pdb;
pub mod services;
pub mod statefulset;

pub use config::SpecError;
pub use names::Names;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use runnel_crds::KafkaCluster;

/// Every child of one KafkaCluster.
#[derive(Clone, Debug)]
pub struct Children {
    /// Per-broker `server.properties`.
    pub config_map: ConfigMap,
    /// Stable broker DNS names.
    pub headless_service: Service,
    /// Client bootstrap.
    pub bootstrap_service: Service,
    /// The brokers.
    pub statefulset: StatefulSet,
    /// At most one broker down voluntarily.
    pub pdb: PodDisruptionBudget,
}

/// Renders all children of `kc`.
pub fn children(kc: &KafkaCluster, default_image: &str) -> Result<Children, SpecError> {
    let names = Names::of(kc);
    let config_map = config::config_map(kc, &names)?;
    let data = config_map.data.clone().unwrap_or_default();
    Ok(Children {
        statefulset: statefulset::statefulset(kc, &names, default_image, &data)?,
        headless_service: services::headless_service(kc, &names),
        bootstrap_service: services::bootstrap_service(kc, &names),
        pdb: pdb::pdb(kc, &names),
        config_map,
    })
}
