//! RFC 8785 JSON Canonicalization Scheme (JCS): the byte form of a record that
//! is hashed into the log. Keys sorted by UTF-16 code units, no whitespace,
//! numbers in the shortest ECMAScript form, minimal string escapes.

use serde::Serialize;

use crate::error::EvidenceError;

/// The canonical (RFC 8785) bytes of `value`.
pub fn to_canonical<T: Serialize>(value: &T) -> Result<Vec<u8>, EvidenceError> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| EvidenceError::Canonical(e.to_string()))
}

/// The canonical (RFC 8785) text of `value`.
pub fn to_canonical_string<T: Serialize>(value: &T) -> Result<String, EvidenceError> {
    serde_json_canonicalizer::to_string(value).map_err(|e| EvidenceError::Canonical(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn canon(json: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
        to_canonical_string(&v).unwrap_or_default()
    }

    /// RFC 8785 section 3.2.2: the example of whitespace, literals, numbers
    /// and string escapes.
    #[test]
    fn rfc8785_section_3_2_2() {
        let input = r#"{
  "numbers": [333333333.33333329, 1E30, 4.50,
              2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"#;
        let expected = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
        assert_eq!(canon(input), expected);
    }

    /// RFC 8785 section 3.2.3: property names sorted by UTF-16 code units,
    /// so the emoji (a surrogate pair, 0xD83D) sorts before U+FB33.
    #[test]
    fn rfc8785_section_3_2_3_sorting() {
        let input = r#"{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"#;
        let out = canon(input);
        let keys: Vec<String> = {
            let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            // Read the order back from the text itself, not from a map.
            let mut order: Vec<(usize, String)> = v
                .as_object()
                .map(|o| {
                    o.values()
                        .filter_map(|x| x.as_str())
                        .filter_map(|s| out.find(s).map(|i| (i, s.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            order.sort();
            order.into_iter().map(|(_, s)| s).collect()
        };
        assert_eq!(
            keys,
            [
                "Carriage Return",
                "One",
                "Control",
                "Latin Small Letter O With Diaeresis",
                "Euro Sign",
                "Emoji: Grinning Face",
                "Hebrew Letter Dalet With Dagesh",
            ]
        );
    }

    /// RFC 8785 appendix B: IEEE 754 bit patterns and their canonical text.
    #[test]
    fn rfc8785_appendix_b_numbers() {
        let cases: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, want) in cases {
            let n = f64::from_bits(*bits);
            assert_eq!(
                to_canonical_string(&n).unwrap_or_default(),
                *want,
                "{bits:016x}"
            );
        }
    }

    #[test]
    fn nested_objects_sorted_and_compact() {
        assert_eq!(
            canon(r#"{ "b": [ {"z":1, "a":2} ], "a": {"y": "x", "c": null} }"#),
            r#"{"a":{"c":null,"y":"x"},"b":[{"a":2,"z":1}]}"#
        );
    }
}
