//! Redaction of sensitive argument fields and the hash of full arguments.
//!
//! A sensitive field's value is replaced by `hmac-sha256:<hex>`, an
//! HMAC-SHA256 under the deployment's redaction key over the value's
//! canonical JSON: equal values stay comparable across records (the same
//! customer shows the same token) and are never stored in clear.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical::to_canonical;
use crate::error::EvidenceError;
use crate::record::Record;

/// The prefix of a redacted value.
pub const REDACTED_PREFIX: &str = "hmac-sha256:";

/// Redacts with a per-deployment secret key.
#[derive(Clone)]
pub struct Redactor {
    key: [u8; 32],
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(..)")
    }
}

impl Redactor {
    /// A redactor with this key.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// A redactor with a fresh random key.
    pub fn generate() -> Result<Self, EvidenceError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| EvidenceError::Random(e.to_string()))?;
        Ok(Self { key })
    }

    /// Parses the key file's text (64 hex digits).
    pub fn parse(text: &str) -> Result<Self, EvidenceError> {
        let raw = hex::decode(text.trim())
            .map_err(|_| EvidenceError::Key("redaction key is not hex".into()))?;
        let key = raw
            .try_into()
            .map_err(|_| EvidenceError::Key("redaction key must be 32 bytes".into()))?;
        Ok(Self { key })
    }

    /// The key file's text.
    pub fn to_secret_string(&self) -> String {
        hex::encode(self.key)
    }

    /// The token that stands for `value`.
    pub fn token(&self, value: &Value) -> Result<String, EvidenceError> {
        let bytes = to_canonical(value)?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .map_err(|e| EvidenceError::Key(e.to_string()))?;
        mac.update(&bytes);
        Ok(format!(
            "{REDACTED_PREFIX}{}",
            hex::encode(mac.finalize().into_bytes())
        ))
    }

    /// `args` with each top-level `sensitive` field replaced by its token.
    pub fn redact(&self, args: &Value, sensitive: &[String]) -> Result<Value, EvidenceError> {
        let mut out = args.clone();
        if let Value::Object(map) = &mut out {
            for field in sensitive {
                if let Some(v) = map.get_mut(field) {
                    *v = Value::String(self.token(v)?);
                }
            }
        }
        Ok(out)
    }
}

impl Redactor {
    /// Fills `record`'s arguments from `args` with `sensitive` fields
    /// redacted and sets their hash. Call it once the record is complete.
    ///
    /// Redaction is structural: values are replaced where they sit in the
    /// arguments. Messages never carry sensitive values to begin with (the
    /// engine renders argument errors about them without the value), so
    /// nothing is searched for in rendered text, where an escaped form of a
    /// value would slip past.
    pub fn apply(
        &self,
        record: &mut Record,
        args: &Value,
        sensitive: &[String],
    ) -> Result<(), EvidenceError> {
        record.args = Some(self.redact(args, sensitive)?);
        record.args_sha256 = Some(args_hash(args)?);
        Ok(())
    }
}

impl Redactor {
    /// [`Redactor::apply`] with the sensitive fields `pack` declares for the
    /// record's tool (none for an unknown tool).
    pub fn apply_for_pack(
        &self,
        record: &mut Record,
        pack: &warden_model::Pack,
        args: &Value,
    ) -> Result<(), EvidenceError> {
        let sensitive = record
            .tool
            .as_ref()
            .and_then(|t| pack.tools.get(t))
            .map(|t| t.sensitive.as_slice())
            .unwrap_or_default();
        self.apply(record, args, sensitive)
    }
}

/// `sha256:<hex>` of the canonical JSON of the full (unredacted) arguments:
/// what approvals bind to.
pub fn args_hash(args: &Value) -> Result<String, EvidenceError> {
    Ok(format!(
        "sha256:{}",
        hex::encode(Sha256::digest(to_canonical(args)?))
    ))
}

/// `sha256=<hex>` of `<timestamp>.<body>` under `key`: the
/// `X-Warden-Signature` header of every signed webhook Warden sends.
pub fn webhook_signature(key: &[u8], timestamp: u64, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sensitive_fields_become_stable_tokens() {
        let r = Redactor::new([7; 32]);
        let a = json!({"customer_id": "cus_42", "amount_cents": 100});
        let b = json!({"amount_cents": 999, "customer_id": "cus_42"});
        let ra = r.redact(&a, &["customer_id".into()]).unwrap_or_default();
        let rb = r.redact(&b, &["customer_id".into()]).unwrap_or_default();
        assert_eq!(ra["customer_id"], rb["customer_id"]);
        assert_eq!(ra["amount_cents"], 100);
        let token = ra["customer_id"].as_str().unwrap_or_default();
        assert!(token.starts_with(REDACTED_PREFIX) && !token.contains("cus_42"));
        // Another deployment's key gives another token.
        let other = Redactor::new([8; 32]);
        let ro = other
            .redact(&a, &["customer_id".into()])
            .unwrap_or_default();
        assert_ne!(ro["customer_id"], ra["customer_id"]);
    }

    #[test]
    fn apply_redacts_arguments_in_place() {
        use crate::record::RecordKind;
        let r = Redactor::new([3; 32]);
        let args = json!({"to": "a@example.com\n", "template": "x"});
        let mut rec = Record::new(RecordKind::ActionDecided);
        r.apply(&mut rec, &args, &["to".into()]).unwrap();
        let text = serde_json::to_string(&rec).unwrap();
        assert!(!text.contains("a@example.com"), "{text}");
        assert!(text.contains(REDACTED_PREFIX));
        assert_eq!(rec.args.as_ref().unwrap()["template"], "x");
    }

    #[test]
    fn args_hash_ignores_key_order() {
        let a = args_hash(&json!({"a": 1, "b": [1, 2]})).unwrap_or_default();
        let b = args_hash(&json!({"b": [1, 2], "a": 1})).unwrap_or_default();
        assert_eq!(a, b);
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64);
    }

    #[test]
    fn key_text_round_trips_and_rejects_garbage() {
        let r = Redactor::new([1; 32]);
        let again = Redactor::parse(&r.to_secret_string()).ok();
        assert_eq!(again.map(|k| k.key), Some([1; 32]));
        assert!(Redactor::parse("zz").is_err());
        assert!(Redactor::parse("abcd").is_err());
    }
}
