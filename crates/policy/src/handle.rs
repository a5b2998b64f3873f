//! Swapping the engine atomically, for hot reload.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::engine::Engine;

/// Holds the engine in force. Readers take the current engine without
/// locking; a reload swaps in a new one atomically, and decisions already
/// under way finish on the engine they started with.
#[derive(Debug)]
pub struct EngineHandle {
    current: ArcSwap<Engine>,
}

impl EngineHandle {
    /// Starts with `engine` in force.
    pub fn new(engine: Engine) -> Self {
        Self {
            current: ArcSwap::from_pointee(engine),
        }
    }

    /// The engine in force now.
    pub fn current(&self) -> Arc<Engine> {
        self.current.load_full()
    }

    /// Puts `engine` in force; returns the one it replaces.
    pub fn replace(&self, engine: Engine) -> Arc<Engine> {
        self.current.swap(Arc::new(engine))
    }
}
