//! Kafka configuration maps (`config:` in a spec): Kafka keys to scalar values.
//!
//! Users write `num.partitions: 3` or `cleanup.policy: compact` or
//! `auto.create.topics.enable: false`, so values may be strings, numbers or booleans.
//! A structural schema cannot say "one of these types", so the value schema preserves
//! unknown fields and [`to_properties`] reports anything that is not a scalar.

use schemars::{json_schema, Schema, SchemaGenerator};
use serde_json::Value;
use std::collections::BTreeMap;

/// A Kafka configuration map as it appears in a spec.
pub type ConfigMap = BTreeMap<String, Value>;

/// The most keys a config map may hold (also bounds CEL evaluation cost).
pub const MAX_KEYS: u64 = 512;

/// Schema of a config map: an object of at most [`MAX_KEYS`] keys whose values are kept as written.
pub fn schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "maxProperties": MAX_KEYS,
        "additionalProperties": { "x-kubernetes-preserve-unknown-fields": true }
    })
}

/// Turns a config map into Kafka property strings, or explains which key is not a scalar.
pub fn to_properties(config: &ConfigMap) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in config {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => {
                return Err(format!("config key `{k}` has no value (null); remove the key to use the default"))
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(format!(
                    "config key `{k}` must be a string, number or boolean, not a list or map (Kafka lists are comma-separated strings)"
                ))
            }
        };
        if k.trim().is_empty() {
            return Err("config has an empty key".to_string());
        }
        out.insert(k.clone(), s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_become_strings() {
        let m: ConfigMap =
            serde_json::from_value(json!({"a": 3, "b": true, "c": "x", "d": 1.5})).expect("map");
        let p = to_properties(&m).expect("ok");
        assert_eq!(p["a"], "3");
        assert_eq!(p["b"], "true");
        assert_eq!(p["c"], "x");
        assert_eq!(p["d"], "1.5");
    }

    #[test]
    fn non_scalars_are_explained() {
        let m: ConfigMap = serde_json::from_value(json!({"x": [1, 2]})).expect("map");
        assert!(to_properties(&m).expect_err("list").contains("`x`"));
        let m: ConfigMap = serde_json::from_value(json!({"y": null})).expect("map");
        assert!(to_properties(&m).expect_err("null").contains("null"));
    }
}
