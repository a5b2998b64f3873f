//! Reading a pack directory: the manifest, policy files and test files.
//!
//! Loading reports every problem it finds rather than stopping at the first:
//! a broken entry is skipped and recorded as a diagnostic, and the checks go on
//! over what did load.

mod references;
use references::Ref;
pub(crate) use references::RefKind;
mod resolve;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::error::{LoadError, ModelProblem};
use crate::manifest::{
    RawAgent, RawApproverGroup, RawPackInfo, RawPerson, RawSystem, RawTeam, RawTool, RawWorkflow,
    TOP_LEVEL_KEYS,
};
use crate::pack::{
    Agent, ApproverGroup, Credentials, Escalation, Pack, PackVersion, Person, Step, System, Team,
    Tool, Workflow,
};
use crate::source::{Location, SourceFile};
use crate::vocab::Role;

/// The manifest's file name.
pub const MANIFEST: &str = "warden.toml";
/// Folder of `*.cedar` files.
pub const POLICY_DIR: &str = "policies";
/// Folder of decision test files.
pub const TEST_DIR: &str = "tests";

/// A pack as loaded, with every problem found in the manifest.
#[derive(Debug)]
pub struct Loaded {
    /// What loaded; broken entries are left out.
    pub pack: Pack,
    /// Errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads the pack in `dir`. Fails only when it cannot be read; problems in its
/// content come back as diagnostics.
pub fn load(dir: impl AsRef<Path>) -> Result<Loaded, LoadError> {
    let root = dir.as_ref();
    if !root.is_dir() {
        return Err(LoadError::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    let manifest_path = root.join(MANIFEST);
    if !manifest_path.is_file() {
        return Err(LoadError::NoManifest {
            path: root.to_path_buf(),
        });
    }
    let manifest = Arc::new(read_source(root, &manifest_path)?);
    let policy_files = read_tree(root, POLICY_DIR, "cedar")?;
    let test_files = read_tree(root, TEST_DIR, "toml")?;
    let data_files = read_tree(root, crate::refdata::DATA_DIR, "json")?;
    let version = version_of(&manifest, &policy_files, &data_files);

    let mut cx = Cx {
        file: Arc::clone(&manifest),
        diags: Vec::new(),
        refs: Vec::new(),
        unloaded_tools: Default::default(),
        unloaded_routes: Default::default(),
        pattern_names: Default::default(),
    };
    let raw = cx.parse_manifest();
    let mut pack = Pack {
        root: root.to_path_buf(),
        name: String::new(),
        description: None,
        manifest,
        people: BTreeMap::new(),
        teams: BTreeMap::new(),
        agents: BTreeMap::new(),
        systems: BTreeMap::new(),
        tools: BTreeMap::new(),
        mcp_servers: BTreeMap::new(),
        mcp_names: BTreeMap::new(),
        approver_groups: BTreeMap::new(),
        workflows: BTreeMap::new(),
        routes: BTreeMap::new(),
        playbooks: BTreeMap::new(),
        drills: BTreeMap::new(),
        retention: crate::pack::DEFAULT_RETENTION,
        redaction: Default::default(),
        slack: None,
        reference_data: BTreeMap::new(),
        counters: Vec::new(),
        data_files,
        policy_files,
        test_files,
        version,
        unloaded_tools: std::mem::take(&mut cx.unloaded_tools),
    };
    cx.resolve(raw, &mut pack);
    cx.check_references(&pack);
    cx.check_paging(&pack);
    cx.check_playbooks(&pack);
    Ok(Loaded {
        pack,
        diagnostics: cx.diags,
    })
}

#[derive(Default)]
struct RawManifest {
    pack: Option<RawPackInfo>,
    people: Vec<RawPerson>,
    teams: Vec<RawTeam>,
    agents: Vec<RawAgent>,
    systems: Vec<RawSystem>,
    tools: Vec<(RawTool, Range<usize>)>,
    mcp_servers: Vec<(crate::mcp::RawMcpServer, Range<usize>)>,
    groups: Vec<RawApproverGroup>,
    workflows: Vec<RawWorkflow>,
    routes: Vec<(crate::oversight::RawRoute, Range<usize>)>,
    playbooks: Vec<(crate::oversight::RawPlaybook, Range<usize>)>,
    drills: Vec<(crate::oversight::RawDrill, Range<usize>)>,
    redaction: Option<crate::redaction::RawRedaction>,
    slack: Option<(crate::slack::RawSlack, Range<usize>)>,
    reference_data: Vec<crate::refdata::RawReferenceData>,
    counters: Vec<crate::counter::RawCounter>,
}

pub(crate) struct Cx {
    pub(crate) file: Arc<SourceFile>,
    diags: Vec<Diagnostic>,
    /// References between top-level entries, checked once all are known.
    refs: Vec<Ref>,
    /// Ids of tool entries that failed to load.
    pub(crate) unloaded_tools: std::collections::BTreeSet<String>,
    /// Ids of route entries that failed to load (reported once, where
    /// they are declared, not again where they are named).
    pub(crate) unloaded_routes: std::collections::BTreeSet<String>,
    /// Names of the pack's redaction patterns (kinds a tool may declare in
    /// `output_may_contain`).
    pattern_names: BTreeSet<String>,
}

impl Cx {
    pub(crate) fn loc(&self, span: Range<usize>) -> Location {
        Location::new(&self.file, span)
    }

    pub(crate) fn push(&mut self, problem: ModelProblem, span: Range<usize>) {
        let d = Diagnostic::new(&problem).at(self.loc(span));
        self.diags.push(d);
    }

    /// Checks a principal's token hashes and token variable.
    fn credentials(
        &mut self,
        owner: &str,
        tokens: Vec<Spanned<String>>,
        env: Option<Spanned<String>>,
        seen: &mut BTreeMap<String, String>,
    ) -> Credentials {
        let mut out = Credentials::default();
        for t in tokens {
            let value = t.get_ref();
            let ok = value
                .strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                // Never echo the value: it may be a pasted secret.
                self.push(ModelProblem::InvalidTokenHash, t.span());
                continue;
            }
            let hash = value.to_ascii_lowercase();
            if let Some(other) = seen.get(&hash) {
                let other = other.clone();
                self.push(ModelProblem::DuplicateToken { other }, t.span());
                continue;
            }
            seen.insert(hash.clone(), owner.to_owned());
            out.token_hashes.push(hash);
        }
        if let Some(e) = env {
            let name = e.get_ref();
            if valid_env_name(name) {
                out.token_env = Some(name.clone());
            } else {
                self.push(
                    ModelProblem::InvalidEnvName { name: name.clone() },
                    e.span(),
                );
            }
        }
        out
    }

    pub(crate) fn report(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn parse_manifest(&mut self) -> RawManifest {
        let file = Arc::clone(&self.file);
        let (doc, errors) = DeTable::parse_recoverable(file.text());
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            self.push(
                ModelProblem::Syntax {
                    message: e.message().trim_end_matches('\n').to_owned(),
                },
                span,
            );
        }
        let mut raw = RawManifest::default();
        for (key, value) in doc.get_ref() {
            match key.get_ref().as_ref() {
                "pack" => raw.pack = self.one(value),
                "people" => raw.people = self.many(key, value),
                "teams" => raw.teams = self.many(key, value),
                "agents" => raw.agents = self.many(key, value),
                "systems" => raw.systems = self.many(key, value),
                "tools" => {
                    raw.tools = self
                        .many_spanned(key, value)
                        .into_iter()
                        .collect::<Vec<_>>();
                }
                "mcp_servers" => raw.mcp_servers = self.many_spanned(key, value),
                "approver_groups" => raw.groups = self.many(key, value),
                "workflows" => raw.workflows = self.many(key, value),
                "routes" => raw.routes = self.many_spanned(key, value),
                "playbooks" => raw.playbooks = self.many_spanned(key, value),
                "drills" => raw.drills = self.many_spanned(key, value),
                "redaction" => raw.redaction = self.one(value),
                "slack" => raw.slack = self.one(value).map(|v| (v, value.span())),
                "reference_data" => raw.reference_data = self.many(key, value),
                "counters" => raw.counters = self.many(key, value),
                other => {
                    let help = did_you_mean(other, TOP_LEVEL_KEYS.iter().copied()).map_or_else(
                        || format!("known keys: {}", TOP_LEVEL_KEYS.join(", ")),
                        |s| format!("did you mean `{s}`?"),
                    );
                    let d = Diagnostic::new(&ModelProblem::UnknownSection {
                        key: other.to_owned(),
                    })
                    .at(self.loc(key.span()))
                    .help(help);
                    self.report(d);
                }
            }
        }
        raw
    }

    fn deserialize<T: DeserializeOwned>(&mut self, value: &Spanned<DeValue<'_>>) -> Option<T> {
        let whole = value.span();
        match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => Some(v),
            Err(e) => {
                let span = e.span().unwrap_or(whole);
                self.push(
                    ModelProblem::Shape {
                        message: e.message().trim_end_matches('\n').to_owned(),
                    },
                    span,
                );
                None
            }
        }
    }

    fn one<T: DeserializeOwned>(&mut self, value: &Spanned<DeValue<'_>>) -> Option<T> {
        self.deserialize(value)
    }

    fn many_spanned<T: DeserializeOwned>(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Spanned<DeValue<'_>>,
    ) -> Vec<(T, Range<usize>)> {
        let Some(items) = value.get_ref().as_array() else {
            self.push(
                ModelProblem::SectionType {
                    key: key.get_ref().to_string(),
                    expected: "an array of tables, written `[[key]]`",
                },
                value.span(),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match self.deserialize(item) {
                Some(v) => out.push((v, item.span())),
                None if key.get_ref() == "tools" => {
                    if let Some(id) = item.get_ref().get("id").and_then(|v| v.get_ref().as_str()) {
                        self.unloaded_tools.insert(id.to_owned());
                    }
                }
                None => {}
            }
        }
        out
    }

    fn many<T: DeserializeOwned>(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Spanned<DeValue<'_>>,
    ) -> Vec<T> {
        self.many_spanned(key, value)
            .into_iter()
            .map(|(v, _)| v)
            .collect()
    }

    /// Checks an id's spelling and that it is new in `seen`; true when usable.
    pub(crate) fn check_id<V>(
        &mut self,
        kind: &'static str,
        id: &Spanned<String>,
        seen: &BTreeMap<String, V>,
        at: impl Fn(&V) -> &Location,
    ) -> bool {
        if !valid_id(id.get_ref()) {
            self.push(
                ModelProblem::InvalidId {
                    kind,
                    id: id.get_ref().clone(),
                },
                id.span(),
            );
            return false;
        }
        if let Some(first) = seen.get(id.get_ref()) {
            let d = Diagnostic::new(&ModelProblem::DuplicateId {
                kind,
                id: id.get_ref().clone(),
            })
            .at(self.loc(id.span()))
            .label("declared again here")
            .help(format!("first declared at {}", at(first)));
            self.report(d);
            return false;
        }
        true
    }
}

/// Environment variable names: letters, digits and `_`, not starting with a
/// digit.
pub(crate) fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Ids: letters, digits, `_`, `-`, `.`; a letter or digit first; at most 128.
pub fn valid_id(id: &str) -> bool {
    id.len() <= 128
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn read_source(root: &Path, path: &Path) -> Result<SourceFile, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path
        .strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    Ok(SourceFile::new(name, path, text))
}

/// Every `*.{ext}` file under `root/dir`, recursively, sorted by name;
/// hidden files and folders are skipped.
fn read_tree(root: &Path, dir: &str, ext: &str) -> Result<Vec<Arc<SourceFile>>, LoadError> {
    let mut paths = Vec::new();
    let mut todo = vec![root.join(dir)];
    while let Some(d) = todo.pop() {
        if !d.is_dir() {
            continue;
        }
        let rd = std::fs::read_dir(&d).map_err(|source| LoadError::Io {
            path: d.clone(),
            source,
        })?;
        for entry in rd {
            let entry = entry.map_err(|source| LoadError::Io {
                path: d.clone(),
                source,
            })?;
            let p = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|e| e == ext) {
                paths.push(p);
            }
        }
    }
    paths.sort();
    paths
        .iter()
        .map(|p| read_source(root, p).map(Arc::new))
        .collect()
}

fn version_of(
    manifest: &SourceFile,
    policies: &[Arc<SourceFile>],
    data: &[Arc<SourceFile>],
) -> PackVersion {
    let mut h = Sha256::new();
    let files = policies.iter().chain(data).map(AsRef::as_ref);
    for f in std::iter::once(manifest).chain(files) {
        h.update(f.name().as_bytes());
        h.update([0]);
        h.update((f.text().len() as u64).to_be_bytes());
        h.update(f.text().as_bytes());
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    PackVersion(format!("sha256:{hex}").into())
}
