//! `Engine::could_permit`: which tools `/mcp` lists to an agent. It must
//! never hide a tool some request could be allowed (or sent for approval),
//! and must hide tools every request would deny.

use serde_json::json;
use warden_model::Outcome;
use warden_policy::Engine;

use crate::common::{decide, examples};

#[test]
fn the_example_shows_each_agent_only_what_it_could_use() {
    let engine = Engine::load(examples().join("support-refunds"))
        .unwrap()
        .engine;
    let visible = |agent: &str| -> Vec<String> {
        engine
            .pack()
            .tools
            .keys()
            .filter(|t| engine.could_permit(agent, t))
            .cloned()
            .collect()
    };
    assert_eq!(
        visible("support-bot"),
        [
            "crm.lookup_customer",
            "crm.update_notes",
            "email.send_customer",
            "kb.get_article",
            "kb.search_articles",
            "stripe.refund"
        ]
    );
    assert_eq!(
        visible("intern-bot"),
        [
            "crm.lookup_customer",
            "kb.get_article",
            "kb.search_articles"
        ]
    );
    assert!(!engine.could_permit("nobody", "crm.lookup_customer"));
    assert!(!engine.could_permit("support-bot", "no.such.tool"));
}

#[test]
fn hidden_means_every_request_is_denied_and_shown_means_one_is_not() {
    let engine = Engine::load(examples().join("support-refunds"))
        .unwrap()
        .engine;
    // A sample of argument sets per tool, from small to over every cap.
    let samples = [
        (
            "stripe.refund",
            json!({"order_id":"ord_1","customer_id":"cus_1","amount_cents":500,"reason":"damaged"}),
        ),
        (
            "stripe.refund",
            json!({"order_id":"ord_1","customer_id":"cus_1","amount_cents":900000,"reason":"damaged"}),
        ),
        ("db.delete_rows", json!({"table":"t","where":"1=1"})),
        (
            "crm.update_notes",
            json!({"customer_id":"cus_1","note":"hi"}),
        ),
        ("crm.lookup_customer", json!({"customer_id":"cus_1"})),
        ("kb.search_articles", json!({"query":"x"})),
    ];
    for agent in ["support-bot", "billing-bot", "intern-bot"] {
        for (tool, args) in &samples {
            let d = decide(&engine, agent, tool, args.clone(), &["finance"]);
            if d.outcome != Outcome::Deny {
                assert!(
                    engine.could_permit(agent, tool),
                    "{agent} may get {:?} for {tool} but it is hidden",
                    d.outcome
                );
            }
            if !engine.could_permit(agent, tool) {
                assert_eq!(d.outcome, Outcome::Deny, "{agent} {tool}");
            }
        }
    }
}
