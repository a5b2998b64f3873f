//! `warden audit export | prune | checkpoint | public-key | rotate-key`

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use warden_evidence::SigningKeyPair;

use super::{Location, open, open_log, parse_time};
use crate::cli::Exit;

/// `warden audit export`
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub loc: Location,
    /// The JSONL file to write (`-` for standard output).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
}

pub async fn run(a: ExportArgs) -> anyhow::Result<Exit> {
    let (_data, log) = open_log(&a.loc).await?;
    // A fresh checkpoint, so the export ends at a signed tree head.
    let cp = log.checkpoint().await?;
    let store = log.store().clone();
    let at = warden_evidence::now();
    let n = if a.out.as_os_str() == "-" {
        let out = std::io::stdout().lock();
        store.export(BufWriter::new(out), at).await?
    } else {
        // Write next to the target, then rename: never a half-written export.
        let tmp = a.out.with_extension("partial");
        let f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create `{}`", tmp.display()))?;
        let mut w = BufWriter::new(f);
        let n = store.export(&mut w, at).await?;
        w.flush()?;
        w.into_inner()
            .map_err(|e| anyhow::anyhow!("{}", e.error()))?
            .sync_all()?;
        std::fs::rename(&tmp, &a.out)
            .with_context(|| format!("cannot write `{}`", a.out.display()))?;
        n
    };
    log.close().await?;
    eprintln!(
        "exported {n} records and their inclusion proofs, ending at the checkpoint of size {} \
         (key {:08x})",
        cp.checkpoint.size, cp.key_id
    );
    Ok(Exit::Ok)
}

/// `warden audit prune`
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub loc: Location,
    /// Drop the payload of records older than this (`90d`, `12h`) or before
    /// this RFC 3339 time.
    #[arg(long, value_name = "AGE")]
    pub older_than: String,
}

pub async fn prune(a: PruneArgs) -> anyhow::Result<Exit> {
    let cutoff = parse_time(&a.older_than)?;
    let (_data, log) = open_log(&a.loc).await?;
    // Sign the tree head first: pruning keeps hashes, so it stays provable.
    log.checkpoint().await?;
    let n = log.store().prune(cutoff).await?;
    log.close().await?;
    println!(
        "pruned the payload of {n} records before {}; their leaf hashes remain, so the log still verifies",
        warden_evidence::time_from_micros(cutoff)
    );
    Ok(Exit::Ok)
}

/// `warden audit checkpoint`, `warden audit rotate-key`
#[derive(Debug, clap::Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub loc: Location,
}

pub async fn checkpoint(a: CheckpointArgs) -> anyhow::Result<Exit> {
    let (_data, log) = open_log(&a.loc).await?;
    let cp = log.close().await?;
    print!("{}", cp.note);
    Ok(Exit::Ok)
}

pub async fn rotate_key(a: CheckpointArgs) -> anyhow::Result<Exit> {
    let (mut data, log) = open_log(&a.loc).await?;
    let old = data.signer().verifier();
    let next = SigningKeyPair::generate(old.name())?;
    let cp = log.rotate_key(next.clone()).await?;
    log.close().await?;
    data.replace_signer(next)?;
    println!("rotated: {:08x} -> {:08x}", old.key_id(), cp.key_id);
    println!("new public key: {}", data.signer().verifier());
    println!(
        "the old key signed a checkpoint over the rotation record, so it vouches for the new one"
    );
    Ok(Exit::Ok)
}

/// `warden audit public-key`
#[derive(Debug, clap::Args)]
pub struct PublicKeyArgs {
    #[command(flatten)]
    pub loc: Location,
}

pub async fn public_key(a: PublicKeyArgs) -> anyhow::Result<Exit> {
    let (data, store) = open(&a.loc).await?;
    store.close().await;
    println!("{}", data.signer().verifier());
    Ok(Exit::Ok)
}
