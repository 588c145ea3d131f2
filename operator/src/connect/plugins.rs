//! Pure rendering of a KafkaConnect's plugins: the bundled ones `spec.plugins` names, and
//! the ones the workers download when they start (`spec.build.plugins`, Strimzi's shape, and
//! Maven coordinates in `spec.plugins`). The downloads are made by the init container
//! [`init_container`] (the worker image's JVM running `FetchPlugins.java` from the worker
//! ConfigMap over the plan [`plan_file`]) into an `emptyDir` on `plugin.path`; a failure is
//! read back from the init container's termination message ([`download_failure`]).

use super::render::{ConnectSpecError, CONFIG_MOUNT};
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, SecurityContext, VolumeMount};
use runnel_crds::connect::{ArtifactType, BUNDLED_PLUGINS, MAVEN_CENTRAL};
use runnel_crds::KafkaConnect;
use std::fmt::Write as _;

/// Where the downloaded plugins are (an `emptyDir`), one directory per plugin.
pub const DOWNLOAD_PATH: &str = "/opt/kafka/downloaded-plugins";
/// The `emptyDir` volume holding them.
pub const VOLUME: &str = "plugins";
/// The init container's name.
pub const INIT_CONTAINER: &str = "plugins";
/// The downloader's source in the worker ConfigMap.
pub const FETCHER_KEY: &str = "FetchPlugins.java";
/// The download plan in the worker ConfigMap.
pub const PLAN_KEY: &str = "plugins.tsv";
/// The downloader, run by the worker image's JVM as a single-file source program.
pub const FETCHER_SOURCE: &str = include_str!("FetchPlugins.java");

/// How the init container stores one download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Stored as a file of the plugin's directory.
    File,
    /// A zip unpacked into it.
    Zip,
    /// A gzipped tar unpacked into it.
    Tgz,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Zip => "zip",
            Kind::Tgz => "tgz",
        }
    }
}

/// One artifact to download, resolved from the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Download {
    /// The plugin directory it goes to.
    pub plugin: String,
    /// How it is stored.
    pub kind: Kind,
    /// Where it comes from.
    pub url: String,
    /// The SHA-512 it must have (lower-case hex).
    pub sha512: Option<String>,
    /// The file name (`Kind::File`).
    pub file_name: Option<String>,
}

fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with('.')
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn plugin_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'))
        && !s.starts_with(['-', '_'])
        && !s.ends_with(['-', '_'])
}

fn http_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://"))
        && s.len() > "https://".len()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The URL of the jar of `group:artifact:version` in a Maven 2 repository.
pub fn maven_url(repository: &str, group: &str, artifact: &str, version: &str) -> String {
    format!(
        "{}/{}/{artifact}/{version}/{artifact}-{version}.jar",
        repository.trim_end_matches('/'),
        group.replace('.', "/")
    )
}

/// `group:artifact:version` if `s` is Maven coordinates.
fn coordinates(s: &str) -> Option<(&str, &str, &str)> {
    let mut it = s.split(':');
    let (g, a, v) = (it.next()?, it.next()?, it.next()?);
    (it.next().is_none() && safe_name(g) && safe_name(a) && safe_name(v)).then_some((g, a, v))
}

/// A plugin directory name for a Maven artifact id.
fn dir_for(artifact: &str) -> String {
    let s: String = artifact
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == '.' { '-' } else { c })
        .collect();
    s.trim_matches(['-', '_']).chars().take(63).collect()
}

