//! Waiting for actions: long-polls and the proposal that waits for its
//! enforce execution subscribe to a `watch` channel per action; the
//! runtime publishes to it when the action is final, or approved for the
//! agent after an approval (check mode).

use std::time::Duration;

use tokio::sync::watch;

use crate::error::RuntimeError;
use crate::runtime::Runtime;
use crate::types::ActionView;

impl Runtime {
    /// Tells whoever waits for action `view` where it is now: a final view
    /// ends the wait for good; an approved (check-mode) one wakes waiters.
    pub(crate) fn publish(&self, view: ActionView) {
        let Ok(mut w) = self.0.watchers.lock() else {
            return;
        };
        if view.is_final() {
            if let Some(tx) = w.remove(&view.action_id) {
                let _ = tx.send(Some(view));
            }
        } else if let Some(tx) = w.get(&view.action_id) {
            let _ = tx.send(Some(view));
        }
    }

    pub(crate) fn watch(&self, id: &str) {
        if let Ok(mut w) = self.0.watchers.lock() {
            w.entry(id.to_owned())
                .or_insert_with(|| watch::channel(None).0);
        }
    }

    pub(crate) fn unwatch(&self, id: &str) {
        if let Ok(mut w) = self.0.watchers.lock() {
            w.remove(id);
        }
    }

    /// The action `id` as `viewer` may see it: agents see their own only
    /// (`viewer` = `Some(agent)`); people with a role see all (`None`).
    pub async fn action(&self, id: &str, viewer: Option<&str>) -> Result<ActionView, RuntimeError> {
        match self.store().action(id).await? {
            Some(row) if viewer.is_none_or(|v| v == row.agent) => Ok(ActionView::from_row(&row)),
            _ => Err(RuntimeError::UnknownAction(id.to_owned())),
        }
    }

    /// Waits up to `timeout` for action `id` to settle (final, or approved
    /// for the agent after an approval, see [`ActionView::is_settled`]);
    /// `None` if it did not in time (or does not exist).
    pub async fn wait(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<ActionView>, RuntimeError> {
        // Subscribe before reading the store, so a finish in between is seen.
        let rx = self.0.watchers.lock().ok().map(|mut w| {
            w.entry(id.to_owned())
                .or_insert_with(|| watch::channel(None).0)
                .subscribe()
        });
        let result = self.wait_on(id, timeout, rx).await;
        // Watchers nobody listens to are dropped, so actions that never
        // finish (check mode without a report) hold no memory.
        if let Ok(mut w) = self.0.watchers.lock()
            && w.get(id).is_some_and(|tx| tx.receiver_count() == 0)
        {
            w.remove(id);
        }
        result
    }

    async fn wait_on(
        &self,
        id: &str,
        timeout: Duration,
        rx: Option<watch::Receiver<Option<ActionView>>>,
    ) -> Result<Option<ActionView>, RuntimeError> {
        let Some(row) = self.store().action(id).await? else {
            return Ok(None);
        };
        let stored = ActionView::from_row(&row);
        let Some(mut rx) = rx else {
            return Ok(Some(stored).filter(ActionView::is_settled));
        };
        if let Some(v) = rx.borrow_and_update().clone() {
            return Ok(Some(v));
        }
        if stored.is_settled() {
            return Ok(Some(stored));
        }
        let done = tokio::time::timeout(timeout, async {
            loop {
                if rx.changed().await.is_err() {
                    return None;
                }
                if let Some(v) = rx.borrow_and_update().clone() {
                    return Some(v);
                }
            }
        })
        .await;
        match done {
            Ok(Some(v)) => Ok(Some(v)),
            // The sender went away: the action finished; read it back.
            Ok(None) => Ok(self
                .store()
                .action(id)
                .await?
                .map(|r| ActionView::from_row(&r))
                .filter(ActionView::is_settled)),
            Err(_) => Ok(None),
        }
    }
}
