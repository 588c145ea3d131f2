//! `KafkaConnect.spec.build`: connector plugins downloaded when a worker starts, in the
//! shape of Strimzi's `KafkaConnect.spec.build.plugins[].artifacts` (types `jar`, `tgz`,
//! `zip`, `maven`, `other`, with `url` and `sha512sum`).
//!
//! Unlike Strimzi, no image is built (there is no `output`): an init container of the
//! worker image downloads every artifact into an `emptyDir` on `plugin.path` each time a
//! worker pod starts, checking the SHA-512 checksums given.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The Maven repository `maven` artifacts use when they name none: Maven Central.
pub const MAVEN_CENTRAL: &str = "https://repo1.maven.org/maven2";

/// Plugins the workers download when they start.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.plugins.all(p, self.plugins.exists_one(q, q.name == p.name))").message("build plugin names must be unique"))]
pub struct Build {
    /// The Maven repository (base URL of a Maven 2 layout) used by `maven` artifacts that
    /// set no `repository`, and by Maven coordinates in `spec.plugins`. Default: Maven
    /// Central, `https://repo1.maven.org/maven2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s']+$"))]
    pub maven_repository: Option<String>,

    /// The plugins: each is a directory of `plugin.path` holding its artifacts.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub plugins: Vec<BuildPlugin>,
}

/// One plugin: a directory of `plugin.path` with its artifacts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildPlugin {
    /// The plugin's directory name (as Strimzi: lower-case letters, digits, `-` and `_`).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9][-_a-z0-9]*[a-z0-9]$|^[a-z0-9]$")
    )]
    pub name: String,

    /// What to download into it.
    #[schemars(length(min = 1, max = 64))]
    pub artifacts: Vec<Artifact>,
}

/// How an artifact is fetched and stored.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactType {
    /// A jar at `url`, stored as it is.
    Jar,
    /// A gzipped tar at `url`, unpacked into the plugin's directory.
    Tgz,
    /// A zip at `url`, unpacked into the plugin's directory.
    Zip,
    /// The jar of Maven coordinates `group:artifact:version` from `repository` (its
    /// dependencies are not resolved: list them as further artifacts).
    Maven,
    /// Any file at `url`, stored as `fileName`.
    Other,
}

/// One downloadable artifact (Strimzi's `jar`/`tgz`/`zip`/`maven`/`other`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type == 'maven' ? (has(self.group) && has(self.artifact) && has(self.version) && !has(self.url)) : (has(self.url) && !has(self.group) && !has(self.artifact) && !has(self.version) && !has(self.repository))").message("a maven artifact needs group, artifact and version (and no url); the other types need url (and no Maven fields)"))]
#[x_kube(validation = Rule::new("self.type != 'other' || has(self.fileName)").message("an artifact of type other needs fileName"))]
pub struct Artifact {
    /// `jar`, `tgz`, `zip`, `maven` or `other`.
    #[serde(rename = "type")]
    pub type_: ArtifactType,

    /// Where to download it (`jar`, `tgz`, `zip`, `other`): `http://` or `https://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s']+$"))]
    pub url: Option<String>,

    /// The SHA-512 checksum (128 hex digits) the download must have; a mismatch stops the
    /// worker from starting (condition `PluginDownloadFailed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{128}$"))]
    pub sha512sum: Option<String>,

    /// The stored file's name (`other`; optional for `jar`, default the URL's last path
    /// segment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[A-Za-z0-9_][-_.A-Za-z0-9]*$")
    )]
    pub file_name: Option<String>,

    /// `maven`: the repository's base URL. Default `spec.build.mavenRepository`, else Maven
    /// Central.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s']+$"))]
    pub repository: Option<String>,

    /// `maven`: the group id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[A-Za-z0-9_][-_.A-Za-z0-9]*$")
    )]
    pub group: Option<String>,

    /// `maven`: the artifact id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[A-Za-z0-9_][-_.A-Za-z0-9]*$")
    )]
    pub artifact: Option<String>,

    /// `maven`: the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[A-Za-z0-9_][-_.A-Za-z0-9]*$")
    )]
    pub version: Option<String>,
}
