//! The durable outbox: notifications are rows committed with the incident
//! change that caused them; this task sends the due ones, records each
//! delivery as evidence, and retries failures with exponential backoff.
//!
//! A row is claimed with a short lease before it is sent, so replicas
//! sharing a database do not send it together, and a delivered row is
//! never sent again. A crash after the receiver answered but before the
//! delivery was committed sends the step once more on restart; receivers
//! drop such repeats by `X-Warden-Delivery` (PagerDuty by `dedup_key`).

use std::time::Duration;

use serde_json::json;
use warden_evidence::{Record, RecordKind};
use warden_model::DeliveryState;
use warden_store::{NotificationRow, StateWrite};

use crate::error::OversightError;
use crate::{Oversight, now_us, us};

/// How long a claimed notification is held by its sender.
const LEASE: Duration = Duration::from_secs(60);

pub(crate) async fn outbox_loop(o: Oversight) {
    loop {
        match o.deliver_due().await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "notification outbox"),
        }
        let _ = tokio::time::timeout(o.0.config.tick, o.0.outbox_wake.notified()).await;
    }
}

impl Oversight {
    /// Sends every due notification once; returns how many were tried.
    pub(crate) async fn deliver_due(&self) -> Result<usize, OversightError> {
        let Some(http) = self.0.http.clone() else {
            return Ok(0);
        };
        let store = self.store();
        let now = now_us();
        let due = store.due_notifications(now, 32).await?;
        let mut tried = 0;
        let mut sends = Vec::new();
        for n in due {
            if !store
                .claim_notification(&n.id, now, now + us(LEASE))
                .await?
            {
                continue;
            }
            tried += 1;
            let o = self.clone();
            let http = http.clone();
            sends.push(tokio::spawn(async move { o.deliver(&http, n).await }));
        }
        for s in sends {
            match s.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot record a delivery"),
                Err(e) => tracing::warn!(error = %e, "delivery task failed"),
                Ok(Ok(())) => {}
            }
        }
        Ok(tried)
    }

    async fn deliver(
        &self,
        http: &reqwest::Client,
        mut n: NotificationRow,
    ) -> Result<(), OversightError> {
        let router = self.router();
        let result = match router.get(&n.route) {
            Some(route) => crate::routes::send(http, route, &n.id, &n.step, &n.payload).await,
            None => Err(format!(
                "route `{}` is disabled: {}",
                n.route,
                router.disabled(&n.route).unwrap_or("no longer in the pack")
            )),
        };
        let now = now_us();
        n.attempts += 1;
        n.lease_us = None;
        n.updated_us = now;
        let cfg = &self.0.config;
        let mut records = Vec::new();
        match result {
            Ok(status) => {
                n.state = DeliveryState::Delivered;
                n.last_error = None;
                self.0.stats.notified(&n.route, "delivered");
                let mut r = Record::new(RecordKind::NotificationDelivered);
                r.message = Some(format!(
                    "incident {} {} delivered to `{}` ({}) after {} attempt{}",
                    n.incident_id,
                    n.step,
                    n.route,
                    n.kind,
                    n.attempts,
                    if n.attempts == 1 { "" } else { "s" }
                ));
                r.detail = Some(json!({
                    "incident": n.incident_id, "step": n.step, "route": n.route,
                    "kind": n.kind, "attempts": n.attempts, "status": status,
                    "queued": warden_evidence::time_from_micros(n.created_us),
                }));
                records.push(r);
            }
            Err(why) if n.attempts >= i64::from(cfg.max_attempts) => {
                n.state = DeliveryState::Failed;
                n.last_error = Some(why.clone());
                self.0.stats.notified(&n.route, "failed");
                tracing::error!(incident = %n.incident_id, route = %n.route, error = %why, "notification not delivered: giving up");
                let mut r = Record::new(RecordKind::NotificationFailed);
                r.code = Some("notification_failed".into());
                r.message = Some(format!(
                    "incident {} {} could not be delivered to `{}` after {} attempts: {why}",
                    n.incident_id, n.step, n.route, n.attempts
                ));
                r.detail = Some(json!({
                    "incident": n.incident_id, "step": n.step, "route": n.route,
                    "kind": n.kind, "attempts": n.attempts, "error": why,
                }));
                records.push(r);
            }
            Err(why) => {
                self.0.stats.notified(&n.route, "retry");
                tracing::warn!(incident = %n.incident_id, route = %n.route, attempt = n.attempts, error = %why, "notification failed; will retry");
                let exp = u32::try_from(n.attempts - 1).unwrap_or(u32::MAX).min(20);
                let wait = cfg
                    .first_backoff
                    .saturating_mul(2u32.saturating_pow(exp))
                    .min(cfg.max_backoff);
                n.next_us = now + us(wait);
                n.last_error = Some(why);
            }
        }
        self.0
            .log
            .commit(records, vec![StateWrite::Notification(n)])
            .await?;
        Ok(())
    }
}
