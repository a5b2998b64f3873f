//! Paging through the real server: a missed response window escalates
//! along the owner's chain (signed webhook → Slack → PagerDuty Events v2)
//! and acknowledging stops it; a restart between trigger and delivery
//! loses no page and sends none twice.

use std::time::Duration;

use serde_json::json;

use crate::common::Receiver;
use crate::oversight::{
    ROUTING_KEY, incident, incidents, pack, pages, propose, show, signed, start, wait,
};

#[test]
fn a_missed_window_escalates_and_acknowledging_stops_it() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = Receiver::start(Duration::ZERO, 0);
    let pack = pack(
        tmp.path(),
        "support-refunds",
        &[(
            "owner = \"olivia\"\nrespond_within = \"15m\"\ndescription = \"An agent keeps",
            "owner = \"olivia\"\nrespond_within = \"2s\"\ndescription = \"An agent keeps",
        )],
    );
    let server = start(&tmp.path().join("data"), &pack, &hook.url);
    let critical = |token: &str| {
        propose(
            &server,
            token,
            json!({ "tool": "stripe.refund", "arguments": { "order_id": "ord_9", "customer_id": "cus_9", "amount_cents": 900000, "reason": "other" } }),
        )
    };

    // Nobody answers: olivia's webhook, then her Slack, then the support
    // team's PagerDuty service, each after a missed window.
    critical("demo-support-bot");
    let i = incident(&server, "policy-violations", "agent:support-bot");
    let id = i["id"].as_str().unwrap().to_owned();
    let (_, slack) = wait("the Slack escalation", || {
        pages(&hook, "/slack", &id).into_iter().next()
    });
    let text = slack["text"].as_str().unwrap();
    assert!(text.contains("Escalated") && text.contains(&id), "{slack}");
    assert_eq!(slack["blocks"][0]["type"], "section", "{slack}");
    assert_eq!(slack["blocks"][0]["text"]["type"], "mrkdwn", "{slack}");
    let (_, pd) = wait("the PagerDuty escalation", || {
        pages(&hook, "/pagerduty", &id).into_iter().next()
    });
    assert_eq!(pd["routing_key"], ROUTING_KEY, "{pd}");
    assert_eq!(pd["event_action"], "trigger", "{pd}");
    assert_eq!(pd["dedup_key"], id.as_str(), "{pd}");
    assert_eq!(pd["payload"]["severity"], "critical", "{pd}");
    assert_eq!(pd["payload"]["source"], "warden/support-refunds", "{pd}");
    assert!(
        pd["payload"]["summary"]
            .as_str()
            .unwrap()
            .contains("refund-cap-5000"),
        "{pd}"
    );
    let v = wait("the breach after the last route", || {
        let v = show(&server, &id);
        (v["breaches"].as_i64() >= Some(3)).then_some(v)
    });
    assert_eq!(v["level"], 2, "{v}");
    assert!(v.get("acknowledge_by").is_none(), "no further route: {v}");
    // Acknowledged, PagerDuty hears of it too (same dedup key).
    let (status, v) = server.post(&format!("/v1/incidents/{id}/ack"), "demo-olivia", "{}");
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("acknowledged")),
        "{v}"
    );
    let (_, ack) = wait("PagerDuty's acknowledge", || {
        pages(&hook, "/pagerduty", &id)
            .into_iter()
            .find(|(_, v)| v["event_action"] == "acknowledge")
    });
    assert_eq!(ack["dedup_key"], id.as_str());

    // Acknowledged within the window: no escalation, ever.
    critical("demo-billing-bot");
    let i = incident(&server, "policy-violations", "agent:billing-bot");
    let id2 = i["id"].as_str().unwrap().to_owned();
    let (status, v) = server.post(
        &format!("/v1/incidents/{id2}/ack"),
        "demo-olivia",
        r#"{"note":"on it"}"#,
    );
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("acknowledged")),
        "{v}"
    );
    std::thread::sleep(Duration::from_secs(5));
    let v = show(&server, &id2);
    assert_eq!(
        (v["breaches"].as_i64(), v["level"].as_i64()),
        (Some(0), Some(0)),
        "{v}"
    );
    assert!(
        pages(&hook, "/slack", &id2).is_empty(),
        "escalated after ack"
    );
    // Repeat triggers group into the open incident.
    critical("demo-billing-bot");
    let v = wait("the grouped trigger", || {
        let v = show(&server, &id2);
        (v["triggers"].as_i64() >= Some(2)).then_some(v)
    });
    assert_eq!(v["id"], id2.as_str());
    assert_eq!(
        incidents(&server)
            .iter()
            .filter(|i| i["dedup_key"] == "agent:billing-bot")
            .count(),
        1
    );

    // Bad answers: clear errors, nothing changes.
    let (status, e) = server.post(&format!("/v1/incidents/{id2}/ack"), "demo-olivia", "{}");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("invalid_transition")),
        "{e}"
    );
    let (status, e) = server.post("/v1/incidents/inc_nope/ack", "demo-olivia", "{}");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("unknown_incident")),
        "{e}"
    );
    let (status, e) = server.post(&format!("/v1/incidents/{id2}/resolve"), "demo-carol", "{}");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{e}"
    );
    let (status, e) = server.post(
        &format!("/v1/incidents/{id2}/resolve"),
        "demo-olivia",
        r#"{"nope":1}"#,
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("invalid_body")),
        "{e}"
    );
    let (status, e) = server.get("/v1/incidents", Some("demo-support-bot"));
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{e}"
    );
    let (status, e) = server.get("/v1/incidents?state=sleeping", Some("demo-olivia"));
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_query")),
        "{e}"
    );
    let (status, e) = server.get("/v1/views/runs?idle=soon", Some("demo-olivia"));
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_query")),
        "{e}"
    );
    assert_eq!(show(&server, &id2)["state"], "acknowledged");
    assert!(server.stop().success());
}

