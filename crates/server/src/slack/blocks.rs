//! What an approval request looks like in Slack: a Block Kit message that
//! always shows the request's true state, and the form a denial is written
//! in.
//!
//! Every value that comes from an agent or a person (arguments, reasons,
//! comments) is escaped for Slack's `mrkdwn` (`&`, `<`, `>`), so it cannot
//! mention `@channel`, link elsewhere or fake formatting.

use serde_json::{Value, json};
use warden_model::{ApprovalState, Pack};
use warden_runtime::{ApprovalView, Verdict};

/// The `action_id` of the Approve button.
pub(crate) const APPROVE: &str = "warden_approve";
/// The `action_id` of the Deny button.
pub(crate) const DENY: &str = "warden_deny";
/// The `callback_id` of the denial form.
pub(crate) const DENY_FORM: &str = "warden_deny_form";
/// The block and action id of the reason in the denial form.
pub(crate) const REASON: &str = "reason";

/// Slack's limit on a section's text.
const SECTION_MAX: usize = 3000;

/// `text` with Slack's control characters escaped.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `text` cut to at most `max` characters, marked when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": cut(&text, SECTION_MAX) } })
}

/// A time Slack shows in the reader's time zone (`fallback` where it
/// cannot).
fn when(rfc3339: &str) -> String {
    match time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339) {
        Ok(t) => format!(
            "<!date^{}^{{date_short_pretty}} {{time}}|{}>",
            t.unix_timestamp(),
            escape(rfc3339)
        ),
        Err(_) => escape(rfc3339),
    }
}

fn person_name(pack: &Pack, id: &str) -> String {
    match pack.people.get(id) {
        Some(p) => match (&p.slack, &p.name) {
            (Some(u), _) => format!("<@{u}>"),
            (None, Some(n)) => escape(n),
            (None, None) => escape(id),
        },
        None => escape(id),
    }
}

/// The message showing request `v` (its recorded arguments, sensitive
/// fields redacted): `text` (the notification and fallback) and `blocks`.
pub(crate) fn message(v: &ApprovalView, pack: &Pack, console_url: Option<&str>) -> Value {
    let pending = v.state == ApprovalState::Pending;
    let (icon, headline) = match v.state {
        ApprovalState::Pending => (":hourglass_flowing_sand:", "Approval needed"),
        ApprovalState::Approved => (":white_check_mark:", "Approved"),
        ApprovalState::Denied => (":no_entry:", "Denied"),
        ApprovalState::Expired => (":alarm_clock:", "Expired unanswered"),
        ApprovalState::Cancelled => (":heavy_multiplication_x:", "Cancelled"),
    };
    let text = format!(
        "{headline}: {} wants {} ({}) — {}",
        v.agent,
        v.tool,
        v.risk.as_deref().unwrap_or("unknown risk"),
        v.approval_id
    );
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": cut(&format!("{headline}: {}", v.tool), 150), "emoji": true },
    })];
    let agent = pack.agents.get(&v.agent);
    let tool = pack.tools.get(&v.tool);
    let mut fields = vec![
        format!(
            "*Agent*\n{}{}",
            escape(&v.agent),
            agent
                .map(|a| format!(" (team {}, owner {})", escape(&a.team), escape(&a.owner)))
                .unwrap_or_default()
        ),
        format!(
            "*Tool*\n`{}`{}",
            escape(&v.tool),
            tool.map(|t| format!(" on {} ({})", escape(&t.system), t.access))
                .unwrap_or_default()
        ),
        format!("*Risk*\n{}", escape(v.risk.as_deref().unwrap_or("—"))),
        format!("*Requested*\n{}", when(&v.created)),
    ];
    if let Some(w) = &v.workflow {
        fields.push(format!(
            "*Workflow*\n{}{}",
            escape(w),
            v.run_id
                .as_ref()
                .map(|r| format!(" (run `{}`)", escape(r)))
                .unwrap_or_default()
        ));
    }
    blocks.push(json!({
        "type": "section",
        "fields": fields.iter().map(|f| json!({ "type": "mrkdwn", "text": cut(f, 2000) })).collect::<Vec<_>>(),
    }));
    blocks.push(section(format!("*Why approval is needed*\n{}", gates(v))));
    if let Some(r) = &v.reason {
        blocks.push(section(format!("*The agent's reason*\n{}", escape(r))));
    }
    if let Some(args) = &v.arguments {
        let pretty = serde_json::to_string_pretty(args).unwrap_or_default();
        blocks.push(section(format!(
            "*Arguments* (sensitive fields redacted)\n```{}```",
            escape(&cut(&pretty, SECTION_MAX - 80))
        )));
    }
    blocks.push(section(quorum(v, pack)));
    let mut context = vec![format!("Request `{}`", escape(&v.approval_id))];
    match (&v.due, pending) {
        (Some(d), true) => context.push(format!("{} {}", next_step(v, pack), when(d))),
        _ if !pending => context.push(format!("closed {}", when(&v.updated))),
        _ => {}
    }
    if let Some(base) = console_url {
        context.push(format!(
            "<{base}/console/approvals/{}|Open in the Warden console>",
            v.approval_id
        ));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": cut(&context.join(" · "), 2000) }],
    }));
    if pending {
        blocks.push(json!({
            "type": "actions",
            "block_id": "warden_answer",
            "elements": [
                {
                    "type": "button", "action_id": APPROVE, "style": "primary",
                    "text": { "type": "plain_text", "text": "Approve" },
                    "value": v.approval_id,
                    "confirm": {
                        "title": { "type": "plain_text", "text": "Approve this request?" },
                        "text": { "type": "mrkdwn", "text": cut(&format!(
                            "{} will be allowed to run `{}` with the arguments shown, once the quorum is met and policy still allows it.",
                            escape(&v.agent), escape(&v.tool)), 300) },
                        "confirm": { "type": "plain_text", "text": "Approve" },
                        "deny": { "type": "plain_text", "text": "Cancel" },
                    },
                },
                {
                    "type": "button", "action_id": DENY, "style": "danger",
                    "text": { "type": "plain_text", "text": "Deny…" },
                    "value": v.approval_id,
                },
            ],
        }));
    } else {
        blocks.push(section(format!("{icon} *{headline}*{}", outcome(v, pack))));
    }
    json!({ "text": cut(&text, 3000), "blocks": blocks })
}

