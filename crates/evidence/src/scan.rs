//! The output scanner: secrets and personal data in tool results. Card
//! numbers that pass the Luhn check, US social security numbers, IBANs with
//! a valid checksum, private keys, API-key shapes, e-mail addresses, and the
//! patterns a pack declares.
//!
//! Hand-written scanners over each string (linear time, no backtracking); a
//! pack's patterns run on the `regex` crate, which is linear time too.

use std::ops::Range;

use serde_json::Value;
use warden_model::RedactionPattern;

/// Something the scanner recognised in a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// `card_number`, `us_ssn`, `iban`, `private_key`, `api_key`, `email`,
    /// or a pack pattern's name.
    pub kind: String,
    /// Where in the string.
    pub range: Range<usize>,
    /// The value in one canonical form (digits only for a card, upper case
    /// without spaces for an IBAN): equal values give equal tokens.
    pub normalized: String,
    /// A masked sample for people (never the value).
    pub sample: String,
}

impl Match {
    /// Whether results keep it (`email`: contact addresses are ordinary
    /// content; the `unusual_output` detector still flags them).
    pub fn is_redacted(&self) -> bool {
        self.kind != "email"
    }
}

/// Every non-overlapping match in `s`, in order.
pub fn scan_str(s: &str, patterns: &[RedactionPattern]) -> Vec<Match> {
    let mut all: Vec<Match> = Vec::new();
    cards(s, &mut all);
    ssns(s, &mut all);
    ibans(s, &mut all);
    private_keys(s, &mut all);
    api_keys(s, &mut all);
    emails(s, &mut all);
    for p in patterns {
        for m in p.regex.find_iter(s) {
            if !m.is_empty() {
                all.push(Match {
                    kind: p.name.clone(),
                    range: m.range(),
                    normalized: m.as_str().to_owned(),
                    sample: format!("({} chars)", m.as_str().chars().count()),
                });
            }
        }
    }
    // Earliest first; of two overlapping, the longer (a key holding an
    // address-like part is one key).
    all.sort_by(|a, b| {
        a.range
            .start
            .cmp(&b.range.start)
            .then(b.range.len().cmp(&a.range.len()))
    });
    let mut out: Vec<Match> = Vec::new();
    for m in all {
        if out.last().is_none_or(|l| m.range.start >= l.range.end) {
            out.push(m);
        }
    }
    out
}

/// A finding in a JSON value, with its JSON Pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The kind (see [`Match::kind`]).
    pub kind: String,
    /// JSON Pointer (RFC 6901) of the string it is in.
    pub at: String,
    /// A masked sample.
    pub sample: String,
}

/// Most findings listed per value (redaction itself has no limit).
pub const MAX_LISTED: usize = 20;

/// Everything the scanner finds in the strings and numbers of `v`.
pub fn scan_value(v: &Value, patterns: &[RedactionPattern]) -> Vec<Found> {
    let mut out = Vec::new();
    walk(v, &mut String::new(), &mut |at, s| {
        for m in scan_str(s, patterns) {
            if out.len() < MAX_LISTED && !out.iter().any(|f: &Found| f.kind == m.kind && f.at == at)
            {
                out.push(Found {
                    kind: m.kind,
                    at: at.to_owned(),
                    sample: m.sample,
                });
            }
        }
    });
    out
}

/// Calls `f` with the pointer and text of every string and number in `v`.
fn walk(v: &Value, at: &mut String, f: &mut impl FnMut(&str, &str)) {
    match v {
        Value::String(s) => f(at, s),
        // A bare number can be a card number too.
        Value::Number(n) => f(at, &n.to_string()),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let len = at.len();
                at.push('/');
                at.push_str(&i.to_string());
                walk(x, at, f);
                at.truncate(len);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                let len = at.len();
                at.push('/');
                at.push_str(&pointer_segment(k));
                walk(x, at, f);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

/// A key as one JSON Pointer segment.
pub(crate) fn pointer_segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn mask(s: &str, keep: usize) -> String {
    let shown: String = s.chars().take(keep).collect();
    format!("{shown}…({} chars)", s.chars().count())
}

/// Whether the byte before `start` and the one at `end` do not continue a
/// word (so a match is not part of a longer token such as a hex digest).
fn alone(b: &[u8], start: usize, end: usize) -> bool {
    (start == 0 || !b[start - 1].is_ascii_alphanumeric())
        && b.get(end).is_none_or(|c| !c.is_ascii_alphanumeric())
}

/// Runs of 13–19 digits (single spaces or dashes between digits allowed),
/// standing alone, that pass the Luhn check.
fn cards(s: &str, out: &mut Vec<Match>) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let mut digits = String::new();
        let mut j = i;
        while j < b.len() && digits.len() <= 19 {
            if b[j].is_ascii_digit() {
                digits.push(b[j] as char);
                j += 1;
            } else if (b[j] == b' ' || b[j] == b'-') && b.get(j + 1).is_some_and(u8::is_ascii_digit)
            {
                j += 1;
            } else {
                break;
            }
        }
        if alone(b, i, j) && (13..=19).contains(&digits.len()) && luhn(&digits) {
            let last4 = &digits[digits.len() - 4..];
            out.push(Match {
                kind: "card_number".into(),
                range: i..j,
                sample: format!("…{last4} ({} digits)", digits.len()),
                normalized: digits,
            });
        }
        i = j.max(i + 1);
    }
}