#[test]
fn a_restart_between_trigger_and_delivery_loses_no_page() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A port with nobody listening yet: delivery fails until it opens.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let hook_url = format!("http://{addr}");
    let pack = pack(
        tmp.path(),
        "it-ops",
        &[("approval_pending = \"15m\"", "approval_pending = \"1s\"")],
    );
    let server = start(&data, &pack, &hook_url);

    // A production restart left waiting: the team-owned playbook pages
    // whoever the SRE rotation has on call.
    let a = propose(
        &server,
        "demo-sre-bot",
        json!({ "tool": "k8s.restart_service", "arguments": { "environment": "production", "service": "checkout" } }),
    );
    assert_eq!(a["status"], "awaiting_approval", "{a}");
    let stuck = incident(&server, "stalled-remediation", "approval:");
    assert_eq!(stuck["owner"], "sre");
    let on_call = stuck["on_call"].as_str().unwrap();
    assert!(["priya", "marco", "lee"].contains(&on_call), "{stuck}");
    let stuck_id = stuck["id"].as_str().unwrap().to_owned();

    // A critical attempt: sre-bot is paused at once and olivia is paged.
    let a = propose(
        &server,
        "demo-sre-bot",
        json!({ "tool": "storage.delete_volume", "arguments": { "environment": "production", "volume_id": "vol-1" } }),
    );
    assert_eq!(a["code"], "policy_denied", "{a}");
    let i = incident(&server, "destructive-attempts", "agent:sre-bot");
    let id = i["id"].as_str().unwrap().to_owned();
    assert_eq!(i["severity"], "critical");
    let a = propose(
        &server,
        "demo-sre-bot",
        json!({ "tool": "metrics.query", "arguments": { "environment": "staging", "query": "up" } }),
    );
    assert_eq!(a["code"], "agent_paused", "{a}");
    let v = wait("a failed attempt", || {
        let v = show(&server, &id);
        (v["notifications"][0]["attempts"].as_i64() >= Some(1)).then_some(v)
    });
    assert_eq!(v["notifications"][0]["state"], "pending", "{v}");
    assert!(v["notifications"][0]["last_error"].is_string(), "{v}");
    assert!(server.stop().success());

    // The receiver comes up; so does Warden, from the same data.
    let hook = Receiver::start_at(&addr);
    let server = start(&data, &pack, &hook_url);
    let got = wait("the page after the restart", || {
        let p = pages(&hook, "/webhook", &id);
        (!p.is_empty()).then_some(p)
    });
    assert!(signed(&got[0].0));
    assert_eq!(
        got[0].0.headers["x-warden-delivery"],
        format!("{id}:opened:olivia-webhook")
    );
    let v = wait("the delivery recorded", || {
        let v = show(&server, &id);
        (v["notifications"][0]["state"] == "delivered").then_some(v)
    });
    assert!(
        v["notifications"][0]["attempts"].as_i64().unwrap() >= 2,
        "{v}"
    );
    // Delivered once: never again, also across another restart.
    assert!(server.stop().success());
    let server = start(&data, &pack, &hook_url);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pages(&hook, "/webhook", &id).len(), 1);
    let (_, slack) = wait("the team's Slack page", || {
        pages(&hook, "/slack", &stuck_id).into_iter().next()
    });
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .contains("stalled-remediation"),
        "{slack}"
    );
    assert_eq!(pages(&hook, "/webhook", &id).len(), 1);
    assert_eq!(show(&server, &id)["on_call"], "olivia");
    assert!(server.stop().success());
}
