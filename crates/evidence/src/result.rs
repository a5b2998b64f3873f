//! Redaction of tool results before they are recorded: declared sensitive
//! fields (JSON Pointers, `*` for every element) become tokens, and whatever
//! the output scanner recognises is replaced in place by a token of the
//! value, so records stay comparable (and erasable) without holding it.

use serde_json::{Value, json};
use warden_model::{Pack, RedactionPattern};

use crate::error::EvidenceError;
use crate::redact::Redactor;
use crate::scan::{self, MAX_LISTED};

/// What to keep out of one tool's recorded result.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResultRules<'a> {
    /// Top-level fields redacted whole (the tool's sensitive argument names).
    pub fields: &'a [String],
    /// JSON Pointers redacted whole.
    pub pointers: &'a [String],
    /// Whether to scan strings and numbers.
    pub scan: bool,
    /// The pack's patterns (scanned when `scan`).
    pub patterns: &'a [RedactionPattern],
}

impl<'a> ResultRules<'a> {
    /// The rules `pack` declares for `tool` (scanning only, for a tool the
    /// pack does not know).
    pub fn for_tool(pack: &'a Pack, tool: &str) -> Self {
        let t = pack.tools.get(tool);
        Self {
            fields: t.map(|t| t.sensitive.as_slice()).unwrap_or_default(),
            pointers: t.map(|t| t.sensitive_result.as_slice()).unwrap_or_default(),
            scan: pack.redaction.scan_results,
            patterns: &pack.redaction.patterns,
        }
    }
}

/// A redacted result and what was found in it.
#[derive(Debug, Clone, PartialEq)]
pub struct RedactedResult {
    /// The result as it is recorded.
    pub value: Value,
    /// One entry per finding (at most [`MAX_LISTED`]): `kind` (`declared`
    /// for a declared field), `at` (JSON Pointer), `redacted`, and a masked
    /// `sample` for scanned kinds.
    pub findings: Vec<Value>,
    /// How many values were redacted in all.
    pub redacted: usize,
}

impl Redactor {
    /// `result` as it may be recorded under `rules`.
    pub fn redact_result(
        &self,
        result: &Value,
        rules: &ResultRules<'_>,
    ) -> Result<RedactedResult, EvidenceError> {
        let mut out = RedactedResult {
            value: result.clone(),
            findings: Vec::new(),
            redacted: 0,
        };
        let mut declared = Vec::new();
        if let Value::Object(map) = &mut out.value {
            for field in rules.fields {
                if let Some(v) = map.get_mut(field) {
                    *v = Value::String(self.token(v)?);
                    declared.push(format!("/{}", scan::pointer_segment(field)));
                }
            }
        }
        for p in rules.pointers {
            let segments: Vec<String> = if p.is_empty() {
                Vec::new()
            } else {
                p[1..].split('/').map(unescape).collect()
            };
            let mut hits = Vec::new();
            at_pointer(
                &mut out.value,
                &segments,
                &mut String::new(),
                &mut |at, v| {
                    hits.push(at.to_owned());
                    self.token(v).map(|t| *v = Value::String(t))
                },
            )?;
            declared.extend(hits);
        }
        for at in declared {
            out.note(json!({ "kind": "declared", "at": at, "redacted": true }));
        }
        if rules.scan {
            let mut value = std::mem::take(&mut out.value);
            self.scan_in_place(&mut value, &mut String::new(), rules.patterns, &mut out)?;
            out.value = value;
        }
        Ok(out)
    }