/// The Luhn checksum of a digit string.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c.wrapping_sub(b'0'));
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

/// US social security numbers written `123-45-6789` or `123 45 6789`,
/// standing alone, that the SSA could have issued (area not 000, 666 or
/// 9xx; group not 00; serial not 0000).
fn ssns(s: &str, out: &mut Vec<Match>) {
    let b = s.as_bytes();
    if b.len() < 11 {
        return;
    }
    for i in 0..=b.len() - 11 {
        let w = &b[i..i + 11];
        let sep = w[3];
        let shape = (sep == b'-' || sep == b' ')
            && w[6] == sep
            && w.iter()
                .enumerate()
                .all(|(k, c)| k == 3 || k == 6 || c.is_ascii_digit());
        if !shape || !alone(b, i, i + 11) {
            continue;
        }
        // Not inside a longer run of digit groups (a phone number, a card).
        let before = i >= 2 && (b[i - 1] == b'-' || b[i - 1] == b' ') && b[i - 2].is_ascii_digit();
        let after = b.get(i + 11).is_some_and(|c| *c == b'-' || *c == b' ')
            && b.get(i + 12).is_some_and(u8::is_ascii_digit);
        if before || after {
            continue;
        }
        let area = &w[0..3];
        let group = &w[4..6];
        let serial = &w[7..11];
        if area == b"000"
            || area == b"666"
            || area[0] == b'9'
            || group == b"00"
            || serial == b"0000"
        {
            continue;
        }
        let text = &s[i..i + 11];
        out.push(Match {
            kind: "us_ssn".into(),
            range: i..i + 11,
            normalized: text.replace(' ', "-"),
            sample: "***-**-****".into(),
        });
    }
}

/// The length of IBANs by country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// IBANs: a country code, two check digits and the account, written
/// together or in groups of four, of the country's length and with a valid
/// ISO 7064 mod-97 checksum.
fn ibans(s: &str, out: &mut Vec<Match>) {
    let b = s.as_bytes();
    let mut i = 0;
    while i + 4 <= b.len() {
        let starts = b[i].is_ascii_uppercase()
            && b[i + 1].is_ascii_uppercase()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit()
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric());
        let want = starts
            .then(|| {
                IBAN_LENGTHS
                    .iter()
                    .find(|(c, _)| c.as_bytes() == &b[i..i + 2])
            })
            .flatten()
            .map(|(_, n)| *n);
        let Some(want) = want else {
            i += 1;
            continue;
        };
        // Collect characters, allowing one space after every fourth.
        let mut compact = String::new();
        let mut j = i;
        while j < b.len() && compact.len() < want {
            let c = b[j];
            if c.is_ascii_alphanumeric() {
                compact.push(c.to_ascii_uppercase() as char);
                j += 1;
            } else if c == b' '
                && compact.len().is_multiple_of(4)
                && b.get(j + 1).is_some_and(u8::is_ascii_alphanumeric)
            {
                j += 1;
            } else {
                break;
            }
        }
        if compact.len() == want && alone(b, i, j) && iban_checksum(&compact) {
            out.push(Match {
                kind: "iban".into(),
                range: i..j,
                sample: format!("{}…({want} chars)", &compact[..2]),
                normalized: compact,
            });
            i = j;
        } else {
            i += 1;
        }
    }
}

/// ISO 7064 mod 97-10 over the rearranged IBAN.
fn iban_checksum(iban: &str) -> bool {
    let (head, tail) = iban.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// PEM private keys, from the BEGIN line to the END line (or the end of the
/// string when it is cut short).
fn private_keys(s: &str, out: &mut Vec<Match>) {
    let mut from = 0;
    while let Some(pos) = s[from..].find("-----BEGIN") {
        let start = from + pos;
        let Some(head_end) = s[start + 10..].find("-----").map(|p| start + 10 + p + 5) else {
            break;
        };
        if !s[start..head_end].contains("PRIVATE KEY") {
            from = head_end;
            continue;
        }
        let end = s[head_end..]
            .find("-----END")
            .and_then(|p| {
                let e = head_end + p;
                s[e + 8..].find("-----").map(|q| e + 8 + q + 5)
            })
            .unwrap_or(s.len());
        out.push(Match {
            kind: "private_key".into(),
            range: start..end,
            normalized: s[start..end].to_owned(),
            sample: "-----BEGIN … PRIVATE KEY-----".into(),
        });
        from = end;
    }
}

/// Well-known API-key shapes: a prefix and enough key characters after it.
fn api_keys(s: &str, out: &mut Vec<Match>) {
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
            let end = start + prefix.len() + n;
            if n >= *min {
                let key = &s[start..end];
                out.push(Match {
                    kind: "api_key".into(),
                    range: start..end,
                    normalized: key.to_owned(),
                    sample: mask(key, 6),
                });
            }
            from = end.max(start + prefix.len());
        }
    }
}

