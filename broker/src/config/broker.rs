//! The static broker config: `server.properties` plus `--override`s.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::defs::{broker_def, topic_def, validate};
use super::ConfigError;

/// One listener: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The listener name, e.g. `PLAINTEXT`.
    pub name: String,
    /// The host to bind or advertise ("" binds all interfaces).
    pub host: String,
    /// The port (0 asks the OS for one).
    pub port: u16,
}

/// Parses a Kafka listener list such as `PLAINTEXT://:9092,CONTROLLER://localhost:9093`.
pub fn parse_listeners(key: &str, s: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let bad = || ConfigError::Invalid {
            key: key.to_string(),
            message: format!("Unable to parse {item} to a broker endpoint"),
        };
        let (name, rest) = item.split_once("://").ok_or_else(bad)?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().map_err(|_| bad())?;
        if name.is_empty() {
            return Err(bad());
        }
        out.push(Listener {
            name: name.to_ascii_uppercase(),
            host: host.to_string(),
            port,
        });
    }
    Ok(out)
}

/// The typed static configuration of one broker process.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Every property as given (file, then overrides).
    pub props: BTreeMap<String, String>,
    /// `node.id`.
    pub node_id: i32,
    /// `process.roles`.
    pub process_roles: Vec<String>,
    /// `listeners`.
    pub listeners: Vec<Listener>,
    /// `advertised.listeners` (defaults to `listeners`).
    pub advertised_listeners: Vec<Listener>,
    /// `controller.listener.names`.
    pub controller_listener_names: Vec<String>,
    /// `listener.security.protocol.map`.
    pub security_protocol_map: BTreeMap<String, String>,
    /// The metadata quorum voters, as `(node id, host:port)`.
    pub voters: Vec<(i32, String)>,
    /// `controller.quorum.bootstrap.servers`, as `host:port`: where a
    /// broker-only node (an observer of the metadata log) looks for the
    /// quorum when `controller.quorum.voters` is not set.
    pub bootstrap_servers: Vec<String>,
    /// `log.dirs` (or `log.dir`).
    pub log_dirs: Vec<PathBuf>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// The cluster id to format empty storage with (`--cluster-id`, as
    /// `kafka-storage format --cluster-id`); a random one when absent.
    pub format_cluster_id: Option<String>,
    /// `--standalone` (as `kafka-storage format --standalone`): empty
    /// storage of a controller of a dynamic quorum forms a quorum of one.
    pub format_standalone: bool,
    /// `--no-initial-controllers` (as `kafka-storage format
    /// --no-initial-controllers`): empty storage of a controller of a
    /// dynamic quorum starts as an observer, to be added with AddRaftVoter.
    pub format_no_initial_controllers: bool,
    /// The `metadata.version` level a newly formatted cluster is
    /// bootstrapped at (`--release-version`, as `kafka-storage format`'s).
    pub format_metadata_version: i16,
    /// `--health-port`: the port of the HTTP health endpoint
    /// (`server::health`), when one is asked for.
    pub health_port: Option<u16>,
}

fn get<'a>(props: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    props
        .get(key)
        .map(String::as_str)
        .or_else(|| broker_def(key).and_then(|d| d.default))
}

