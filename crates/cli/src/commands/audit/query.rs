//! `warden audit query`

use warden_store::{Filter, StoredRecord};

use super::{Location, open, parse_time};
use crate::cli::Exit;

/// `warden audit query`
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub loc: Location,
    /// Agent id.
    #[arg(long)]
    pub agent: Option<String>,
    /// Tool id.
    #[arg(long)]
    pub tool: Option<String>,
    /// Workflow id.
    #[arg(long)]
    pub workflow: Option<String>,
    /// Run id.
    #[arg(long)]
    pub run: Option<String>,
    /// Record kind (every kind is listed; docs/evidence.md says what each
    /// carries).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(
        warden_evidence::RecordKind::ALL.iter().map(|k| k.as_str())
    ))]
    pub kind: Option<String>,
    /// Decision: allow, deny, approval_required.
    #[arg(long, value_parser = ["allow", "deny", "approval_required"])]
    pub decision: Option<String>,
    /// Action status: denied, awaiting_approval, approved, succeeded, failed, ...
    #[arg(long)]
    pub status: Option<String>,
    /// Standardized code: policy_denied, approval_denied, tool_error, ...
    #[arg(long)]
    pub code: Option<String>,
    /// A determining policy id.
    #[arg(long)]
    pub policy: Option<String>,
    /// An approver.
    #[arg(long)]
    pub approver: Option<String>,
    /// From: RFC 3339 time, or a duration ago (2h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Until (exclusive): RFC 3339 time, or a duration ago.
    #[arg(long)]
    pub until: Option<String>,
    /// Text anywhere in the record (case-insensitive).
    #[arg(long)]
    pub text: Option<String>,
    /// Most records shown, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Print the records as JSON (one array).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: QueryArgs) -> anyhow::Result<Exit> {
    let filter = Filter {
        agent: a.agent,
        tool: a.tool,
        workflow: a.workflow,
        run: a.run,
        kind: a.kind,
        decision: a.decision,
        status: a.status,
        code: a.code,
        policy: a.policy,
        approver: a.approver,
        since_us: a.since.as_deref().map(parse_time).transpose()?,
        until_us: a.until.as_deref().map(parse_time).transpose()?,
        text: a.text,
        limit: a.limit,
        ..Filter::default()
    };
    let (_data, store) = open(&a.loc).await?;
    let found = store.query(&filter).await?;
    store.close().await;
    if a.json {
        let out: Vec<serde_json::Value> = found.iter().map(json).collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(Exit::Ok);
    }
    if found.is_empty() {
        println!("no records match");
        return Ok(Exit::Ok);
    }
    print_table(&found);
    if found.len() as u32 == filter.limit {
        println!(
            "(showing the newest {}; raise --limit for more)",
            filter.limit
        );
    }
    Ok(Exit::Ok)
}

fn json(r: &StoredRecord) -> serde_json::Value {
    match &r.record {
        Some(rec) => serde_json::to_value(rec).unwrap_or_default(),
        None => serde_json::json!({
            "seq": r.seq,
            "kind": r.kind,
            "time": warden_evidence::time_from_micros(r.time_us),
            "pruned": true,
        }),
    }
}

fn print_table(rows: &[StoredRecord]) {
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|s| {
            let r = s.record.as_ref();
            let get = |f: fn(&warden_evidence::Record) -> Option<String>| {
                r.and_then(f).unwrap_or_else(|| "-".into())
            };
            [
                s.seq.to_string(),
                warden_evidence::time_from_micros(s.time_us),
                s.kind.clone(),
                get(|r| r.agent.clone()),
                get(|r| r.tool.clone()),
                get(|r| r.decision().map(|d| d.to_string())),
                get(|r| {
                    r.status.map(|st| match &r.code {
                        Some(c) => format!("{st} ({c})"),
                        None => st.to_string(),
                    })
                }),
                if r.is_none() {
                    "(pruned)".into()
                } else {
                    get(|r| r.run.clone())
                },
            ]
        })
        .collect();
    let head = [
        "SEQ", "TIME", "KIND", "AGENT", "TOOL", "DECISION", "STATUS", "RUN",
    ];
    let mut width = head.map(str::len);
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let parts: Vec<String> = row
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(&head.map(String::from));
    for row in &cells {
        line(row);
    }
}
