//! Scanning tool results for secrets and personal data: card numbers that
//! pass the Luhn check, private keys, API-key shapes, e-mail addresses.
//! Hand-written scanners over each string (no backtracking, linear time).

use serde_json::Value;

/// Something found in a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    kind: &'static str,
    /// JSON path of the string it was found in.
    pub path: String,
    /// The finding with all but a few characters masked.
    pub masked: String,
}

impl Finding {
    /// `card_number`, `private_key`, `api_key` or `email`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}

/// Most strings and findings looked at per result.
const MAX_STRINGS: usize = 10_000;
const MAX_FINDINGS: usize = 20;

/// Everything found in the strings of `v` (and in object keys' values).
pub fn scan_value(v: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut budget = MAX_STRINGS;
    walk(v, &mut String::from("$"), &mut out, &mut budget);
    out
}

fn walk(v: &Value, path: &mut String, out: &mut Vec<Finding>, budget: &mut usize) {
    if *budget == 0 || out.len() >= MAX_FINDINGS {
        return;
    }
    match v {
        Value::String(s) => {
            *budget -= 1;
            scan_str(s, path, out);
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(x, path, out, budget);
                path.truncate(len);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                walk(x, path, out, budget);
                path.truncate(len);
            }
        }
        // A bare number can be a card number too.
        Value::Number(n) => {
            *budget -= 1;
            scan_str(&n.to_string(), path, out);
        }
        _ => {}
    }
}

fn mask(s: &str, keep: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let shown: String = chars.iter().take(keep).collect();
    format!("{shown}…({} chars)", chars.len())
}

/// Scans one string.
pub fn scan_str(s: &str, path: &str, out: &mut Vec<Finding>) {
    let mut push = |kind: &'static str, m: String| {
        if out.len() < MAX_FINDINGS && !out.iter().any(|f| f.kind == kind && f.path == path) {
            out.push(Finding {
                kind,
                path: path.to_owned(),
                masked: m,
            });
        }
    };
    if let Some(c) = card_number(s) {
        let last4: String = c
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        push("card_number", format!("…{last4} ({} digits)", c.len()));
    }
    if s.contains("-----BEGIN") && s.contains("PRIVATE KEY-----") {
        push("private_key", "-----BEGIN … PRIVATE KEY-----".to_owned());
    }
    if let Some(k) = api_key(s) {
        push("api_key", mask(k, 6));
    }
    if let Some(e) = email(s) {
        push("email", mask(e, 2));
    }
}

/// A run of 13–19 digits (spaces and dashes between digits allowed),
/// standing alone (not part of a longer word such as a hex digest), that
/// passes the Luhn check.
fn card_number(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let mut digits = String::new();
        let mut j = i;
        while j < b.len() {
            if b[j].is_ascii_digit() {
                digits.push(b[j] as char);
                j += 1;
            } else if (b[j] == b' ' || b[j] == b'-')
                && j + 1 < b.len()
                && b[j + 1].is_ascii_digit()
                && !digits.is_empty()
            {
                j += 1;
            } else {
                break;
            }
            if digits.len() > 19 {
                break;
            }
        }
        let alone = b.get(j).is_none_or(|c| !c.is_ascii_alphanumeric());
        if alone && (13..=19).contains(&digits.len()) && luhn(&digits) {
            return Some(digits);
        }
        i = j.max(i + 1);
    }
    None
}

/// The Luhn checksum of a digit string.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10) && !digits.bytes().all(|c| c == b'0')
}

/// Well-known API-key shapes: a prefix and enough key characters after it.
fn api_key(s: &str) -> Option<&str> {
    const SHAPES: &[(&str, usize)] = &[
        ("sk_live_", 16),
        ("rk_live_", 16),
        ("sk-proj-", 20),
        ("sk-ant-", 20),
        ("ghp_", 36),
        ("github_pat_", 22),
        ("xoxb-", 20),
        ("xoxp-", 20),
        ("AKIA", 16),
        ("AIza", 35),
        ("glpat-", 20),
    ];
    for (prefix, min) in SHAPES {
        let mut from = 0;
        while let Some(pos) = s[from..].find(prefix) {
            let start = from + pos;
            let rest = &s[start + prefix.len()..];
            let n = rest
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
                .count();
            if n >= *min {
                return s.get(start..start + prefix.len() + n);
            }
            from = start + prefix.len();
        }
    }
    None
}

/// A plausible e-mail address: `local@domain.tld`.
fn email(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(pos) = s[from..].find('@') {
        let at = from + pos;
        let local_ok = |c: u8| c.is_ascii_alphanumeric() || b"._%+-".contains(&c);
        let dom_ok = |c: u8| c.is_ascii_alphanumeric() || c == b'.' || c == b'-';
        let mut start = at;
        while start > 0 && local_ok(b[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < b.len() && dom_ok(b[end]) {
            end += 1;
        }
        let domain = s.get(at + 1..end).unwrap_or("").trim_end_matches('.');
        let tld_ok = domain.rsplit_once('.').is_some_and(|(host, tld)| {
            !host.is_empty() && tld.len() >= 2 && tld.bytes().all(|c| c.is_ascii_alphabetic())
        });
        if start < at && tld_ok {
            return s.get(start..at + 1 + domain.len());
        }
        from = at + 1;
    }
    None
}