/// The bundled plugins `spec.plugins` names (checked), and every download of
/// `spec.plugins` Maven coordinates and `spec.build.plugins`, in spec order.
pub fn resolve(kc: &KafkaConnect) -> Result<(Vec<String>, Vec<Download>), ConnectSpecError> {
    let bad = |m: String| Err(ConnectSpecError::Plugin(m));
    let repo_default = kc
        .spec
        .build
        .as_ref()
        .and_then(|b| b.maven_repository.clone())
        .unwrap_or_else(|| MAVEN_CENTRAL.to_string());
    if !http_url(&repo_default) {
        return bad(format!(
            "build.mavenRepository `{repo_default}` is not an http(s) URL"
        ));
    }
    let mut bundled = Vec::new();
    let mut downloads = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    for p in &kc.spec.plugins {
        if BUNDLED_PLUGINS.contains(&p.as_str()) {
            bundled.push(p.clone());
        } else if let Some((g, a, v)) = coordinates(p) {
            let dir = dir_for(a);
            if dir.is_empty() || dirs.contains(&dir) {
                return bad(format!("plugin `{p}`: a second plugin directory `{dir}`"));
            }
            dirs.push(dir.clone());
            downloads.push(Download {
                plugin: dir,
                kind: Kind::File,
                url: maven_url(&repo_default, g, a, v),
                sha512: None,
                file_name: Some(format!("{a}-{v}.jar")),
            });
        } else {
            return Err(ConnectSpecError::UnknownPlugin(
                p.clone(),
                BUNDLED_PLUGINS.join(", "),
            ));
        }
    }
    let build_plugins = kc.spec.build.iter().flat_map(|b| &b.plugins);
    for bp in build_plugins {
        if !plugin_name(&bp.name) {
            return bad(format!(
                "build plugin name `{}` must be lower-case letters, digits, `-` and `_`",
                bp.name
            ));
        }
        if dirs.contains(&bp.name) {
            return bad(format!("build plugin `{}` is named twice", bp.name));
        }
        dirs.push(bp.name.clone());
        if bp.artifacts.is_empty() {
            return bad(format!("build plugin `{}` has no artifacts", bp.name));
        }
        let mut names: Vec<String> = Vec::new();
        for (i, a) in bp.artifacts.iter().enumerate() {
            let at = format!("build plugin `{}` artifact {i}", bp.name);
            if let Some(s) = &a.sha512sum {
                if s.len() != 128 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
                    return bad(format!("{at}: sha512sum must be 128 hex digits"));
                }
            }
            let sha512 = a.sha512sum.as_ref().map(|s| s.to_ascii_lowercase());
            let (kind, url, file_name) = match a.type_ {
                ArtifactType::Maven => {
                    let (Some(g), Some(art), Some(v)) = (&a.group, &a.artifact, &a.version) else {
                        return bad(format!(
                            "{at}: type maven needs group, artifact and version"
                        ));
                    };
                    if ![g, art, v].iter().all(|s| safe_name(s)) {
                        return bad(format!("{at}: bad Maven coordinates {g}:{art}:{v}"));
                    }
                    let repo = a.repository.clone().unwrap_or_else(|| repo_default.clone());
                    if !http_url(&repo) {
                        return bad(format!("{at}: repository `{repo}` is not an http(s) URL"));
                    }
                    (
                        Kind::File,
                        maven_url(&repo, g, art, v),
                        Some(format!("{art}-{v}.jar")),
                    )
                }
                t => {
                    let Some(url) = a.url.clone().filter(|u| http_url(u)) else {
                        return bad(format!("{at}: needs an http(s) url"));
                    };
                    match t {
                        ArtifactType::Tgz => (Kind::Tgz, url, None),
                        ArtifactType::Zip => (Kind::Zip, url, None),
                        ArtifactType::Other => {
                            let Some(f) = a.file_name.clone() else {
                                return bad(format!("{at}: type other needs fileName"));
                            };
                            (Kind::File, url, Some(f))
                        }
                        _ => {
                            // A jar: its fileName, else the URL's last path segment.
                            let last = url
                                .split(['?', '#'])
                                .next()
                                .and_then(|u| u.rsplit('/').next())
                                .unwrap_or("")
                                .to_string();
                            let f = a.file_name.clone().unwrap_or(if safe_name(&last) {
                                last
                            } else {
                                format!("artifact-{i}.jar")
                            });
                            (Kind::File, url, Some(f))
                        }
                    }
                }
            };
            if let Some(f) = &file_name {
                if !safe_name(f) {
                    return bad(format!("{at}: bad file name `{f}`"));
                }
                if names.contains(f) {
                    return bad(format!("{at}: a second file named `{f}`"));
                }
                names.push(f.clone());
            }
            downloads.push(Download {
                plugin: bp.name.clone(),
                kind,
                url,
                sha512,
                file_name,
            });
        }
    }
    Ok((bundled, downloads))
}

