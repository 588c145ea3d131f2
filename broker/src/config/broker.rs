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
    /// `log.dirs` (or `log.dir`).
    pub log_dirs: Vec<PathBuf>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// The cluster id to format empty storage with (`--cluster-id`, as
    /// `kafka-storage format --cluster-id`); a random one when absent.
    pub format_cluster_id: Option<String>,
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
        if voters.is_empty() {
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
                log_dirs,
                rack,
                format_cluster_id: None,
                props,
            },
            warnings,
        ))
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
}
