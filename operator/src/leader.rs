//! Leader election on a `coordination.k8s.io/v1` Lease (via `kube-lease-manager`), so
//! several operator replicas can run and only one reconciles.

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tracing::info;

/// Lease settings.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// Lease name.
    pub name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// Lease duration in seconds.
    pub duration_secs: u64,
}

/// Starts competing for the lease. The returned channel says whether this replica holds it;
/// dropping the channel releases the lease.
pub async fn elect(
    client: Client,
    s: &LeaseSettings,
) -> Result<
    (
        watch::Receiver<bool>,
        tokio::task::JoinHandle<
            Result<kube_lease_manager::LeaseManager, kube_lease_manager::LeaseManagerError>,
        >,
    ),
    kube_lease_manager::LeaseManagerError,
> {
    info!(lease = %s.name, namespace = %s.namespace, identity = %s.identity, "competing for leadership");
    let manager = LeaseManagerBuilder::new(client, s.name.clone())
        .with_namespace(s.namespace.clone())
        .with_identity(s.identity.clone())
        .with_duration(s.duration_secs)
        .with_grace(s.duration_secs.div_ceil(3).max(1))
        .with_field_manager("runnel-operator".to_string())
        .build()
        .await?;
    Ok(manager.watch().await)
}
