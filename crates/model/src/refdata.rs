//! `[[reference_data]]`: facts a policy reads that are not policies — each
//! customer's known payees, the services in production — as entities of a
//! Cedar type, with attributes, kept in JSON files under `data/` and
//! reloaded with the pack.
//!
//! ```toml
//! [[reference_data]]
//! type = "Customer"                  # the Cedar entity type policies name
//! file = "data/customers.json"       # {"cus_42": {"payees": ["acct_1"]}, ...}
//! [reference_data.attributes]        # JSON Schema of each entity's attributes
//! type = "object"
//! required = ["payees"]
//! properties.payees = { type = "array", items = { type = "string" } }
//! ```
//!
//! Policies then read `Customer::"cus_42".payees` (typed in the generated
//! schema). This crate reads the files and checks their shape; the policy
//! crate checks the attributes against their types.

use std::ops::Range;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::source::{Location, SourceFile};

/// The folder reference data files live in.
pub const DATA_DIR: &str = "data";

/// Entity types Warden itself declares: reference data may not reuse them.
const RESERVED: &[&str] = &["Agent", "Team", "Person", "System", "Action"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReferenceData {
    #[serde(rename = "type")]
    ty: Spanned<String>,
    file: Spanned<String>,
    #[serde(default)]
    attributes: Option<Spanned<serde_json::Value>>,
    #[serde(default)]
    description: Option<String>,
}

/// One type of reference entities and its entities.
#[derive(Debug, Clone)]
pub struct ReferenceData {
    /// The Cedar entity type, e.g. `Customer`.
    pub type_name: String,
    /// The file, relative to the pack (`data/customers.json`).
    pub file: String,
    /// JSON Schema of each entity's attributes (an object schema).
    pub attributes: serde_json::Value,
    /// The entities: id → attributes.
    pub entities: serde_json::Map<String, serde_json::Value>,
    /// What it is.
    pub description: Option<String>,
    /// Where it is declared.
    pub at: Location,
}

type Problem = (String, Option<Location>, Range<usize>);

impl RawReferenceData {
    /// Resolves the entry against the pack's data files.
    pub(crate) fn resolve(
        self,
        files: &[Arc<SourceFile>],
        loc: impl Fn(Range<usize>) -> Location,
    ) -> Result<ReferenceData, Vec<Problem>> {
        let mut problems: Vec<Problem> = Vec::new();
        let ty = self.ty.get_ref();
        let well_formed = ty.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && ty.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !well_formed {
            problems.push((
                format!("`{ty}` is not an entity type name: a capital letter, then letters, digits or `_`"),
                None,
                self.ty.span(),
            ));
        } else if RESERVED.contains(&ty.as_str()) {
            problems.push((
                format!("`{ty}` is an entity type of Warden's own: choose another name"),
                None,
                self.ty.span(),
            ));
        }
        let attributes = match self.attributes {
            Some(a) if a.get_ref().get("type").and_then(|t| t.as_str()) == Some("object") => {
                a.into_inner()
            }
            Some(a) => {
                problems.push((
                    "`attributes` must be an object schema (`type = \"object\"`)".to_owned(),
                    None,
                    a.span(),
                ));
                serde_json::Value::Null
            }
            None => serde_json::json!({"type": "object", "properties": {}}),
        };
        let name = self.file.get_ref().trim_start_matches("./");
        let Some(file) = files.iter().find(|f| f.name() == name) else {
            problems.push((
                format!(
                    "no file `{name}` in the pack: reference data lives in `{DATA_DIR}/` as `.json` files"
                ),
                None,
                self.file.span(),
            ));
            return Err(problems);
        };
        let entities = match serde_json::from_str::<serde_json::Value>(file.text()) {
            Ok(serde_json::Value::Object(m)) => {
                for (id, attrs) in &m {
                    if !attrs.is_object() {
                        problems.push((
                            format!("entity `{id}` must be an object of attributes"),
                            Some(Location::new(file, 0..0)),
                            self.file.span(),
                        ));
                    }
                }
                m
            }
            Ok(_) => {
                problems.push((
                    "the file must hold one JSON object: entity id → attributes".to_owned(),
                    Some(Location::new(file, 0..0)),
                    self.file.span(),
                ));
                serde_json::Map::new()
            }
            Err(e) => {
                let offset = offset_of(file.text(), e.line(), e.column());
                problems.push((
                    format!("not valid JSON: {e}"),
                    Some(Location::new(file, offset..offset)),
                    self.file.span(),
                ));
                serde_json::Map::new()
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ReferenceData {
            type_name: self.ty.into_inner(),
            file: name.to_owned(),
            attributes,
            entities,
            description: self.description,
            at: loc(self.file.span()),
        })
    }
}

/// The byte offset of 1-based `line` and `column` in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (start + column.saturating_sub(1)).min(text.len())
}

impl crate::load::Cx {
    /// `[[reference_data]]`: each entry's file read and checked; one entry
    /// per type.
    pub(crate) fn resolve_reference_data(
        &mut self,
        raw: Vec<RawReferenceData>,
        pack: &mut crate::Pack,
    ) {
        let files = pack.data_files.clone();
        for r in raw {
            let ty = r.ty.clone();
            let file = std::sync::Arc::clone(&self.file);
            match r.resolve(&files, |span| Location::new(&file, span)) {
                Ok(d) => {
                    if let Some(first) = pack.reference_data.get(&d.type_name) {
                        let message = format!(
                            "reference data of type `{}` is declared twice (first at {})",
                            d.type_name, first.at
                        );
                        self.push(crate::ModelProblem::ReferenceData { message }, ty.span());
                        continue;
                    }
                    pack.reference_data.insert(d.type_name.clone(), d);
                }
                Err(problems) => {
                    for (message, in_file, span) in problems {
                        let d =
                            crate::Diagnostic::new(&crate::ModelProblem::ReferenceData { message });
                        let d = match in_file {
                            Some(at) => d.at(at),
                            None => d.at(self.loc(span)),
                        };
                        self.report(d);
                    }
                }
            }
        }
    }
}
