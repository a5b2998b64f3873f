//! Named locks: requests that must not interleave (the same idempotency
//! key, the identical request, the same action) queue on one async mutex
//! per name; names nobody holds or waits for are forgotten.
//!
//! These serialize work inside one process. Several replicas sharing one
//! PostgreSQL will need the same names as row locks or conditional
//! updates in the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// A map of name → mutex.
#[derive(Debug, Default)]
pub(crate) struct KeyedLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// Held while the named work runs; forgets the name when the last holder
/// or waiter is done.
pub(crate) struct KeyGuard<'a> {
    locks: &'a KeyedLocks,
    name: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    /// Waits for `name`'s lock.
    pub(crate) async fn lock(&self, name: String) -> KeyGuard<'_> {
        let m = self
            .0
            .lock()
            .map(|mut m| Arc::clone(m.entry(name.clone()).or_default()))
            .unwrap_or_default();
        let guard = m.lock_owned().await;
        KeyGuard {
            locks: self,
            name,
            guard: Some(guard),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        if let Ok(mut m) = self.locks.0.lock()
            && let Some(l) = m.get(&self.name)
            // INVARIANT: only the map holds it now: nobody waits.
            && Arc::strong_count(l) == 1
        {
            m.remove(&self.name);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_name_and_names_are_forgotten() {
        let locks = Arc::new(KeyedLocks::default());
        let a = locks.lock("a".into()).await;
        // Another name is free.
        let b = locks.lock("b".into()).await;
        drop(b);
        // The same name waits until the first holder is done.
        let l2 = Arc::clone(&locks);
        let waiter = tokio::spawn(async move {
            let _g = l2.lock("a".into()).await;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(a);
        waiter.await.unwrap();
        assert!(locks.0.lock().unwrap().is_empty());
    }
}
