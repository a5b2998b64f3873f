//! Which records a data-subject erasure covers: those holding a value, in
//! clear under the field it names or anywhere as the token redaction made
//! of it. The store drops their payloads and keeps their leaf hashes.

use serde_json::Value;

use crate::error::EvidenceError;
use crate::redact::Redactor;

/// The records one erasure request covers: `FIELD=VALUE`.
#[derive(Debug, Clone)]
pub struct ErasureQuery {
    field: String,
    /// The value in the forms it may have been recorded in clear.
    clear: Vec<Value>,
    /// The tokens redaction made of those forms.
    tokens: Vec<String>,
}

impl Redactor {
    /// The query for `field=value`. The value is tried as written, as JSON
    /// (`42`, `true`), and in the canonical forms the output scanner
    /// tokenises (digits only for card numbers, upper case without spaces
    /// for IBANs, lower case for e-mail addresses).
    pub fn erasure_query(&self, field: &str, value: &str) -> Result<ErasureQuery, EvidenceError> {
        let mut clear = vec![Value::String(value.to_owned())];
        if let Ok(v) = serde_json::from_str::<Value>(value)
            && !v.is_string()
            && !v.is_object()
            && !v.is_array()
        {
            clear.push(v);
        }
        let mut forms = vec![value.to_owned()];
        if value.bytes().any(|b| b.is_ascii_digit())
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b' ' || b == b'-')
        {
            forms.push(value.chars().filter(char::is_ascii_digit).collect());
            forms.push(value.replace(' ', "-"));
        }
        forms.push(value.replace(' ', "").to_ascii_uppercase());
        forms.push(value.to_ascii_lowercase());
        forms.sort();
        forms.dedup();
        let mut tokens = Vec::new();
        for v in clear
            .iter()
            .cloned()
            .chain(forms.into_iter().map(Value::String))
        {
            tokens.push(self.token(&v)?);
        }
        tokens.sort();
        tokens.dedup();
        Ok(ErasureQuery {
            field: field.to_owned(),
            clear,
            tokens,
        })
    }
}

impl ErasureQuery {
    /// The field it names.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Whether `record` (a record's JSON) holds the value: under the field
    /// in clear or as a token, or as a token anywhere in a string.
    pub fn matches(&self, record: &Value) -> bool {
        match record {
            Value::Object(m) => m
                .iter()
                .any(|(k, v)| (k == &self.field && self.clear.contains(v)) || self.matches(v)),
            Value::Array(a) => a.iter().any(|v| self.matches(v)),
            Value::String(s) => {
                s.contains(crate::REDACTED_PREFIX) && self.tokens.iter().any(|t| s.contains(t))
            }
            _ => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::result::ResultRules;
    use serde_json::json;

    #[test]
    fn matches_tokens_and_clear_values_under_the_field() {
        let r = Redactor::new([5; 32]);
        let q = r.erasure_query("customer_id", "cus_42").unwrap();
        let redacted = r
            .redact(&json!({"customer_id": "cus_42"}), &["customer_id".into()])
            .unwrap();
        assert!(q.matches(&json!({ "args": redacted })));
        assert!(q.matches(&json!({ "detail": { "customer_id": "cus_42" } })));
        assert!(
            !q.matches(&json!({ "detail": { "note": "cus_42" } })),
            "clear values only under the field"
        );
        assert!(!q.matches(&json!({ "args": { "customer_id": "cus_43" } })));
        let other = Redactor::new([6; 32])
            .redact(&json!({"customer_id": "cus_42"}), &["customer_id".into()])
            .unwrap();
        assert!(
            !q.matches(&json!({ "args": other })),
            "another deployment's key"
        );
    }

    #[test]
    fn matches_scanned_values_in_any_written_form() {
        let r = Redactor::new([5; 32]);
        let rules = ResultRules {
            scan: true,
            ..Default::default()
        };
        let out = r
            .redact_result(
                &json!({ "note": "iban DE89 3704 0044 0532 0130 00, card 4111-1111-1111-1111" }),
                &rules,
            )
            .unwrap();
        let rec = json!({ "detail": { "result": out.value } });
        assert!(
            r.erasure_query("iban", "de89370400440532013000")
                .unwrap()
                .matches(&rec)
        );
        assert!(
            r.erasure_query("card", "4111 1111 1111 1111")
                .unwrap()
                .matches(&rec)
        );
        assert!(
            !r.erasure_query("card", "5555 5555 5555 4444")
                .unwrap()
                .matches(&rec)
        );
        let n = r.erasure_query("amount", "35000").unwrap();
        assert!(n.matches(&json!({ "args": { "amount": 35000 } })));
    }
}
