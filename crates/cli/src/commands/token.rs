//! `warden token new | hash`: bearer tokens for agents and people. The pack
//! stores only the hash; the token is shown once.

use std::io::Read;

use anyhow::Context as _;
use base64::Engine as _;
use clap::Subcommand;
use warden_model::Credentials;

use crate::cli::Exit;

/// `warden token`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a new random token and print it with the hash to put in the pack.
    New {
        /// The agent or person it is for (printed in the instructions only).
        #[arg(long = "for", value_name = "ID")]
        for_id: Option<String>,
        /// Print `{"token": .., "hash": ..}`.
        #[arg(long)]
        json: bool,
    },
    /// Print the pack hash of a token (`-` reads it from standard input).
    Hash {
        /// The token.
        token: String,
    },
}

/// Runs a `token` subcommand.
pub fn run(cmd: &TokenCommand) -> anyhow::Result<Exit> {
    match cmd {
        TokenCommand::New { for_id, json } => {
            let mut raw = [0u8; 32];
            getrandom::fill(&mut raw)
                .map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
            let token = format!(
                "wdn_{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
            );
            let hash = Credentials::hash_token(&token);
            if *json {
                println!("{}", serde_json::json!({ "token": token, "hash": hash }));
            } else {
                println!("token  {token}");
                println!("hash   {hash}");
                let whom = for_id.as_deref().unwrap_or("<id>");
                println!();
                println!("Give the token to {whom} once; it is not stored anywhere. In the pack:");
                println!("  tokens = [\"{hash}\"]");
            }
        }
        TokenCommand::Hash { token } => {
            let token = if token == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("cannot read the token from standard input")?;
                s.trim().to_owned()
            } else {
                token.clone()
            };
            if token.is_empty() {
                anyhow::bail!("the token is empty");
            }
            println!("{}", Credentials::hash_token(&token));
        }
    }
    Ok(Exit::Ok)
}
