//! The data directory: the SQLite database (by default) and the secrets the
//! evidence layer needs, created on first start.
//!
//! ```text
//! DIR/warden.db        SQLite database (WAL: also warden.db-wal, warden.db-shm)
//! DIR/checkpoint.key   Ed25519 key that signs checkpoints (mode 0600)
//! DIR/redaction.key    HMAC key for sensitive argument fields (mode 0600)
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use warden_evidence::{Redactor, SigningKeyPair};

use crate::error::StoreError;

/// SQLite file name inside the data directory.
pub const DB_FILE: &str = "warden.db";
/// Checkpoint signing key file name.
pub const CHECKPOINT_KEY_FILE: &str = "checkpoint.key";
/// Redaction key file name.
pub const REDACTION_KEY_FILE: &str = "redaction.key";

/// An opened data directory and its keys.
#[derive(Debug, Clone)]
pub struct DataDir {
    path: PathBuf,
    signer: SigningKeyPair,
    redactor: Redactor,
}

impl DataDir {
    /// Opens `path`, creating it and its keys on first use.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |p: &Path, e: &dyn std::fmt::Display| StoreError::DataDir {
            path: p.display().to_string(),
            message: e.to_string(),
        };
        fs::create_dir_all(path).map_err(|e| err(path, &e))?;
        let key_path = path.join(CHECKPOINT_KEY_FILE);
        let signer = match fs::read_to_string(&key_path) {
            Ok(text) => SigningKeyPair::parse(&text).map_err(|e| err(&key_path, &e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let suffix = hex::encode(random_bytes::<4>().map_err(|e| err(&key_path, &e))?);
                let k = SigningKeyPair::generate(&format!("warden-audit-{suffix}"))?;
                write_secret(&key_path, &k.to_secret_string())?;
                k
            }
            Err(e) => return Err(err(&key_path, &e)),
        };
        let red_path = path.join(REDACTION_KEY_FILE);
        let redactor = match fs::read_to_string(&red_path) {
            Ok(text) => Redactor::parse(&text).map_err(|e| err(&red_path, &e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let r = Redactor::generate()?;
                write_secret(&red_path, &r.to_secret_string())?;
                r
            }
            Err(e) => return Err(err(&red_path, &e)),
        };
        Ok(Self {
            path: path.to_owned(),
            signer,
            redactor,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SQLite database file.
    pub fn sqlite_file(&self) -> PathBuf {
        self.path.join(DB_FILE)
    }

    /// The current checkpoint signing key.
    pub fn signer(&self) -> &SigningKeyPair {
        &self.signer
    }

    /// The redaction key.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Replaces the signing key file with `next` (atomically).
    pub fn replace_signer(&mut self, next: SigningKeyPair) -> Result<(), StoreError> {
        write_secret(
            &self.path.join(CHECKPOINT_KEY_FILE),
            &next.to_secret_string(),
        )?;
        self.signer = next;
        Ok(())
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| e.to_string())?;
    Ok(b)
}

/// Writes a secret file with mode 0600: to a temporary file, fsync, rename.
fn write_secret(path: &Path, text: &str) -> Result<(), StoreError> {
    let err = |e: std::io::Error| StoreError::DataDir {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let tmp = path.with_extension("tmp");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.write_all(b"\n").map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}
