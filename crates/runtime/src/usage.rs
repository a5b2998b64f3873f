//! Counter windows: the values policies read as `context.usage.<name>`,
//! exact under concurrency.
//!
//! Each (counter, key) has a window in memory, loaded from the store on
//! first use (the store holds the truth: every counted action's event is
//! committed with the action). A decision that reads counters first
//! *holds* their windows (locked, in name order so two holders never wait
//! on each other), decides, and when the action counts *reserves* its
//! amount in them before letting go. A concurrent request of the same key
//! waits for the hold and then sees the reservation, so two requests can
//! never both pass the last slot. A reservation whose commit fails is
//! taken back. The lock is held for the decision only, not for the commit:
//! requests of one key are decided one at a time, and committed together.
//!
//! Several replicas (to come) cannot share this memory: there the hold
//! becomes a lock in PostgreSQL (an advisory lock on the key) and the
//! window is read from `usage_events` under it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use warden_model::{CountedRequest, Pack};
use warden_store::{StateWrite, Store, UsageEvent};

use crate::error::RuntimeError;
use crate::runs::micros;

/// One counted action in a window.
#[derive(Debug, Clone, Copy)]
struct Event {
    at_us: i64,
    amount: i64,
    /// Which reservation made it (0: loaded from the store).
    token: u64,
}

/// The events of one key of one counter within its window.
#[derive(Debug, Default)]
pub(crate) struct Window {
    loaded: bool,
    events: VecDeque<Event>,
    total: i64,
}

impl Window {
    fn prune(&mut self, after_us: i64) {
        while self.events.front().is_some_and(|e| e.at_us <= after_us) {
            if let Some(e) = self.events.pop_front() {
                self.total = self.total.saturating_sub(e.amount);
            }
        }
    }

    fn push(&mut self, e: Event) {
        self.total = self.total.saturating_add(e.amount);
        // Events arrive in time order but for clock steps; keep them sorted
        // so pruning from the front stays right.
        let at = self
            .events
            .iter()
            .rposition(|x| x.at_us <= e.at_us)
            .map_or(0, |i| i + 1);
        self.events.insert(at, e);
    }

    fn take_back(&mut self, token: u64) {
        if let Some(i) = self.events.iter().position(|e| e.token == token)
            && let Some(e) = self.events.remove(i)
        {
            self.total = self.total.saturating_sub(e.amount);
        }
    }
}

type WindowKey = (String, String, i64);
type Shared = Arc<AsyncMutex<Window>>;

/// Every window in use.
#[derive(Debug, Default)]
pub(crate) struct Windows {
    map: Mutex<HashMap<WindowKey, Shared>>,
    /// Size at which idle, empty windows are next swept out.
    sweep_at: AtomicU64,
    tokens: AtomicU64,
}

/// The hashed key of a window (no argument value is kept in the store).
fn hashed(counter: &str, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(counter.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    hex::encode(h.finalize())
}

impl Windows {
    /// Forgets every window (after a reload: counters may have changed).
    pub(crate) fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            m.clear();
        }
    }

    fn window(&self, key: WindowKey) -> Shared {
        let Ok(mut m) = self.map.lock() else {
            return Arc::default();
        };
        let limit = self.sweep_at.load(Ordering::Relaxed).max(4096);
        if m.len() as u64 >= limit {
            // Windows nobody holds and that hold nothing are dropped; a
            // later use loads them again from the store.
            m.retain(|_, w| {
                Arc::strong_count(w) > 1 || w.try_lock().map_or(true, |w| !w.events.is_empty())
            });
            self.sweep_at
                .store((m.len() as u64).saturating_mul(2), Ordering::Relaxed);
        }
        Arc::clone(m.entry(key).or_default())
    }

    /// Holds the windows of every counter that counts `req.tool`, loaded
    /// and pruned to `now_us`.
    pub(crate) async fn hold(
        &self,
        store: &Store,
        pack: &Pack,
        req: &CountedRequest<'_>,
        now_us: i64,
    ) -> Result<Hold, RuntimeError> {
        let mut counters: Vec<_> = pack
            .counters
            .iter()
            .filter(|c| c.counts(req.tool))
            .collect();
        if counters.is_empty() {
            return Ok(Hold::default());
        }
        counters.sort_by(|a, b| a.name.cmp(&b.name));
        let mut held = Vec::with_capacity(counters.len());
        for c in counters {
            let window_us = micros(c.window);
            let key = hashed(&c.name, &c.key(req));
            let shared = self.window((c.name.clone(), key.clone(), window_us));
            let mut guard = Arc::clone(&shared).lock_owned().await;
            let after = now_us.saturating_sub(window_us);
            if !guard.loaded {
                for (at_us, amount) in store.usage_events(&c.name, &key, after).await? {
                    guard.push(Event {
                        at_us,
                        amount,
                        token: 0,
                    });
                }
                guard.loaded = true;
            }
            guard.prune(after);
            held.push(Held {
                name: c.name.clone(),
                key,
                window_us,
                approved: c.approved,
                amount: c.amount(req.args),
                shared,
                guard,
            });
        }
        Ok(Hold {
            held,
            tokens: Some(self.tokens.fetch_add(1, Ordering::Relaxed) + 1),
        })
    }
}

struct Held {
    name: String,
    key: String,
    window_us: i64,
    approved: bool,
    amount: i64,
    shared: Shared,
    guard: OwnedMutexGuard<Window>,
}

/// Windows held for one decision.
#[derive(Default)]
pub(crate) struct Hold {
    held: Vec<Held>,
    tokens: Option<u64>,
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.held.iter().map(|h| (&h.name, h.guard.total)))
            .finish()
    }
}

impl Hold {
    /// Each counter's value before the request.
    pub(crate) fn prior(&self) -> BTreeMap<String, i64> {
        self.held
            .iter()
            .map(|h| (h.name.clone(), h.guard.total))
            .collect()
    }

    /// Counts action `action_id` at `now_us` in every held window (only in
    /// those of counters that count approved actions, when `approved`), and
    /// lets go of the windows. The writes go into the action's commit; the
    /// reservation is taken back unless [`Reservation::keep`] is called.
    pub(crate) fn reserve(
        self,
        action_id: &str,
        now_us: i64,
        approved: bool,
    ) -> (Vec<StateWrite>, Reservation) {
        let token = self.tokens.unwrap_or(0);
        let mut writes = Vec::new();
        let mut taken = Vec::new();
        for mut h in self.held {
            if approved && !h.approved {
                continue;
            }
            h.guard.push(Event {
                at_us: now_us,
                amount: h.amount,
                token,
            });
            writes.push(StateWrite::Usage(UsageEvent {
                counter: h.name,
                key: h.key,
                action_id: action_id.to_owned(),
                at_us: now_us,
                amount: h.amount,
                expired_us: now_us.saturating_sub(h.window_us),
            }));
            taken.push(h.shared);
        }
        (writes, Reservation { taken, token })
    }
}

/// Amounts counted in memory ahead of their commit.
#[derive(Debug)]
pub(crate) struct Reservation {
    taken: Vec<Shared>,
    token: u64,
}

impl Reservation {
    /// The commit succeeded: the amounts stay.
    pub(crate) fn keep(mut self) {
        self.taken.clear();
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.taken.is_empty() {
            return;
        }
        let taken = std::mem::take(&mut self.taken);
        let token = self.token;
        // Not committed: take the amounts back (the windows' locks are
        // async, so on a task).
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for w in taken {
                    w.lock().await.take_back(token);
                }
            });
        }
    }
}
