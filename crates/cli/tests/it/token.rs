//! `warden token` and the demo tokens of the example packs.

use warden_model::Credentials;

use crate::common::{root, warden};

#[test]
fn new_token_hashes_to_the_printed_hash() {
    let out = warden(&["token", "new", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    let token = v["token"].as_str().unwrap();
    assert!(token.starts_with("wdn_") && token.len() > 40, "{token}");
    let hash = warden(&["token", "hash", token]);
    assert_eq!(hash.stdout.trim(), v["hash"].as_str().unwrap());
    // Two tokens are never the same.
    let again = warden(&["token", "new", "--json"]).json();
    assert_ne!(again["token"], v["token"]);
    let out = warden(&["token", "hash", ""]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("the token is empty"), "{}", out.stderr);
}

#[test]
fn example_packs_give_every_principal_its_demo_token() {
    for pack in ["examples/support-refunds", "examples/it-ops"] {
        let loaded = warden_model::load(root().join(pack)).unwrap();
        assert!(loaded.diagnostics.iter().all(|d| !d.is_error()), "{pack}");
        let p = &loaded.pack;
        let principals = p
            .agents
            .values()
            .map(|a| (&a.id, &a.credentials))
            .chain(p.people.values().map(|x| (&x.id, &x.credentials)));
        let mut n = 0;
        for (id, creds) in principals {
            let demo = Credentials::hash_token(&format!("demo-{id}"));
            assert_eq!(creds.token_hashes, vec![demo], "{pack}: {id}");
            n += 1;
        }
        assert!(n >= 6, "{pack}");
    }
}