/// What happens at the request's next deadline: an escalation to the next
/// group of an unanswered chain, or expiry.
fn next_step(v: &ApprovalView, pack: &Pack) -> String {
    let next: Vec<String> = v
        .requires
        .iter()
        .filter(|r| r.approvals < r.quorum)
        .filter_map(|r| r.eligible.last())
        .filter_map(|g| pack.approver_groups.get(g)?.escalation.as_ref())
        .map(|e| format!("`{}`", escape(&e.to)))
        .collect();
    if next.is_empty() {
        "expires unanswered".to_owned()
    } else {
        format!("escalates to {}", next.join(" and "))
    }
}

/// The gating policies and their reasons.
fn gates(v: &ApprovalView) -> String {
    let lines: Vec<String> = v
        .policies
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let id = p.get("id").and_then(Value::as_str).unwrap_or("policy");
            let reason = p
                .pointer("/annotations/reason")
                .and_then(Value::as_str)
                .map(|r| format!(": {}", escape(r)))
                .unwrap_or_default();
            format!("• `{}`{reason}", escape(id))
        })
        .collect();
    if lines.is_empty() {
        escape(&v.message)
    } else {
        lines.join("\n")
    }
}

/// Who must answer, how far each group is, and who answered.
fn quorum(v: &ApprovalView, pack: &Pack) -> String {
    let mut out = String::from("*Quorum*");
    for r in &v.requires {
        let via = if r.eligible.len() > 1 {
            format!(
                " (escalated: {} may answer)",
                r.eligible
                    .iter()
                    .map(|g| format!("`{}`", escape(g)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        };
        out.push_str(&format!(
            "\n`{}`: {} of {} approvals{via}",
            escape(&r.group),
            r.approvals,
            r.quorum
        ));
    }
    for vote in &v.votes {
        let (mark, verb) = match vote.decision {
            Verdict::Approve => (":white_check_mark:", "approved"),
            Verdict::Deny => (":no_entry:", "denied"),
        };
        out.push_str(&format!(
            "\n{mark} {} {verb} {}{}",
            person_name(pack, &vote.approver),
            when(&vote.at),
            vote.comment
                .as_ref()
                .map(|c| format!(": “{}”", escape(&cut(c, 500))))
                .unwrap_or_default()
        ));
    }
    out
}

/// How a closed request ended.
fn outcome(v: &ApprovalView, pack: &Pack) -> String {
    match v.state {
        ApprovalState::Approved => {
            let by: Vec<String> = v
                .votes
                .iter()
                .filter(|x| x.decision == Verdict::Approve)
                .map(|x| person_name(pack, &x.approver))
                .collect();
            format!(
                " by {} {}. Policy is evaluated again before the action runs.",
                by.join(", "),
                when(&v.updated)
            )
        }
        ApprovalState::Denied => {
            let by = v
                .votes
                .iter()
                .rev()
                .find(|x| x.decision == Verdict::Deny)
                .map(|x| person_name(pack, &x.approver))
                .unwrap_or_default();
            format!(" by {by} {}. The action will not run.", when(&v.updated))
        }
        ApprovalState::Expired => format!(" {}: the action will not run.", when(&v.updated)),
        ApprovalState::Cancelled => format!(" {}: the action will not run.", when(&v.updated)),
        ApprovalState::Pending => String::new(),
    }
}

/// The form a denial is written in (a modal), carrying where it was opened.
pub(crate) fn deny_form(v: &ApprovalView, channel: &str) -> Value {
    json!({
        "type": "modal",
        "callback_id": DENY_FORM,
        "private_metadata": json!({ "approval_id": v.approval_id, "channel": channel }).to_string(),
        "title": { "type": "plain_text", "text": "Deny request" },
        "submit": { "type": "plain_text", "text": "Deny" },
        "close": { "type": "plain_text", "text": "Cancel" },
        "blocks": [
            section(format!(
                "Deny `{}` by {} (request `{}`)? The action will not run.",
                escape(&v.tool), escape(&v.agent), escape(&v.approval_id)
            )),
            {
                "type": "input", "block_id": REASON,
                "label": { "type": "plain_text", "text": "Reason (recorded as evidence)" },
                "element": { "type": "plain_text_input", "action_id": REASON, "multiline": true, "max_length": 2000 },
            },
        ],
    })
}
