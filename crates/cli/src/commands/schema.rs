//! `warden schema PACK`

use crate::cli::{Exit, SchemaArgs};

pub fn run(args: &SchemaArgs) -> anyhow::Result<Exit> {
    let engine = match super::engine(&args.pack)? {
        Ok(e) => e,
        Err(exit) => return Ok(exit),
    };
    if args.json {
        println!("{:#}", engine.schema_json());
    } else {
        let text = engine
            .schema_text()
            .map_err(|e| anyhow::anyhow!("cannot print the schema: {e}"))?;
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
    }
    Ok(Exit::Ok)
}