    fn scan_in_place(
        &self,
        v: &mut Value,
        at: &mut String,
        patterns: &[RedactionPattern],
        out: &mut RedactedResult,
    ) -> Result<(), EvidenceError> {
        match v {
            Value::String(s) if !s.starts_with(crate::REDACTED_PREFIX) => {
                let found = scan::scan_str(s, patterns);
                if found.is_empty() {
                    return Ok(());
                }
                let mut text = String::with_capacity(s.len());
                let mut last = 0;
                for m in found {
                    out.note(json!({
                        "kind": m.kind, "at": at, "redacted": m.is_redacted(), "sample": m.sample,
                    }));
                    if m.is_redacted() {
                        text.push_str(&s[last..m.range.start]);
                        let token = self.token(&Value::String(m.normalized))?;
                        text.push_str(&format!("[{} {token}]", m.kind));
                        last = m.range.end;
                    }
                }
                text.push_str(&s[last..]);
                *s = text;
            }
            Value::Number(n) => {
                let digits = n.to_string();
                if let Some(m) = scan::scan_str(&digits, patterns)
                    .into_iter()
                    .find(|m| m.is_redacted())
                {
                    out.note(json!({
                        "kind": m.kind, "at": at, "redacted": true, "sample": m.sample,
                    }));
                    let token = self.token(&Value::String(m.normalized))?;
                    *v = Value::String(format!("[{} {token}]", m.kind));
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter_mut().enumerate() {
                    let len = at.len();
                    at.push('/');
                    at.push_str(&i.to_string());
                    self.scan_in_place(x, at, patterns, out)?;
                    at.truncate(len);
                }
            }
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    let len = at.len();
                    at.push('/');
                    at.push_str(&scan::pointer_segment(k));
                    self.scan_in_place(x, at, patterns, out)?;
                    at.truncate(len);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl RedactedResult {
    fn note(&mut self, finding: Value) {
        if finding["redacted"] == true {
            self.redacted += 1;
        }
        if self.findings.len() < MAX_LISTED {
            self.findings.push(finding);
        }
    }
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// Calls `f` on every value `segments` reach in `v` (`*` reaches every
/// element or member), with its concrete pointer.
fn at_pointer(
    v: &mut Value,
    segments: &[String],
    at: &mut String,
    f: &mut impl FnMut(&str, &mut Value) -> Result<(), EvidenceError>,
) -> Result<(), EvidenceError> {
    let Some((head, rest)) = segments.split_first() else {
        return f(at, v);
    };
    let len = at.len();
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if head == "*" || head == k {
                    at.push('/');
                    at.push_str(&scan::pointer_segment(k));
                    at_pointer(x, rest, at, f)?;
                    at.truncate(len);
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                if head == "*" || *head == i.to_string() {
                    at.push('/');
                    at.push_str(&i.to_string());
                    at_pointer(x, rest, at, f)?;
                    at.truncate(len);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CARD: &str = "4111 1111 1111 1111";
    const SSN: &str = "123-45-6789";
    const IBAN: &str = "DE89370400440532013000";

    fn rules<'a>(pointers: &'a [String]) -> ResultRules<'a> {
        ResultRules {
            fields: &[],
            pointers,
            scan: true,
            patterns: &[],
        }
    }

    #[test]
    fn scanned_values_are_replaced_by_tokens_in_place() {
        let r = Redactor::new([9; 32]);
        let result = json!({
            "customer": { "name": "Ada", "email": "ada@example.com" },
            "notes": format!("card {CARD}, ssn {SSN}, iban {IBAN}"),
            "cards": [4111111111111111u64],
        });
        let out = r.redact_result(&result, &rules(&[])).unwrap();
        let text = out.value.to_string();
        for clear in ["4111", SSN, IBAN] {
            assert!(!text.contains(clear), "{clear} left in {text}");
        }
        assert_eq!(out.value["customer"]["email"], "ada@example.com");
        assert!(
            out.value["notes"]
                .as_str()
                .unwrap()
                .starts_with("card [card_number hmac-sha256:")
        );
        // The same card in another form gives the same token.
        let a = r
            .redact_result(&json!("4111111111111111"), &rules(&[]))
            .unwrap();
        let b = r
            .redact_result(&json!("4111-1111-1111-1111"), &rules(&[]))
            .unwrap();
        assert_eq!(a.value, b.value);
        assert_eq!(out.redacted, 4);
        let kinds: Vec<&str> = out
            .findings
            .iter()
            .filter_map(|f| f["kind"].as_str())
            .collect();
        assert_eq!(
            kinds,
            ["email", "card_number", "us_ssn", "iban", "card_number"]
        );
    }

    #[test]
    fn declared_pointers_redact_whole_values_with_wildcards() {
        let r = Redactor::new([9; 32]);
        let result = json!({
            "employees": [
                { "id": "e1", "salary": { "base": 90000, "currency": "EUR" } },
                { "id": "e2", "salary": { "base": 75000, "currency": "EUR" } },
            ],
            "a/b": "slash",
        });
        let ptrs = vec!["/employees/*/salary".to_owned(), "/a~1b".to_owned()];
        let out = r.redact_result(&result, &rules(&ptrs)).unwrap();
        assert_eq!(out.value["employees"][1]["id"], "e2");
        assert!(
            out.value["employees"][0]["salary"]
                .as_str()
                .unwrap()
                .starts_with("hmac-sha256:")
        );
        assert!(!out.value.to_string().contains("90000"));
        assert!(
            out.value["a/b"]
                .as_str()
                .unwrap()
                .starts_with("hmac-sha256:")
        );
        let ats: Vec<&str> = out
            .findings
            .iter()
            .filter_map(|f| f["at"].as_str())
            .collect();
        assert_eq!(ats, ["/employees/0/salary", "/employees/1/salary", "/a~1b"]);
        // The whole result.
        let all = r.redact_result(&result, &rules(&["".to_owned()])).unwrap();
        assert!(all.value.as_str().unwrap().starts_with("hmac-sha256:"));
    }

    #[test]
    fn nothing_found_leaves_the_result_as_it_was() {
        let r = Redactor::new([9; 32]);
        let result = json!({ "status": "ok", "n": 42, "when": "2026-12-03" });
        let out = r.redact_result(&result, &rules(&[])).unwrap();
        assert_eq!(out.value, result);
        assert!(out.findings.is_empty());
    }
}