/// The plan `FetchPlugins.java` reads: one tab-separated line per download.
pub fn plan_file(downloads: &[Download]) -> String {
    let mut out = String::from("# plugin\tkind\turl\tsha512\tfile\n");
    for d in downloads {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            d.plugin,
            d.kind.as_str(),
            d.url,
            d.sha512.as_deref().unwrap_or("-"),
            d.file_name.as_deref().unwrap_or("-")
        );
    }
    out
}

/// The init container downloading the plugins into the `emptyDir` before the worker starts.
/// `LC_ALL=C.UTF-8`: the JVM encodes file names in its locale's charset, and without a
/// UTF-8 locale an archive entry with a non-ASCII name cannot be stored (the Connect image
/// has the `C.utf8` locale; an image without it falls back to ASCII and the fetcher
/// reports such an entry).
pub fn init_container(image: &str, security: &SecurityContext) -> Container {
    Container {
        env: Some(vec![EnvVar {
            name: "LC_ALL".into(),
            value: Some("C.UTF-8".into()),
            ..Default::default()
        }]),
        name: INIT_CONTAINER.into(),
        image: Some(image.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec![
            "java".into(),
            "-Xmx256m".into(),
            "-XX:TieredStopAtLevel=1".into(),
            format!("{CONFIG_MOUNT}/{FETCHER_KEY}"),
            format!("{CONFIG_MOUNT}/{PLAN_KEY}"),
            DOWNLOAD_PATH.into(),
        ]),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_MOUNT.into(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount {
                name: VOLUME.into(),
                mount_path: DOWNLOAD_PATH.into(),
                ..Default::default()
            },
        ]),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        security_context: Some(security.clone()),
        ..Default::default()
    }
}

/// The last line of a termination message, trimmed to something a condition can carry.
fn last_line(message: &str) -> String {
    let line = message
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    line.chars().take(600).collect()
}

