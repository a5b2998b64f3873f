//! Signed checkpoints in the C2SP formats: a `tlog-checkpoint` body (origin,
//! tree size, base64 root hash, then extension lines) wrapped in a
//! `signed-note` with Ed25519 signatures.
//!
//! ```text
//! warden-audit-3fa2c1d0
//! 1024
//! 3Kx1...base64 root...=
//! timestamp 2026-11-25T20:57:19Z
//!
//! — warden-audit-3fa2c1d0 Az3grk...base64(key id || signature)...
//! ```
//!
//! Key ids follow the signed-note rule for Ed25519: the first four bytes of
//! `SHA-256(name || "\n" || 0x01 || public key)`. Keys are written in the
//! note ecosystem's text forms: `PRIVATE+KEY+<name>+<id>+<base64>` for the
//! signer, `<name>+<id>+<base64>` for verifiers.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::EvidenceError;
use crate::merkle::Hash;

const ALG_ED25519: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";

fn key_id(name: &str, public: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public.as_bytes());
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

/// The key that signs checkpoints. Kept in the data directory.
#[derive(Clone)]
pub struct SigningKeyPair {
    name: String,
    key: SigningKey,
}

impl fmt::Debug for SigningKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKeyPair({})", self.verifier())
    }
}

impl SigningKeyPair {
    /// A new key from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, EvidenceError> {
        if !valid_name(name) {
            return Err(EvidenceError::Key(format!("bad key name `{name}`")));
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| EvidenceError::Random(e.to_string()))?;
        Ok(Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`.
    pub fn parse(text: &str) -> Result<Self, EvidenceError> {
        let bad = |why: &str| EvidenceError::Key(format!("signing key: {why}"));
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("must start with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected PRIVATE+KEY+<name>+<id>+<key>"));
        };
        let raw = B64.decode(b64).map_err(|_| bad("key is not base64"))?;
        let seed: [u8; 32] = match raw.split_first() {
            Some((&ALG_ED25519, seed)) => seed.try_into().map_err(|_| bad("wrong key length"))?,
            _ => return Err(bad("not an Ed25519 key")),
        };
        let pair = Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        };
        if format!("{:08x}", pair.key_id()) != id {
            return Err(bad("key id does not match the key"));
        }
        Ok(pair)
    }

    /// The signer text form (secret).
    pub fn to_secret_string(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_id(),
            B64.encode(raw)
        )
    }

    /// The key name (also the log's origin line).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key id.
    pub fn key_id(&self) -> u32 {
        key_id(&self.name, &self.key.verifying_key())
    }

    /// The public half, for verifiers.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// Signs a checkpoint body, returning the signed note.
    pub fn sign(&self, checkpoint: &Checkpoint) -> SignedCheckpoint {
        let body = checkpoint.body();
        let sig = self.key.sign(body.as_bytes());
        let mut blob = self.key_id().to_be_bytes().to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        let note = format!("{body}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob));
        SignedCheckpoint {
            checkpoint: checkpoint.clone(),
            key_id: self.key_id(),
            note,
        }
    }
}

/// A public key that verifies checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key: VerifyingKey,
}

impl VerifierKey {
    /// Parses `<name>+<hex id>+<base64(0x01 || public key)>`.
    pub fn parse(text: &str) -> Result<Self, EvidenceError> {
        let bad = |why: &str| EvidenceError::Key(format!("public key `{}`: {why}", text.trim()));
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected <name>+<id>+<key>"));
        };
        if !valid_name(name) {
            return Err(bad("bad name"));
        }
        let raw = B64.decode(b64).map_err(|_| bad("key is not base64"))?;
        let bytes: [u8; 32] = match raw.split_first() {
            Some((&ALG_ED25519, k)) => k.try_into().map_err(|_| bad("wrong key length"))?,
            _ => return Err(bad("not an Ed25519 key")),
        };
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a valid Ed25519 point"))?;
        let v = Self {
            name: name.to_owned(),
            key,
        };
        if format!("{:08x}", v.key_id()) != id {
            return Err(bad("key id does not match the key"));
        }
        Ok(v)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key id.
    pub fn key_id(&self) -> u32 {
        key_id(&self.name, &self.key)
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.key_id(), B64.encode(raw))
    }
}

/// A tree head: the log's origin, size and root, and when it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (the signing key's name).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// Root hash over those leaves.
    pub root: Hash,
    /// When it was taken (RFC 3339), an extension line.
    pub timestamp: String,
}

impl Checkpoint {
    /// The note body: origin, size, base64 root, extension lines.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\ntimestamp {}\n",
            self.origin,
            self.size,
            B64.encode(self.root),
            self.timestamp
        )
    }

    fn parse_body(body: &str) -> Result<Self, EvidenceError> {
        let bad = |why: &str| EvidenceError::Checkpoint(why.to_owned());
        let mut lines = body.lines();
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size = lines
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("second line is not a tree size"))?;
        let root: Hash = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("third line is not a base64 SHA-256 root hash"))?;
        let timestamp = lines
            .find_map(|l| l.strip_prefix("timestamp "))
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            timestamp,
        })
    }
}

/// A checkpoint and its signed-note text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// What was signed.
    pub checkpoint: Checkpoint,
    /// The id of the key that signed it.
    pub key_id: u32,
    /// The full signed note.
    pub note: String,
}

impl SignedCheckpoint {
    /// Parses a signed note without checking its signature.
    pub fn parse(note: &str) -> Result<Self, EvidenceError> {
        let bad = |why: &str| EvidenceError::Checkpoint(why.to_owned());
        let (body, sigs) = note
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line between the body and its signatures"))?;
        let body = format!("{body}\n");
        let checkpoint = Checkpoint::parse_body(&body)?;
        let first = sigs
            .lines()
            .find_map(|l| l.strip_prefix(SIG_PREFIX))
            .ok_or_else(|| bad("no signature line"))?;
        let (_, b64) = first
            .split_once(' ')
            .ok_or_else(|| bad("malformed signature line"))?;
        let blob = B64
            .decode(b64)
            .map_err(|_| bad("signature is not base64"))?;
        let key_id = blob
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| bad("signature too short"))?;
        Ok(Self {
            checkpoint,
            key_id,
            note: note.to_owned(),
        })
    }

    /// Whether `key` made a valid signature over this note's body.
    pub fn verify(&self, key: &VerifierKey) -> bool {
        let Some((body, sigs)) = self.note.split_once("\n\n") else {
            return false;
        };
        let body = format!("{body}\n");
        if Checkpoint::parse_body(&body).ok().as_ref() != Some(&self.checkpoint) {
            return false;
        }
        sigs.lines()
            .filter_map(|l| l.strip_prefix(SIG_PREFIX))
            .filter_map(|l| l.split_once(' '))
            .filter(|(name, _)| *name == key.name)
            .filter_map(|(_, b64)| B64.decode(b64).ok())
            .filter(|blob| blob.len() == 68 && blob[..4] == key.key_id().to_be_bytes())
            .filter_map(|blob| Signature::from_slice(&blob[4..]).ok())
            .any(|sig| key.key.verify(body.as_bytes(), &sig).is_ok())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cp(size: u64) -> Checkpoint {
        Checkpoint {
            origin: "warden-audit-test".into(),
            size,
            root: crate::merkle::leaf_hash(b"x"),
            timestamp: "2026-11-25T00:00:00Z".into(),
        }
    }

    #[test]
    fn sign_parse_verify_round_trip() {
        let k = SigningKeyPair::generate("warden-audit-test").unwrap();
        let s = k.sign(&cp(42));
        assert!(s.note.starts_with("warden-audit-test\n42\n"));
        assert!(s.note.contains("\n\n\u{2014} warden-audit-test "));
        let parsed = SignedCheckpoint::parse(&s.note).ok();
        assert_eq!(parsed.as_ref(), Some(&s));
        assert!(s.verify(&k.verifier()));
        // The text forms of both keys round-trip.
        let v = VerifierKey::parse(&k.verifier().to_string()).ok();
        assert_eq!(v.as_ref(), Some(&k.verifier()));
        let again = SigningKeyPair::parse(&k.to_secret_string()).ok();
        assert_eq!(again.map(|a| a.verifier()), Some(k.verifier()));
    }

    #[test]
    fn edited_note_or_other_key_fails() {
        let k = SigningKeyPair::generate("warden-audit-test").unwrap();
        let other = SigningKeyPair::generate("warden-audit-test").unwrap();
        let s = k.sign(&cp(42));
        assert!(!s.verify(&other.verifier()));
        let forged = s.note.replacen("\n42\n", "\n41\n", 1);
        let f = SignedCheckpoint::parse(&forged).unwrap();
        assert_eq!(f.checkpoint.size, 41);
        assert!(!f.verify(&k.verifier()));
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert!(SignedCheckpoint::parse("just text").is_err());
        assert!(SignedCheckpoint::parse("o\nnot-a-number\nAAAA\n\n\u{2014} o AAAA\n").is_err());
        assert!(VerifierKey::parse("name+00000000+AAAA").is_err());
        assert!(VerifierKey::parse("garbage").is_err());
        assert!(SigningKeyPair::parse("PRIVATE+KEY+n+1+%%%").is_err());
        assert!(SigningKeyPair::generate("has space").is_err());
    }
}
