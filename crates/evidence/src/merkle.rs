//! The RFC 6962 / RFC 9162 Merkle tree: leaf and node hashes, a compact
//! frontier for appending, a full tree for proofs, and proof verification.
//!
//! Leaf hash `SHA-256(0x00 || data)`, node hash `SHA-256(0x01 || left || right)`,
//! and the tree of `n` leaves splits at the largest power of two below `n`.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`: the hash of one leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (for `n >= 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The right edge of a tree: the roots of its perfect subtrees, largest
/// first. Appending is O(1) amortized and the root is O(log n), so the log
/// knows its root at every size without reading old leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            if let Some(left) = self.nodes.pop() {
                h = node_hash(&left, &h);
            }
            s >>= 1;
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// The root hash at the current size.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// Every level of a tree, for inclusion and consistency proofs. Level 0
/// holds the leaf hashes; node `i` of level `k` covers leaves
/// `[i·2^k, min((i+1)·2^k, n))` and its hash is that range's tree hash.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// Builds the tree over `leaves` (leaf hashes, in log order).
    pub fn new(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let above = below
                .chunks(2)
                .map(|c| match c {
                    [l, r] => node_hash(l, r),
                    [one] => *one,
                    _ => empty_root(),
                })
                .collect();
            levels.push(above);
        }
        Self { levels }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The leaf hashes.
    pub fn leaves(&self) -> &[Hash] {
        self.levels.first().map(Vec::as_slice).unwrap_or_default()
    }

    /// The root hash of the whole tree.
    pub fn root(&self) -> Hash {
        if self.size() == 0 {
            return empty_root();
        }
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or_else(empty_root)
    }

    /// The root of the first `size` leaves (`size <= self.size()`).
    pub fn root_at(&self, size: u64) -> Option<Hash> {
        match size {
            0 => Some(empty_root()),
            s if s <= self.size() => Some(self.range(0, s)),
            _ => None,
        }
    }

    /// Tree hash of leaves `[lo, hi)`, `lo < hi <= size`.
    fn range(&self, lo: u64, hi: u64) -> Hash {
        let n = hi - lo;
        // A stored node: aligned, and either a full subtree or the right edge.
        let k = 64 - (n - 1).leading_zeros() as usize; // smallest k with 2^k >= n
        if lo.is_multiple_of(1 << k)
            && (n == 1 << k || hi == self.size())
            && let Some(h) = self.levels.get(k).and_then(|l| l.get((lo >> k) as usize))
        {
            return *h;
        }
        let s = split(n);
        node_hash(&self.range(lo, lo + s), &self.range(lo + s, hi))
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves
    /// (RFC 9162 2.1.3.1).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        if index >= size || size > self.size() {
            return None;
        }
        let mut out = Vec::new();
        self.path(index, 0, size, &mut out);
        Some(out)
    }

    fn path(&self, m: u64, lo: u64, hi: u64, out: &mut Vec<Hash>) {
        let n = hi - lo;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m - lo < k {
            self.path(m, lo, lo + k, out);
            out.push(self.range(lo + k, hi));
        } else {
            self.path(m, lo + k, hi, out);
            out.push(self.range(lo, lo + k));
        }
    }

    /// The consistency proof from the tree of the first `old` leaves to the
    /// tree of the first `new` leaves (RFC 9162 2.1.4.1).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Option<Vec<Hash>> {
        if old > new || new > self.size() {
            return None;
        }
        let mut out = Vec::new();
        if old > 0 && old < new {
            self.subproof(old, 0, new, true, &mut out);
        }
        Some(out)
    }

    fn subproof(&self, m: u64, lo: u64, hi: u64, whole: bool, out: &mut Vec<Hash>) {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push(self.range(lo, hi));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, lo, lo + k, whole, out);
            out.push(self.range(lo + k, hi));
        } else {
            self.subproof(m - k, lo + k, hi, false, out);
            out.push(self.range(lo, lo + k));
        }
    }
}

/// Checks an audit path (RFC 9162 2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Checks a consistency proof between two tree heads (RFC 9162 2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    let mut nodes: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        nodes.push(*old_root);
    }
    nodes.extend_from_slice(proof);
    let Some((first, rest)) = nodes.split_first() else {
        return false;
    };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && fr == *old_root && sr == *new_root
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 6962 MTH, written as the RFC defines it.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn known_hashes() {
        // SHA-256 of the empty string, and the RFC 6962 leaf hash of "".
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn roots_agree_with_the_definition() {
        for n in 0..70 {
            let l = leaves(n);
            let mut f = Frontier::new();
            for h in &l {
                f.push(*h);
            }
            let t = Tree::new(l.clone());
            assert_eq!(f.root(), mth(&l), "frontier n={n}");
            assert_eq!(t.root(), mth(&l), "tree n={n}");
            for m in 0..=n {
                assert_eq!(t.root_at(m as u64), Some(mth(&l[..m])), "n={n} m={m}");
            }
        }
    }

    #[test]
    fn every_proof_verifies_and_a_wrong_one_does_not() {
        for n in 1..40u64 {
            let t = Tree::new(leaves(n as usize));
            let root = t.root();
            for i in 0..n {
                let p = t.inclusion_proof(i, n).unwrap_or_default();
                assert!(verify_inclusion(i, n, &t.leaves()[i as usize], &p, &root));
                let other = t.leaves()[((i + 1) % n) as usize];
                if n > 1 {
                    assert!(!verify_inclusion(i, n, &other, &p, &root), "n={n} i={i}");
                }
            }
            for m in 0..=n {
                let p = t.consistency_proof(m, n).unwrap_or_default();
                let old = t.root_at(m).unwrap_or_default();
                assert!(verify_consistency(m, n, &old, &root, &p), "m={m} n={n}");
                if m > 0 && m < n {
                    let wrong = leaf_hash(b"forged");
                    assert!(!verify_consistency(m, n, &wrong, &root, &p));
                    assert!(!verify_consistency(m, n, &old, &wrong, &p));
                }
            }
        }
    }

    proptest! {
        #[test]
        fn proofs_hold_for_random_sizes(n in 1u64..600, i in 0u64..600, m in 0u64..600) {
            let t = Tree::new(leaves(n as usize));
            let i = i % n;
            let m = m % (n + 1);
            let p = t.inclusion_proof(i, n).unwrap_or_default();
            prop_assert!(verify_inclusion(i, n, &t.leaves()[i as usize], &p, &t.root()));
            let cp = t.consistency_proof(m, n).unwrap_or_default();
            let old = t.root_at(m).unwrap_or_default();
            prop_assert!(verify_consistency(m, n, &old, &t.root(), &cp));
            // Proofs into an older tree head too.
            if m > i {
                let p = t.inclusion_proof(i, m).unwrap_or_default();
                prop_assert!(verify_inclusion(i, m, &t.leaves()[i as usize], &p, &old));
            }
        }
    }
}