/// Plausible e-mail addresses: `local@domain.tld`.
fn emails(s: &str, out: &mut Vec<Match>) {
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
            let end = at + 1 + domain.len();
            let text = &s[start..end];
            out.push(Match {
                kind: "email".into(),
                range: start..end,
                normalized: text.to_ascii_lowercase(),
                sample: mask(text, 2),
            });
        }
        from = at + 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinds(s: &str) -> Vec<String> {
        scan_str(s, &[]).into_iter().map(|m| m.kind).collect()
    }

    #[test]
    fn cards_pass_luhn_and_stand_alone() {
        assert!(luhn("4111111111111111"));
        assert!(!luhn("4111111111111112"));
        assert_eq!(kinds("card 4111 1111 1111 1111 on file"), ["card_number"]);
        assert!(kinds("order 4111 1111 1111 1112").is_empty(), "fails Luhn");
        assert!(
            kinds("digest a4111111111111111").is_empty(),
            "part of a word"
        );
        assert!(kinds("call 555-0100 or 2026-12-03").is_empty());
        let m = &scan_str("x 4111-1111-1111-1111.", &[])[0];
        assert_eq!(m.normalized, "4111111111111111");
        assert_eq!(
            &"x 4111-1111-1111-1111."[m.range.clone()],
            "4111-1111-1111-1111"
        );
    }

    #[test]
    fn ssns_need_the_separated_shape_and_an_issuable_number() {
        assert_eq!(kinds("SSN 123-45-6789."), ["us_ssn"]);
        assert_eq!(kinds("ssn: 123 45 6789"), ["us_ssn"]);
        for no in [
            "000-12-3456",
            "666-12-3456",
            "912-34-5678",
            "123-00-4567",
            "123-45-0000",
            "123456789",
            "1123-45-6789",
            "555-123-45-6789",
            "call 123-45-6789-12",
        ] {
            assert!(!kinds(no).contains(&"us_ssn".to_owned()), "{no}");
        }
    }

    #[test]
    fn ibans_need_a_valid_checksum_and_length() {
        assert_eq!(kinds("pay DE89 3704 0044 0532 0130 00 today"), ["iban"]);
        assert_eq!(kinds("GB82WEST12345698765432"), ["iban"]);
        let m = &scan_str("to DE89 3704 0044 0532 0130 00", &[])[0];
        assert_eq!(m.normalized, "DE89370400440532013000");
        assert!(kinds("DE89370400440532013001").is_empty(), "bad checksum");
        assert!(kinds("DE8937040044053201300").is_empty(), "too short");
        assert!(
            kinds("XX89370400440532013000").is_empty(),
            "no such country"
        );
    }

    #[test]
    fn keys_addresses_and_pack_patterns() {
        assert_eq!(
            kinds("-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY----- tail"),
            ["private_key"]
        );
        assert!(kinds("-----BEGIN CERTIFICATE-----\nMII").is_empty());
        assert_eq!(kinds("sk_live_4eC39HqLyjWDarjtT1zdp7dc"), ["api_key"]);
        assert_eq!(kinds("write to ada.lovelace@example.com today"), ["email"]);
        assert!(kinds("not@an address, @handle, a@b").is_empty());
        let p = RedactionPattern {
            name: "employee_id".into(),
            regex: regex::Regex::new(r"EMP-[0-9]{6}").unwrap(),
        };
        let found: Vec<String> = scan_str("EMP-123456 and EMP-654321", std::slice::from_ref(&p))
            .into_iter()
            .map(|m| m.normalized)
            .collect();
        assert_eq!(found, ["EMP-123456", "EMP-654321"]);
    }

    #[test]
    fn values_are_walked_with_json_pointers_and_samples_are_masked() {
        let f = &scan_value(&json!({ "a": { "b/c": ["x", "4111111111111111"] } }), &[])[0];
        assert_eq!(f.at, "/a/b~1c/1");
        assert!(!f.sample.contains("41111111"), "{}", f.sample);
        let f = &scan_value(&json!({ "n": 4111111111111111u64 }), &[])[0];
        assert_eq!(f.kind, "card_number");
    }

    #[test]
    fn overlapping_matches_keep_the_longer_one() {
        let s = "-----BEGIN PRIVATE KEY-----\nsk_live_4eC39HqLyjWDarjtT1zdp7dc\n-----END PRIVATE KEY-----";
        assert_eq!(kinds(s), ["private_key"]);
    }
}
