//! The headless Service (stable broker DNS names) and the bootstrap Service.

use super::names::{Names, Pool};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use runnel_crds::cluster::CONTROLLER_PORT;
use runnel_crds::KafkaCluster;

fn port(name: String, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name),
        port,
        target_port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn client_ports(kc: &KafkaCluster) -> Vec<ServicePort> {
    kc.spec
        .listeners
        .iter()
        .map(|l| {
            port(
                format!("tcp-{}", l.name.to_lowercase().replace('_', "-")),
                l.port,
            )
        })
        .collect()
}

/// `<cluster>-brokers`: headless, publishing not-ready addresses so brokers find
/// each other (and the quorum forms) before any is ready.
pub fn headless_service(kc: &KafkaCluster, names: &Names) -> Service {
    headless_service_of(kc, Pool::Brokers, names)
}

/// The headless Service of `pool` (`<cluster>-brokers` or `<cluster>-controllers`).
pub fn headless_service_of(kc: &KafkaCluster, pool: Pool, names: &Names) -> Service {
    let mut ports = match pool {
        Pool::Brokers => client_ports(kc),
        Pool::Controllers => Vec::new(),
    };
    if kc.spec.controllers.is_none() || pool == Pool::Controllers {
        ports.push(port("tcp-controller".into(), CONTROLLER_PORT));
    }
    Service {
        metadata: names.child_meta_of(kc, pool, names.headless_service_of(pool)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(names.selector_of(pool)),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `<cluster>-kafka-bootstrap`: what clients put in `bootstrap.servers`.
pub fn bootstrap_service(kc: &KafkaCluster, names: &Names) -> Service {
    Service {
        metadata: names.child_meta(kc, names.bootstrap_service()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(names.selector()),
            ports: Some(client_ports(kc)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services() {
        let mut kc = KafkaCluster::new(
            "demo",
            serde_json::from_value(serde_json::json!({
                "storage": {"size": "1Gi"},
                "listeners": [{"name": "PLAINTEXT", "port": 9092}, {"name": "REPLICATION_X", "port": 9094}]
            }))
            .expect("spec"),
        );
        kc.metadata.namespace = Some("kafka".into());
        kc.metadata.uid = Some("u".into());
        let n = Names::of(&kc);
        let h = headless_service(&kc, &n);
        let spec = h.spec.expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        let ports: Vec<_> = spec
            .ports
            .expect("ports")
            .iter()
            .map(|p| (p.name.clone().unwrap_or_default(), p.port))
            .collect();
        assert_eq!(
            ports,
            [
                ("tcp-plaintext".into(), 9092),
                ("tcp-replication-x".into(), 9094),
                ("tcp-controller".into(), 9093)
            ]
        );
        let b = bootstrap_service(&kc, &n);
        assert_eq!(b.metadata.name.as_deref(), Some("demo-kafka-bootstrap"));
        assert_eq!(b.spec.expect("spec").ports.expect("ports").len(), 2);
    }
}