/// Why a worker cannot start because its plugins failed to download: the first pod (by
/// name) whose `plugins` init container last exited non-zero, with its message.
pub fn download_failure(pods: &[Pod]) -> Option<String> {
    let mut failures: Vec<(String, String)> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let st = p.status.as_ref()?;
            let c = st
                .init_container_statuses
                .as_ref()?
                .iter()
                .find(|c| c.name == INIT_CONTAINER)?;
            let terminated = c
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .filter(|t| t.exit_code != 0)
                .or_else(|| {
                    // Waiting in back-off after a failure: the last run's message.
                    c.state
                        .as_ref()
                        .and_then(|s| s.waiting.as_ref())
                        .and(c.last_state.as_ref())
                        .and_then(|s| s.terminated.as_ref())
                        .filter(|t| t.exit_code != 0)
                })?;
            let why = terminated
                .message
                .as_deref()
                .map(last_line)
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| format!("exit code {}", terminated.exit_code));
            Some((p.metadata.name.clone().unwrap_or_default(), why))
        })
        .collect();
    failures.sort();
    failures
        .into_iter()
        .next()
        .map(|(pod, why)| format!("worker {pod} cannot start: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connect(spec: serde_json::Value) -> KafkaConnect {
        KafkaConnect::new("conn", serde_json::from_value(spec).expect("spec"))
    }

    const SHA: &str = "AB000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn maven_coordinates_become_repository_urls() {
        assert_eq!(
            maven_url(
                "https://repo1.maven.org/maven2/",
                "org.apache.kafka",
                "connect-file",
                "4.1.1"
            ),
            "https://repo1.maven.org/maven2/org/apache/kafka/connect-file/4.1.1/connect-file-4.1.1.jar"
        );
        let kc = connect(json!({"clusterRef": "demo", "groupId": "g",
            "plugins": ["connect-file", "io.debezium:debezium-connector-postgres:3.0.0.Final"]}));
        let (bundled, d) = resolve(&kc).expect("resolve");
        assert_eq!(bundled, ["connect-file"]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].plugin, "debezium-connector-postgres");
        assert_eq!(d[0].url, format!("{MAVEN_CENTRAL}/io/debezium/debezium-connector-postgres/3.0.0.Final/debezium-connector-postgres-3.0.0.Final.jar"));
        // The default repository is overridable for the whole spec and per artifact.
        let kc = connect(json!({"clusterRef": "demo", "groupId": "g",
            "plugins": ["org.apache.kafka:connect-file:4.1.1"],
            "build": {"mavenRepository": "http://repo.local:8080/m2", "plugins": [
                {"name": "mirror", "artifacts": [
                    {"type": "maven", "group": "org.apache.kafka", "artifact": "connect-mirror", "version": "4.1.1"},
                    {"type": "maven", "repository": "https://other.example/m2", "group": "org.x",
                     "artifact": "y", "version": "1", "sha512sum": SHA}]}]}}));
        let (_, d) = resolve(&kc).expect("resolve");
        let urls: Vec<_> = d.iter().map(|d| d.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "http://repo.local:8080/m2/org/apache/kafka/connect-file/4.1.1/connect-file-4.1.1.jar",
                "http://repo.local:8080/m2/org/apache/kafka/connect-mirror/4.1.1/connect-mirror-4.1.1.jar",
                "https://other.example/m2/org/x/y/1/y-1.jar",
            ]
        );
        assert_eq!(
            d[2].sha512.as_deref(),
            Some(SHA.to_ascii_lowercase().as_str())
        );
        assert_eq!(d[1].file_name.as_deref(), Some("connect-mirror-4.1.1.jar"));
    }

    #[test]
    fn strimzi_artifact_types_are_planned() {
        let kc = connect(
            json!({"clusterRef": "demo", "groupId": "g", "build": {"plugins": [
            {"name": "p1", "artifacts": [
                {"type": "jar", "url": "https://h/x/a.jar?x=1", "sha512sum": SHA},
                {"type": "jar", "url": "https://h/download", "fileName": "b.jar"},
                {"type": "jar", "url": "https://h/"},
                {"type": "tgz", "url": "https://h/p.tar.gz"},
                {"type": "zip", "url": "https://h/p.zip"},
                {"type": "other", "url": "https://h/drv", "fileName": "driver.so"}]}]}}),
        );
        let (bundled, d) = resolve(&kc).expect("resolve");
        assert!(bundled.is_empty());
        let kinds: Vec<_> = d.iter().map(|d| (d.kind, d.file_name.as_deref())).collect();
        assert_eq!(
            kinds,
            [
                (Kind::File, Some("a.jar")),
                (Kind::File, Some("b.jar")),
                (Kind::File, Some("artifact-2.jar")),
                (Kind::Tgz, None),
                (Kind::Zip, None),
                (Kind::File, Some("driver.so")),
            ]
        );
        let plan = plan_file(&d);
        let lines: Vec<_> = plan.lines().skip(1).collect();
        assert_eq!(lines.len(), 6);
        assert_eq!(
            lines[0],
            format!(
                "p1\tfile\thttps://h/x/a.jar?x=1\t{}\ta.jar",
                SHA.to_ascii_lowercase()
            )
        );
        assert_eq!(lines[3], "p1\ttgz\thttps://h/p.tar.gz\t-\t-");
        assert!(lines.iter().all(|l| l.split('\t').count() == 5));
    }

    #[test]
    fn bad_plugins_are_refused_with_a_reason() {
        let cases = [
            (json!({"plugins": ["nope"]}), "not bundled"),
            (json!({"plugins": ["a:b"]}), "not bundled"),
            (
                json!({"plugins": ["g:a:1", "h:a:2"]}),
                "second plugin directory",
            ),
            (
                json!({"build": {"plugins": [{"name": "x", "artifacts": [{"type": "maven", "group": "g"}]}]}}),
                "group, artifact and version",
            ),
            (
                json!({"build": {"plugins": [{"name": "x", "artifacts": [{"type": "jar"}]}]}}),
                "http(s) url",
            ),
            (
                json!({"build": {"plugins": [{"name": "x", "artifacts": [{"type": "jar", "url": "file:///etc/passwd"}]}]}}),
                "http(s) url",
            ),
            (
                json!({"build": {"plugins": [{"name": "x", "artifacts": [{"type": "other", "url": "http://h/f"}]}]}}),
                "fileName",
            ),
            (
                json!({"build": {"plugins": [{"name": "x", "artifacts": [{"type": "other", "url": "http://h/f", "fileName": "../f"}]}]}}),
                "bad file name",
            ),
            (
                json!({"build": {"plugins": [{"name": "x", "artifacts": [{"type": "jar", "url": "http://h/f.jar", "sha512sum": "abc"}]}]}}),
                "128 hex",
            ),
            (
                json!({"build": {"plugins": [{"name": "X/..", "artifacts": [{"type": "jar", "url": "http://h/f.jar"}]}]}}),
                "lower-case",
            ),
            (
                json!({"build": {"plugins": [{"name": "x", "artifacts": []}]}}),
                "no artifacts",
            ),
            (
                json!({"build": {"plugins": [{"name": "x", "artifacts": [{"type": "jar", "url": "http://h/f.jar"}]},
                                          {"name": "x", "artifacts": [{"type": "jar", "url": "http://h/g.jar"}]}]}}),
                "named twice",
            ),
            (
                json!({"build": {"plugins": [{"name": "x", "artifacts": [{"type": "jar", "url": "http://h/f.jar"},
                                                                    {"type": "jar", "url": "http://i/f.jar"}]}]}}),
                "second file",
            ),
            (
                json!({"build": {"mavenRepository": "ftp://h", "plugins": []}}),
                "not an http(s) URL",
            ),
        ];
        for (extra, want) in cases {
            let mut spec = json!({"clusterRef": "demo", "groupId": "g"});
            for (k, v) in extra.as_object().expect("obj") {
                spec[k] = v.clone();
            }
            let e = resolve(&connect(spec.clone())).expect_err(&spec.to_string());
            assert!(e.to_string().contains(want), "{spec}: {e}");
        }
    }

    fn pod(name: &str, init: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name},
            "status": {"initContainerStatuses": [init]}}))
        .expect("pod")
    }

    #[test]
    fn a_failed_download_is_read_from_the_init_container() {
        let ok = pod(
            "w-0",
            json!({"name": "plugins", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0}}}),
        );
        let running = pod(
            "w-1",
            json!({"name": "plugins", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"running": {}}}),
        );
        assert_eq!(download_failure(&[ok.clone(), running.clone()]), None);
        let failed = pod(
            "w-2",
            json!({"name": "plugins", "image": "i", "imageID": "", "ready": false, "restartCount": 1,
            "state": {"terminated": {"exitCode": 1, "message": "fetching\nplugin download failed: checksum mismatch for http://r/x.jar\n"}}}),
        );
        assert_eq!(
            download_failure(&[ok.clone(), failed]).as_deref(),
            Some("worker w-2 cannot start: plugin download failed: checksum mismatch for http://r/x.jar")
        );
        let backoff = pod(
            "w-3",
            json!({"name": "plugins", "image": "i", "imageID": "", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "message": "plugin download failed: cannot download http://r/y.jar: HTTP 404"}}}),
        );
        assert_eq!(
            download_failure(&[running, backoff]).as_deref(),
            Some("worker w-3 cannot start: plugin download failed: cannot download http://r/y.jar: HTTP 404")
        );
        let no_message = pod(
            "w-4",
            json!({"name": "plugins", "image": "i", "imageID": "", "ready": false, "restartCount": 1,
            "state": {"terminated": {"exitCode": 137}}}),
        );
        assert_eq!(
            download_failure(&[no_message]).as_deref(),
            Some("worker w-4 cannot start: exit code 137")
        );
    }

    #[test]
    fn the_init_container_runs_the_fetcher_over_the_plan() {
        let c = init_container("img", &SecurityContext::default());
        let cmd = c.command.expect("cmd").join(" ");
        assert!(cmd.starts_with("java "), "{cmd}");
        assert!(
            cmd.ends_with(&format!(
                "{CONFIG_MOUNT}/{FETCHER_KEY} {CONFIG_MOUNT}/{PLAN_KEY} {DOWNLOAD_PATH}"
            )),
            "{cmd}"
        );
        assert_eq!(
            c.termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError")
        );
        assert!(FETCHER_SOURCE.contains("public class FetchPlugins"));
        let env = c.env.expect("env");
        assert_eq!(
            (env[0].name.as_str(), env[0].value.as_deref()),
            ("LC_ALL", Some("C.UTF-8"))
        );
    }
}
