//! Java `.properties` parsing, as Kafka reads `server.properties`.

use std::collections::BTreeMap;

/// Parses the text of a Java properties file into key/value pairs.
///
/// Supports `#` and `!` comments, `=`, `:` or whitespace separators,
/// backslash line continuations and the common escapes. A later duplicate
/// key wins, as in `java.util.Properties`.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        // A line ending in an odd number of backslashes continues.
        let trailing = line.chars().rev().take_while(|c| *c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        let (k, v) = split_key_value(&logical);
        out.insert(unescape(&k), unescape(&v));
        logical.clear();
    }
    if !logical.is_empty() {
        let (k, v) = split_key_value(&logical);
        out.insert(unescape(&k), unescape(&v));
    }
    out
}

fn split_key_value(line: &str) -> (String, String) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' | ' ' | '\t' => {
                let key = line[..i].to_string();
                let mut rest = line[i..].trim_start_matches([' ', '\t']);
                if c == ' ' || c == '\t' {
                    if let Some(r) = rest.strip_prefix(['=', ':']) {
                        rest = r;
                    }
                } else {
                    rest = &rest[1..];
                }
                return (key, rest.trim_start_matches([' ', '\t']).to_string());
            }
            _ => {}
        }
    }
    (line.to_string(), String::new())
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push_str(&hex),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_style_files() {
        let p = parse_properties(
            "# comment\n! other\nnode.id=1\nlisteners = PLAINTEXT://:9092,\\\n   CONTROLLER://:9093\nlog.dirs: /tmp/a\nkey\\=x value\n\nempty=\n",
        );
        assert_eq!(p["node.id"], "1");
        assert_eq!(p["listeners"], "PLAINTEXT://:9092,CONTROLLER://:9093");
        assert_eq!(p["log.dirs"], "/tmp/a");
        assert_eq!(p["key=x"], "value");
        assert_eq!(p["empty"], "");
        assert_eq!(p.len(), 5);
    }
}