impl BrokerConfig {
    /// The built-in defaults when no file is given: one combined
    /// broker+controller on localhost:9092, data under `./data`.
    pub fn default_props() -> BTreeMap<String, String> {
        [
            ("process.roles", "broker,controller"),
            ("node.id", "1"),
            ("controller.quorum.voters", "1@localhost:9093"),
            ("listeners", "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093"),
            ("advertised.listeners", "PLAINTEXT://localhost:9092"),
            ("controller.listener.names", "CONTROLLER"),
            ("inter.broker.listener.name", "PLAINTEXT"),
            (
                "listener.security.protocol.map",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
            ),
            ("log.dirs", "./data"),
            ("num.partitions", "1"),
            ("group.initial.rebalance.delay.ms", "0"),
            ("offsets.topic.replication.factor", "1"),
            ("transaction.state.log.replication.factor", "1"),
            ("transaction.state.log.min.isr", "1"),
            ("share.coordinator.state.topic.replication.factor", "1"),
            ("share.coordinator.state.topic.min.isr", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Builds and validates the config. Returns the config and a warning per
    /// unknown key.
    pub fn from_props(props: BTreeMap<String, String>) -> Result<(Self, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        for (k, v) in &props {
            if let Some(d) = broker_def(k) {
                validate(k, d.ty, d.validator, v).map_err(|message| ConfigError::Invalid {
                    key: k.clone(),
                    message,
                })?;
            } else if topic_def(k).is_none() {
                warnings.push(format!(
                    "The configuration '{k}' was supplied but isn't a known config."
                ));
            }
        }
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.to_string(),
            message,
        };
        let node_id: i32 = get(&props, "node.id")
            .unwrap_or("-1")
            .parse()
            .map_err(|_| invalid("node.id", "not an integer".into()))?;
        if node_id < 0 {
            return Err(invalid(
                "node.id",
                "Missing required configuration `node.id` which has no default value.".into(),
            ));
        }
        let process_roles: Vec<String> = get(&props, "process.roles")
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if process_roles.is_empty() {
            return Err(invalid(
                "process.roles",
                "process.roles must be set (broker, controller or both)".into(),
            ));
        }
        for r in &process_roles {
            if r != "broker" && r != "controller" {
                return Err(invalid(
                    "process.roles",
                    format!("Unknown process role '{r}' (must be broker or controller)"),
                ));
            }
        }
        let listeners = parse_listeners("listeners", get(&props, "listeners").unwrap_or(""))?;
        let controller_listener_names: Vec<String> = get(&props, "controller.listener.names")
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect();
        let advertised_listeners: Vec<Listener> = match props.get("advertised.listeners") {
            Some(a) => parse_listeners("advertised.listeners", a)?
                .into_iter()
                .filter(|l| !controller_listener_names.contains(&l.name))
                .collect(),
            None => listeners
                .iter()
                .filter(|l| !controller_listener_names.contains(&l.name))
                .cloned()
                .collect(),
        };
        if process_roles.iter().any(|r| r == "broker") && advertised_listeners.is_empty() {
            return Err(invalid(
                "listeners",
                "a broker needs at least one non-controller listener".into(),
            ));
        }
        let mut security_protocol_map = BTreeMap::new();
        for pair in get(&props, "listener.security.protocol.map")
            .unwrap_or("")
            .split(',')
        {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (l, p): (&str, &str) = pair.split_once(':').ok_or_else(|| {
                invalid(
                    "listener.security.protocol.map",
                    format!("Invalid entry '{pair}' (expected LISTENER:PROTOCOL)"),
                )
            })?;
            security_protocol_map
                .insert(l.trim().to_ascii_uppercase(), p.trim().to_ascii_uppercase());
        }
        for l in &listeners {
            let proto = security_protocol_map
                .get(&l.name)
                .cloned()
                .unwrap_or_else(|| l.name.clone());
            if proto != "PLAINTEXT" {
                return Err(invalid(
                    "listeners",
                    format!("listener {} uses security protocol {proto}, which this broker does not support yet (only PLAINTEXT)", l.name),
                ));
            }
        }
        let mut voters = Vec::new();
        for v in get(&props, "controller.quorum.voters")
            .unwrap_or("")
            .split(',')
        {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            let parsed = v
                .split_once('@')
                .and_then(|(id, addr)| Some((id.parse::<i32>().ok()?, addr.to_string())));
            match parsed {
                Some(p) => voters.push(p),
                None => {
                    return Err(invalid(
                        "controller.quorum.voters",
                        format!("Invalid voter '{v}' (expected ID@HOST:PORT)"),
                    ))
                }
            }
        }
        let bootstrap_servers: Vec<String> = get(&props, "controller.quorum.bootstrap.servers")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        for b in &bootstrap_servers {
            if b.rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(invalid(
                    "controller.quorum.bootstrap.servers",
                    format!("Invalid bootstrap server '{b}' (expected HOST:PORT)"),
                ));
            }
        }
        let is_broker = process_roles.iter().any(|r| r == "broker");
        let is_controller = process_roles.iter().any(|r| r == "controller");
        validate_roles(
            node_id,
            is_broker,
            is_controller,
            &listeners,
            &controller_listener_names,
            &voters,
            &bootstrap_servers,
        )?;
        if voters.is_empty() && is_controller && bootstrap_servers.is_empty() {
            // KIP-853 style: a lone controller votes for itself on its controller listener.
            if let Some(l) = listeners
                .iter()
                .find(|l| controller_listener_names.contains(&l.name))
            {
                let host = if l.host.is_empty() {
                    "localhost"
                } else {
                    &l.host
                };
                voters.push((node_id, format!("{host}:{}", l.port)));
            } else {
                return Err(invalid(
                    "controller.quorum.voters",
                    "Missing controller.quorum.voters and no controller listener to derive it from"
                        .into(),
                ));
            }
        }
        let log_dirs: Vec<PathBuf> = get(&props, "log.dirs")
            .or_else(|| get(&props, "log.dir"))
            .unwrap_or("/tmp/kafka-logs")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if log_dirs.is_empty() {
            return Err(invalid("log.dirs", "no log directory configured".into()));
        }
        let rack = props.get("broker.rack").cloned().filter(|r| !r.is_empty());
        Ok((
            Self {
                node_id,
                process_roles,
                listeners,
                advertised_listeners,
                controller_listener_names,
                security_protocol_map,
                voters,
                bootstrap_servers,
                log_dirs,
                rack,
                format_cluster_id: None,
                format_standalone: false,
                format_no_initial_controllers: false,
                format_metadata_version: crate::metadata::features::LATEST_METADATA_VERSION,
                health_port: None,
                props,
            },
            warnings,
        ))
    }

    /// Whether this node runs the broker role (`process.roles` has `broker`).
    pub fn is_broker(&self) -> bool {
        self.process_roles.iter().any(|r| r == "broker")
    }

    /// Whether this node runs the controller role (a metadata quorum voter).
    pub fn is_controller(&self) -> bool {
        self.process_roles.iter().any(|r| r == "controller")
    }

    /// Whether this node is a controller of a dynamic quorum (KIP-853):
    /// `controller.quorum.bootstrap.servers` and no `controller.quorum.voters`.
    pub fn is_dynamic_controller(&self) -> bool {
        self.is_controller() && self.voters.is_empty() && !self.bootstrap_servers.is_empty()
    }

    /// This controller's listeners as other nodes reach them, `(name, host,
    /// port)` in `controller.listener.names` order: the advertised listener
    /// of that name, else the listener (an empty host is `localhost`), as
    /// Kafka's `kafka-metadata-quorum add-controller` reads them.
    pub fn controller_endpoints(&self) -> Vec<(String, String, u16)> {
        let advertised = self
            .props
            .get("advertised.listeners")
            .and_then(|a| parse_listeners("advertised.listeners", a).ok())
            .unwrap_or_default();
        self.controller_listener_names
            .iter()
            .filter_map(|name| {
                let l = advertised
                    .iter()
                    .find(|l| &l.name == name)
                    .or_else(|| self.listeners.iter().find(|l| &l.name == name))?;
                let host = if l.host.is_empty() {
                    "localhost".to_string()
                } else {
                    l.host.clone()
                };
                Some((l.name.clone(), host, l.port))
            })
            .collect()
    }

    /// The static value of a broker key, or its default.
    pub fn get(&self, key: &str) -> Option<&str> {
        get(&self.props, key)
    }

    /// A numeric broker key (static value or default); `fallback` if unset.
    pub fn get_i64(&self, key: &str, fallback: i64) -> i64 {
        self.get(key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(fallback)
    }

    /// A boolean broker key (static value or default).
    pub fn get_bool(&self, key: &str, fallback: bool) -> bool {
        self.get(key)
            .map(|v| v.trim().eq_ignore_ascii_case("true"))
            .unwrap_or(fallback)
    }

    /// The listeners clients connect to (not the controller listeners).
    pub fn broker_listeners(&self) -> Vec<Listener> {
        self.listeners
            .iter()
            .filter(|l| !self.controller_listener_names.contains(&l.name))
            .cloned()
            .collect()
    }

    /// The directory holding the metadata quorum's log.
    pub fn metadata_dir(&self) -> PathBuf {
        match self.props.get("metadata.log.dir") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => self.log_dirs[0].clone(),
        }
    }
}

/// Kafka's `KafkaConfig` checks of `process.roles` against the voters and
/// listeners (`validateValues`), with Kafka's messages.
fn validate_roles(
    node_id: i32,
    is_broker: bool,
    is_controller: bool,
    listeners: &[Listener],
    controller_listener_names: &[String],
    voters: &[(i32, String)],
    bootstrap_servers: &[String],
) -> Result<(), ConfigError> {
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        key: key.to_string(),
        message,
    };
    if !voters.is_empty() && !bootstrap_servers.is_empty() {
        return Err(invalid(
            "controller.quorum.bootstrap.servers",
            "Only one of controller.quorum.voters and controller.quorum.bootstrap.servers may be set"
                .into(),
        ));
    }
    let voter_ids: Vec<i32> = voters.iter().map(|(id, _)| *id).collect();
    let in_voters = voter_ids.contains(&node_id);
    let controller_listeners: Vec<&Listener> = listeners
        .iter()
        .filter(|l| controller_listener_names.contains(&l.name))
        .collect();
    if !is_controller {
        // process.roles=broker
        if in_voters {
            return Err(invalid(
                "controller.quorum.voters",
                format!("If process.roles contains just the 'broker' role, the node id {node_id} must not be included in the set of voters controller.quorum.voters={voter_ids:?}"),
            ));
        }
        if controller_listener_names.is_empty() {
            return Err(invalid(
                "controller.listener.names",
                "controller.listener.names must contain at least one value when running KRaft with just the broker role".into(),
            ));
        }
        if !controller_listeners.is_empty() {
            return Err(invalid(
                "controller.listener.names",
                "controller.listener.names must not contain a value appearing in the 'listeners' configuration when running KRaft with just the broker role".into(),
            ));
        }
        if voters.is_empty() && bootstrap_servers.is_empty() {
            return Err(invalid(
                "controller.quorum.voters",
                "If using process.roles, either controller.quorum.bootstrap.servers must contain the set of bootstrap controllers or controller.quorum.voters must contain a parseable set of controllers.".into(),
            ));
        }
        return Ok(());
    }
    if controller_listeners.is_empty() {
        return Err(invalid(
            "controller.listener.names",
            "controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role".into(),
        ));
    }
    if !voters.is_empty() && !in_voters {
        let roles = if is_broker {
            "'broker' and 'controller' roles"
        } else {
            "just the 'controller' role"
        };
        return Err(invalid(
            "controller.quorum.voters",
            format!("If process.roles contains {roles}, the node id {node_id} must be included in the set of voters controller.quorum.voters={voter_ids:?}"),
        ));
    }
    if !is_broker && listeners.len() != controller_listeners.len() {
        return Err(invalid(
            "listeners",
            "The listeners config must only contain KRaft controller listeners from controller.listener.names when process.roles=controller".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_a_combined_node() {
        let (c, w) = BrokerConfig::from_props(BrokerConfig::default_props()).expect("valid");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.node_id, 1);
        assert_eq!(c.voters, vec![(1, "localhost:9093".to_string())]);
        assert_eq!(c.broker_listeners()[0].port, 9092);
        assert_eq!(c.advertised_listeners[0].host, "localhost");
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let mut p = BrokerConfig::default_props();
        p.insert("num.partitions".into(), "zero".into());
        let e = BrokerConfig::from_props(p)
            .expect_err("invalid")
            .to_string();
        assert!(
            e.contains("num.partitions") && e.contains("Not a number"),
            "{e}"
        );
        let mut p = BrokerConfig::default_props();
        p.insert("listeners".into(), "PLAINTEXT//bad".into());
        assert!(BrokerConfig::from_props(p).is_err());
        let mut p = BrokerConfig::default_props();
        p.insert("no.such.key".into(), "1".into());
        let (_, w) = BrokerConfig::from_props(p).expect("valid");
        assert_eq!(w.len(), 1);
    }

    fn roles(pairs: &[(&str, &str)]) -> Result<BrokerConfig, String> {
        let mut p = BrokerConfig::default_props();
        for (k, v) in pairs {
            if v.is_empty() {
                p.remove(*k);
            } else {
                p.insert(k.to_string(), v.to_string());
            }
        }
        BrokerConfig::from_props(p)
            .map(|(c, _)| c)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn split_roles_are_validated_as_kafka_does() {
        let broker_only = [
            ("process.roles", "broker"),
            ("node.id", "4"),
            (
                "controller.quorum.voters",
                "1@localhost:9093,2@localhost:9094",
            ),
            ("listeners", "PLAINTEXT://localhost:9092"),
        ];
        let c = roles(&broker_only).expect("a broker-only node");
        assert!(c.is_broker() && !c.is_controller());
        let mut b = broker_only;
        b[1] = ("node.id", "2");
        let e = roles(&b).expect_err("a broker among the voters");
        assert!(
            e.contains("must not be included in the set of voters"),
            "{e}"
        );
        let mut b = broker_only;
        b[3] = (
            "listeners",
            "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9095",
        );
        let e = roles(&b).expect_err("a broker with a controller listener");
        assert!(
            e.contains("must not contain a value appearing in the 'listeners'"),
            "{e}"
        );
        let e = roles(&[
            ("process.roles", "broker"),
            ("node.id", "4"),
            ("controller.quorum.voters", ""),
            ("listeners", "PLAINTEXT://localhost:9092"),
        ])
        .expect_err("a broker with no way to the quorum");
        assert!(e.contains("controller.quorum.bootstrap.servers"), "{e}");
        let c = roles(&[
            ("process.roles", "broker"),
            ("node.id", "4"),
            ("controller.quorum.voters", ""),
            ("controller.quorum.bootstrap.servers", "localhost:9093"),
            ("listeners", "PLAINTEXT://localhost:9092"),
        ])
        .expect("a broker with bootstrap servers");
        assert_eq!(c.bootstrap_servers, vec!["localhost:9093".to_string()]);
        assert!(c.voters.is_empty());
        let e = roles(&[
            ("process.roles", "broker"),
            ("node.id", "4"),
            ("controller.listener.names", ""),
            ("controller.quorum.voters", "1@localhost:9093"),
            ("listeners", "PLAINTEXT://localhost:9092"),
        ])
        .expect_err("no controller.listener.names");
        assert!(e.contains("controller.listener.names must contain"), "{e}");

        let controller_only = [
            ("process.roles", "controller"),
            ("node.id", "1"),
            (
                "controller.quorum.voters",
                "1@localhost:9093,2@localhost:9094",
            ),
            ("listeners", "CONTROLLER://localhost:9093"),
            ("advertised.listeners", ""),
        ];
        let c = roles(&controller_only).expect("a controller-only node");
        assert!(c.is_controller() && !c.is_broker());
        let mut b = controller_only;
        b[1] = ("node.id", "3");
        let e = roles(&b).expect_err("a controller outside the voters");
        assert!(e.contains("must be included in the set of voters"), "{e}");
        let mut b = controller_only;
        b[3] = (
            "listeners",
            "CONTROLLER://localhost:9093,PLAINTEXT://localhost:9092",
        );
        let e = roles(&b).expect_err("a controller with a client listener");
        assert!(
            e.contains("must only contain KRaft controller listeners"),
            "{e}"
        );
        let e = roles(&[("node.id", "2")]).expect_err("combined, outside the voters");
        assert!(e.contains("must be included in the set of voters"), "{e}");
    }
}
