//! Counters the metrics endpoint reads.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What oversight has done since start.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records fed to the detectors.
    pub events: AtomicU64,
    /// Records the detector loop fell too far behind to see.
    pub events_missed: AtomicU64,
    /// Nanoseconds spent in the detectors.
    pub detect_ns: AtomicU64,
    /// Detector fires by (playbook, detector).
    fires: Mutex<BTreeMap<(String, String), u64>>,
    /// Incidents opened by (playbook, severity).
    opened: Mutex<BTreeMap<(String, String), u64>>,
    /// Notifications by (route, result).
    notifications: Mutex<BTreeMap<(String, String), u64>>,
    /// Time-to-detect and time-to-acknowledge samples (seconds) since the
    /// last scrape.
    ttd: Mutex<Vec<f64>>,
    tta: Mutex<Vec<f64>>,
}

fn bump(m: &Mutex<BTreeMap<(String, String), u64>>, a: &str, b: &str) {
    if let Ok(mut m) = m.lock() {
        *m.entry((a.to_owned(), b.to_owned())).or_default() += 1;
    }
}

fn snapshot(m: &Mutex<BTreeMap<(String, String), u64>>) -> Vec<(String, String, u64)> {
    m.lock()
        .map(|m| {
            m.iter()
                .map(|((a, b), n)| (a.clone(), b.clone(), *n))
                .collect()
        })
        .unwrap_or_default()
}

impl Stats {
    pub(crate) fn fired(&self, playbook: &str, detector: &str) {
        bump(&self.fires, playbook, detector);
    }
    pub(crate) fn opened(&self, playbook: &str, severity: &str, ttd_s: f64) {
        bump(&self.opened, playbook, severity);
        if let Ok(mut v) = self.ttd.lock() {
            v.push(ttd_s);
        }
    }
    pub(crate) fn acknowledged(&self, tta_s: f64) {
        if let Ok(mut v) = self.tta.lock() {
            v.push(tta_s);
        }
    }
    pub(crate) fn notified(&self, route: &str, result: &str) {
        bump(&self.notifications, route, result);
    }
    pub(crate) fn event(&self, ns: u64) {
        self.events.fetch_add(1, Ordering::Relaxed);
        self.detect_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// (playbook, detector, fires).
    pub fn fires(&self) -> Vec<(String, String, u64)> {
        snapshot(&self.fires)
    }
    /// (playbook, severity, incidents opened).
    pub fn opened_incidents(&self) -> Vec<(String, String, u64)> {
        snapshot(&self.opened)
    }
    /// (route, result, notifications).
    pub fn notifications(&self) -> Vec<(String, String, u64)> {
        snapshot(&self.notifications)
    }
    /// Time-to-detect samples since the last call.
    pub fn take_ttd(&self) -> Vec<f64> {
        self.ttd
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
    /// Time-to-acknowledge samples since the last call.
    pub fn take_tta(&self) -> Vec<f64> {
        self.tta
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}
