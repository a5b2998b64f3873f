//! Swapping engines while decisions run: each decision is wholly made by
//! one engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use warden_model::Outcome;
use warden_policy::EngineHandle;

use crate::common::{decide, pack};

#[test]
fn swapping_engines_never_mixes_two_packs() {
    let allow = pack("@id(\"yes\")\npermit (principal, action == Action::\"pay\", resource);");
    let deny = pack(
        "@id(\"yes\")\npermit (principal, action == Action::\"pay\", resource);\n@id(\"no\")\nforbid (principal, action, resource);",
    );
    let allow_version = allow.engine.policy_version().to_owned();
    let deny_version = deny.engine.policy_version().to_owned();
    assert_ne!(allow_version, deny_version);

    let handle = Arc::new(EngineHandle::new(allow.engine.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (handle, stop) = (Arc::clone(&handle), Arc::clone(&stop));
            let (av, dv) = (allow_version.clone(), deny_version.clone());
            std::thread::spawn(move || {
                let mut seen = [0usize; 2];
                while !stop.load(Ordering::Relaxed) {
                    let engine = handle.current();
                    let d = decide(&engine, "bot", "pay", json!({"amount": 1}), &[]);
                    // The outcome always matches the version that decided it.
                    match d.outcome {
                        Outcome::Allow => {
                            assert_eq!(*d.policy_version, av);
                            seen[0] += 1
                        }
                        _ => {
                            assert_eq!(*d.policy_version, dv);
                            seen[1] += 1
                        }
                    }
                }
                seen
            })
        })
        .collect();
    for i in 0..2_000 {
        let next = if i % 2 == 0 {
            &deny.engine
        } else {
            &allow.engine
        };
        handle.replace(next.clone());
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = [0; 2];
    for r in readers {
        let s = r.join().unwrap();
        total[0] += s[0];
        total[1] += s[1];
    }
    assert!(
        total[0] > 0 && total[1] > 0,
        "both engines decided: {total:?}"
    );
}
