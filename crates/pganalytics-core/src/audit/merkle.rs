//! The Merkle tree of Certificate Transparency (RFC 6962 section 2.1, unchanged in RFC 9162):
//! tree heads, audit paths and consistency proofs over SHA-256, so that any RFC 6962 tool can
//! check what the audit log publishes.
//!
//! The audit log deletes old events under its retention policy once they are sealed. What stays
//! of the deleted prefix `[0, k)` is its [`Frontier`]: the roots of the maximal perfect subtrees
//! covering it. Every subtree of the tree that lies entirely inside `[0, k)` and appears in a
//! proof about a retained leaf (or about a tree size `>= k`) is one of those roots or is built
//! from them, so roots and proofs stay computable; a node that is not derivable is reported as
//! an error, never replaced by a guess.
//!
//! Hashing (the only cryptography here) is the `sha2` crate:
//! leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right), empty tree = SHA-256("").

use sha2::{Digest, Sha256};

/// A SHA-256 output: a leaf hash, an interior node or a tree head.
pub type Hash = [u8; 32];

/// The hash of a leaf: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(data)
        .finalize()
        .into()
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The tree head of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Why a proof or a frontier cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MerkleError {
    #[error(
        "a frontier of {size} leaves has {expected} nodes (one per set bit of the size), not {got}"
    )]
    FrontierNodeCount {
        size: u64,
        expected: u32,
        got: usize,
    },
    #[error("leaf {index} is not in the tree, which has {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("leaf {index} was deleted by retention: only leaves from {retained_from} on are kept")]
    LeafDeleted { index: u64, retained_from: u64 },
    #[error("tree size {old_size} is larger than the tree, which has {size} leaves")]
    OldSizeTooLarge { old_size: u64, size: u64 },
    #[error(
        "no consistency proof from tree size {old_size}: leaves before {retained_from} were deleted by retention"
    )]
    OldSizeDeleted { old_size: u64, retained_from: u64 },
    #[error(
        "the hash of leaves [{start}, {end}) cannot be derived: they were deleted by retention and the frontier does not cover that subtree"
    )]
    NotDerivable { start: u64, end: u64 },
}

/// Roots of the maximal perfect subtrees covering leaves `[0, size)`, left to right (one per set
/// bit of `size`, largest first): the compact state from which the root can be computed and to
/// which leaves can be appended in O(log n).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// A frontier as stored: `nodes` must hold one hash per set bit of `size`.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Result<Frontier, MerkleError> {
        if nodes.len() != size.count_ones() as usize {
            return Err(MerkleError::FrontierNodeCount {
                size,
                expected: size.count_ones(),
                got: nodes.len(),
            });
        }
        Ok(Frontier { size, nodes })
    }

    /// The number of leaves summarised.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, largest (leftmost) first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Append one leaf (already a leaf hash, see [`leaf_hash`]).
    pub fn push(&mut self, leaf: Hash) {
        self.push_subtree(leaf, 1);
    }

    /// Append the root of a perfect subtree of `width` leaves (a power of two dividing the
    /// size). Each set bit of the size from `width` up is a perfect subtree of the height
    /// being carried: merge them, like a binary increment.
    fn push_subtree(&mut self, node: Hash, width: u64) {
        let mut carry = node;
        let mut bit = width;
        while self.size & bit != 0 {
            let left = self
                .nodes
                .pop()
                .expect("a frontier holds one node per set bit of its size");
            carry = node_hash(&left, &carry);
            bit <<= 1;
        }
        self.nodes.push(carry);
        self.size += width;
    }

    /// Append leaves (leaf hashes) in order. Large aligned runs are added as whole perfect
    /// subtrees hashed on every core: verification rebuilds the tree of the whole log.
    pub fn extend(&mut self, leaves: &[Hash]) {
        let mut rest = leaves;
        while let Some((first, after)) = rest.split_first() {
            // The largest perfect subtree that may start here: aligned to the size, and no
            // wider than what is left.
            let aligned = match self.size {
                0 => u64::MAX,
                size => 1 << size.trailing_zeros(),
            };
            let fits = 1u64 << (63 - (rest.len() as u64).leading_zeros());
            let width = aligned.min(fits);
            if width < PARALLEL_LEAVES as u64 {
                self.push(*first);
                rest = after;
                continue;
            }
            let (run, after) = rest.split_at(width as usize);
            self.push_subtree(perfect_root(run), width);
            rest = after;
        }
    }

    /// The RFC 6962 tree head (MTH) of the leaves summarised so far.
    pub fn root(&self) -> Hash {
        // MTH splits at the largest power of two below the size, which is the leftmost
        // subtree; so the root folds the subtree roots from the right.
        match self.nodes.split_last() {
            None => empty_root(),
            Some((last, rest)) => rest
                .iter()
                .rev()
                .fold(*last, |right, left| node_hash(left, &right)),
        }
    }

    /// The node for leaves `[start, end)` if it is one of the frontier's subtrees.
    fn subtree(&self, start: u64, end: u64) -> Option<Hash> {
        let mut offset = 0u64;
        let mut nodes = self.nodes.iter();
        for bit in (0..64).rev() {
            let width = 1u64 << bit;
            if self.size & width == 0 {
                continue;
            }
            let node = nodes.next()?;
            if offset == start && offset + width == end {
                return Some(*node);
            }
            if offset >= start {
                return None;
            }
            offset += width;
        }
        None
    }
}

/// Leaves from which a subtree's two halves are hashed on separate cores.
const PARALLEL_LEAVES: usize = 1 << 14;

/// The root of a perfect subtree (`leaves.len()` a power of two).
fn perfect_root(leaves: &[Hash]) -> Hash {
    if let [leaf] = leaves {
        return *leaf;
    }
    let (left, right) = leaves.split_at(leaves.len() / 2);
    let (l, r) = if leaves.len() >= PARALLEL_LEAVES {
        rayon::join(|| perfect_root(left), || perfect_root(right))
    } else {
        (perfect_root(left), perfect_root(right))
    };
    node_hash(&l, &r)
}

/// The RFC 6962 tree head (MTH) over leaf hashes.
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier {
        size: 0,
        nodes: Vec::with_capacity(64),
    };
    frontier.extend(leaves);
    frontier.root()
}

/// The largest power of two strictly below `n` (`n >= 2`): where RFC 6962 splits a tree.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The tree made of a summarised prefix followed by retained leaves.
struct Tree<'a> {
    prefix: &'a Frontier,
    leaves: &'a [Hash],
}

impl Tree<'_> {
    fn size(&self) -> u64 {
        self.prefix.size + self.leaves.len() as u64
    }

    /// MTH of leaves `[start, end)`, `start < end <= size`.
    fn hash(&self, start: u64, end: u64) -> Result<Hash, MerkleError> {
        let kept = self.prefix.size;
        if start >= kept {
            let from = (start - kept) as usize;
            let to = (end - kept) as usize;
            return Ok(root_of(&self.leaves[from..to]));
        }
        if let Some(node) = self.prefix.subtree(start, end) {
            return Ok(node);
        }
        if end - start == 1 {
            return Err(MerkleError::NotDerivable { start, end });
        }
        // Straddles the retention boundary, or spans several frontier nodes.
        let mid = start + split(end - start);
        Ok(node_hash(&self.hash(start, mid)?, &self.hash(mid, end)?))
    }

    /// RFC 6962 PATH(index, D[start:end]), appended to `out` (deepest sibling first).
    fn path(
        &self,
        index: u64,
        start: u64,
        end: u64,
        out: &mut Vec<Hash>,
    ) -> Result<(), MerkleError> {
        if end - start == 1 {
            return Ok(());
        }
        let mid = start + split(end - start);
        if index < mid {
            self.path(index, start, mid, out)?;
            out.push(self.hash(mid, end)?);
        } else {
            self.path(index, mid, end, out)?;
            out.push(self.hash(start, mid)?);
        }
        Ok(())
    }

    /// RFC 6962 SUBPROOF(old_size - start, D[start:end], complete), appended to `out`.
    fn subproof(
        &self,
        old_size: u64,
        start: u64,
        end: u64,
        complete: bool,
        out: &mut Vec<Hash>,
    ) -> Result<(), MerkleError> {
        if old_size == end {
            if !complete {
                out.push(self.hash(start, end)?);
            }
            return Ok(());
        }
        let mid = start + split(end - start);
        if old_size <= mid {
            self.subproof(old_size, start, mid, complete, out)?;
            out.push(self.hash(mid, end)?);
        } else {
            self.subproof(old_size, mid, end, false, out)?;
            out.push(self.hash(start, mid)?);
        }
        Ok(())
    }
}

/// Audit path (RFC 6962 2.1.1) for leaf `index` in the tree made of the leaves of `prefix`
/// (already summarised, leaves `[0, prefix.size())`) followed by `leaves` (leaf hashes of
/// `[prefix.size(), prefix.size() + leaves.len())`). Errors when `index < prefix.size()` (those
/// leaves were deleted by retention) or `index >=` tree size.
pub fn inclusion_proof(
    prefix: &Frontier,
    leaves: &[Hash],
    index: u64,
) -> Result<Vec<Hash>, MerkleError> {
    let tree = Tree { prefix, leaves };
    let size = tree.size();
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    if index < prefix.size {
        return Err(MerkleError::LeafDeleted {
            index,
            retained_from: prefix.size,
        });
    }
    let mut proof = Vec::new();
    tree.path(index, 0, size, &mut proof)?;
    Ok(proof)
}

/// Whether `proof` shows that `leaf` (a leaf hash) is leaf `index` of the tree of `size` leaves
/// whose head is `root` (the verification algorithm of RFC 9162 section 2.1.3.2).
///
/// The size is bound to the root by whoever signed the root: a proof checked against a root
/// taken for another size proves nothing.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// Consistency proof (RFC 6962 2.1.2) between `old_size` and the tree `prefix` + `leaves`;
/// `old_size` must be `>= prefix.size()` and `<=` the tree size. Empty when `old_size` is 0 or
/// the tree size.
pub fn consistency_proof(
    prefix: &Frontier,
    leaves: &[Hash],
    old_size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    let tree = Tree { prefix, leaves };
    let size = tree.size();
    if old_size > size {
        return Err(MerkleError::OldSizeTooLarge { old_size, size });
    }
    if old_size < prefix.size {
        return Err(MerkleError::OldSizeDeleted {
            old_size,
            retained_from: prefix.size,
        });
    }
    let mut proof = Vec::new();
    if old_size > 0 {
        tree.subproof(old_size, 0, size, true, &mut proof)?;
    }
    Ok(proof)
}

/// Whether `proof` shows that the tree of `new_size` leaves with head `new_root` extends the
/// tree of `old_size` leaves with head `old_root` (RFC 9162 section 2.1.4.2). Equal sizes need
/// an empty proof and equal roots; old size 0 needs an empty proof and the empty tree's head.
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
        return proof.is_empty() && *old_root == empty_root();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path = proof.iter();
    // When the old tree is a perfect subtree of the new one, the proof leaves out its root.
    let first = if old_size.is_power_of_two() {
        *old_root
    } else {
        match path.next() {
            Some(h) => *h,
            None => return false,
        }
    };
    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = first;
    let mut sr = first;
    for c in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == *old_root && sr == *new_root && sn == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    fn hs(list: &[&str]) -> Vec<Hash> {
        list.iter().map(|s| h(s)).collect()
    }

    // Test vectors of transparency-dev/merkle (testonly/constants.go, proof/verify_test.go),
    // the Certificate Transparency reference data; used as data only.
    const INPUTS: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    /// Tree heads for sizes 0..=8.
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    /// Leaf hashes of INPUTS (level 0 of NodeHashes).
    const LEAF_HASHES: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ];
    const L1: [&str; 4] = [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ];
    const L2: [&str; 2] = [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ];

    fn vector_leaves() -> Vec<Hash> {
        INPUTS
            .iter()
            .map(|s| leaf_hash(&hex::decode(s).unwrap()))
            .collect()
    }

    /// Straightforward recursive MTH (RFC 6962 2.1), independent of the frontier.
    fn reference_mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => Sha256::digest(b"").into(),
            1 => leaves[0],
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                let mut hasher = Sha256::new();
                hasher.update([1u8]);
                hasher.update(reference_mth(&leaves[..k]));
                hasher.update(reference_mth(&leaves[k..]));
                hasher.finalize().into()
            }
        }
    }

    fn synthetic(n: usize) -> Vec<Hash> {
        (0..n as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn frontier_of(leaves: &[Hash]) -> Frontier {
        let mut f = Frontier::new();
        f.extend(leaves);
        f
    }

    /// Runs long enough to be hashed as parallel subtrees give the frontier that one leaf at
    /// a time gives, from any starting size.
    #[test]
    fn bulk_extend_matches_one_leaf_at_a_time() {
        let leaves = synthetic(3 * PARALLEL_LEAVES + 5);
        for cuts in [
            vec![leaves.len()],
            vec![3, 2 * PARALLEL_LEAVES + 1, leaves.len()],
            vec![PARALLEL_LEAVES, PARALLEL_LEAVES + 7, leaves.len()],
        ] {
            let mut bulk = Frontier::new();
            let mut from = 0;
            for to in cuts {
                bulk.extend(&leaves[from..to]);
                let mut one = Frontier::new();
                for leaf in &leaves[..to] {
                    one.push(*leaf);
                }
                assert_eq!(bulk, one, "after {to} leaves");
                from = to;
            }
        }
    }

    fn flip(hash: &Hash, bit: usize) -> Hash {
        let mut out = *hash;
        out[bit / 8] ^= 1 << (bit % 8);
        out
    }

    #[test]
    fn hashes_match_the_reference_vectors() {
        assert_eq!(empty_root(), h(ROOTS[0]));
        assert_eq!(root_of(&[]), h(ROOTS[0]));
        let leaves = vector_leaves();
        assert_eq!(leaves, hs(&LEAF_HASHES));
        for n in 1..=8 {
            assert_eq!(root_of(&leaves[..n]), h(ROOTS[n]), "size {n}");
            assert_eq!(frontier_of(&leaves[..n]).root(), h(ROOTS[n]), "size {n}");
        }
        assert_eq!(node_hash(&leaves[0], &leaves[1]), h(L1[0]));
        assert_eq!(node_hash(&h(L1[2]), &h(L1[3])), h(L2[1]));
    }

    #[test]
    fn frontier_nodes_match_the_reference_compact_trees() {
        let leaves = vector_leaves();
        let expected: [Vec<Hash>; 9] = [
            vec![],
            hs(&[LEAF_HASHES[0]]),
            hs(&[L1[0]]),
            hs(&[L1[0], LEAF_HASHES[2]]),
            hs(&[L2[0]]),
            hs(&[L2[0], LEAF_HASHES[4]]),
            hs(&[L2[0], L1[2]]),
            hs(&[L2[0], L1[2], LEAF_HASHES[6]]),
            hs(&[ROOTS[8]]),
        ];
        for (n, nodes) in expected.into_iter().enumerate() {
            let f = frontier_of(&leaves[..n]);
            assert_eq!(f.size(), n as u64);
            assert_eq!(f.nodes(), &nodes[..], "size {n}");
            assert_eq!(Frontier::from_parts(n as u64, nodes).unwrap(), f);
        }
    }

    #[test]
    fn from_parts_rejects_a_wrong_node_count() {
        let leaves = synthetic(7);
        let f = frontier_of(&leaves);
        assert_eq!(
            Frontier::from_parts(7, f.nodes()[..2].to_vec()),
            Err(MerkleError::FrontierNodeCount {
                size: 7,
                expected: 3,
                got: 2
            })
        );
        assert!(Frontier::from_parts(8, f.nodes().to_vec()).is_err());
        assert!(Frontier::from_parts(0, vec![leaves[0]]).is_err());
        assert_eq!(Frontier::from_parts(0, vec![]).unwrap(), Frontier::new());
        let back = Frontier::from_parts(7, f.nodes().to_vec()).unwrap();
        assert_eq!(back.root(), root_of(&leaves));
    }

    #[test]
    fn frontier_root_equals_root_of_for_every_size() {
        let leaves = synthetic(300);
        let mut f = Frontier::new();
        for n in 0..=300 {
            if n > 0 {
                f.push(leaves[n - 1]);
            }
            let expected = reference_mth(&leaves[..n]);
            assert_eq!(f.size(), n as u64);
            assert_eq!(f.nodes().len(), n.count_ones() as usize);
            assert_eq!(f.root(), expected, "size {n}");
            assert_eq!(root_of(&leaves[..n]), expected, "size {n}");
            // Extending a stored frontier gives the same state as pushing one by one.
            let half = n / 3;
            let mut resumed =
                Frontier::from_parts(half as u64, frontier_of(&leaves[..half]).nodes().to_vec())
                    .unwrap();
            resumed.extend(&leaves[half..n]);
            assert_eq!(resumed, f, "size {n}");
        }
    }

    #[test]
    fn inclusion_proofs_match_the_reference_vectors() {
        let leaves = vector_leaves();
        let cases: [(u64, usize, Vec<Hash>); 5] = [
            (0, 1, vec![]),
            (0, 8, hs(&[LEAF_HASHES[1], L1[1], L2[1]])),
            (5, 8, hs(&[LEAF_HASHES[4], L1[3], L2[0]])),
            (2, 3, hs(&[L1[0]])),
            (1, 5, hs(&[LEAF_HASHES[0], L1[1], LEAF_HASHES[4]])),
        ];
        for (index, size, proof) in cases {
            let got = inclusion_proof(&Frontier::new(), &leaves[..size], index).unwrap();
            assert_eq!(got, proof, "leaf {index} of {size}");
            assert!(verify_inclusion(
                &leaves[index as usize],
                index,
                size as u64,
                &proof,
                &h(ROOTS[size])
            ));
        }
    }

    #[test]
    fn consistency_proofs_match_the_reference_vectors() {
        let leaves = vector_leaves();
        let cases: [(u64, usize, Vec<Hash>); 5] = [
            (1, 1, vec![]),
            (1, 8, hs(&[LEAF_HASHES[1], L1[1], L2[1]])),
            (6, 8, hs(&[L1[2], L1[3], L2[0]])),
            (2, 5, hs(&[L1[1], LEAF_HASHES[4]])),
            (6, 7, hs(&[L1[2], LEAF_HASHES[6], L2[0]])),
        ];
        for (old, new, proof) in cases {
            let got = consistency_proof(&Frontier::new(), &leaves[..new], old).unwrap();
            assert_eq!(got, proof, "{old} -> {new}");
            assert!(verify_consistency(
                old,
                new as u64,
                &h(ROOTS[old as usize]),
                &h(ROOTS[new]),
                &proof
            ));
        }
    }

    /// Every tampering of a valid inclusion proof is rejected.
    fn assert_inclusion_tamper_fails(leaves: &[Hash], roots: &[Hash], index: u64, proof: &[Hash]) {
        let size = leaves.len() as u64;
        let leaf = &leaves[index as usize];
        let root = &roots[leaves.len()];
        let ctx = format!("leaf {index} of {size}");
        for i in 0..proof.len() {
            for bit in [0, 77, 255] {
                let mut bad = proof.to_vec();
                bad[i] = flip(&bad[i], bit);
                assert!(
                    !verify_inclusion(leaf, index, size, &bad, root),
                    "{ctx}: proof[{i}] bit {bit}"
                );
            }
        }
        assert!(
            !verify_inclusion(&flip(leaf, 3), index, size, proof, root),
            "{ctx}: leaf"
        );
        assert!(
            !verify_inclusion(leaf, index, size, proof, &flip(root, 200)),
            "{ctx}: root"
        );
        for other in [index.wrapping_sub(1), index + 1, index ^ 2, size] {
            if other != index {
                assert!(
                    !verify_inclusion(leaf, other, size, proof, root),
                    "{ctx}: index {other}"
                );
            }
        }
        // Another size, with the honest head of that size or with this one.
        let near = size.saturating_sub(3)..=size + 3;
        for other in near.chain([size * 2, size / 2]) {
            if other != size && (other as usize) < roots.len() {
                assert!(
                    !verify_inclusion(leaf, index, other, proof, &roots[other as usize]),
                    "{ctx}: size {other} with its root"
                );
            }
        }
        // With the same head, only sizes whose audit paths have another shape are caught: a
        // head is bound to its size by the signature over both, not by the proof.
        for other in [size * 2, size / 2] {
            assert!(
                !verify_inclusion(leaf, index, other, proof, root),
                "{ctx}: size {other}"
            );
        }
        if !proof.is_empty() {
            assert!(
                !verify_inclusion(leaf, index, size, &proof[..proof.len() - 1], root),
                "{ctx}: truncated"
            );
        }
        let mut longer = proof.to_vec();
        longer.push(*root);
        assert!(
            !verify_inclusion(leaf, index, size, &longer, root),
            "{ctx}: extended"
        );
        let mut front = vec![*leaf];
        front.extend_from_slice(proof);
        assert!(
            !verify_inclusion(leaf, index, size, &front, root),
            "{ctx}: prepended"
        );
    }

    #[test]
    fn inclusion_proofs_verify_and_tampering_fails() {
        const N: usize = 70;
        let all = synthetic(N);
        let roots: Vec<Hash> = (0..=N).map(|n| reference_mth(&all[..n])).collect();
        for n in 1..=N {
            let leaves = &all[..n];
            for index in 0..n as u64 {
                let proof = inclusion_proof(&Frontier::new(), leaves, index).unwrap();
                assert!(
                    verify_inclusion(&leaves[index as usize], index, n as u64, &proof, &roots[n]),
                    "leaf {index} of {n}"
                );
                assert_eq!(proof.len(), expected_path_len(index, n as u64));
                assert_inclusion_tamper_fails(leaves, &roots, index, &proof);
            }
            assert_eq!(
                inclusion_proof(&Frontier::new(), leaves, n as u64),
                Err(MerkleError::IndexOutOfRange {
                    index: n as u64,
                    size: n as u64
                })
            );
        }
        assert!(!verify_inclusion(&all[0], 0, 0, &[], &empty_root()));
    }

    /// Length of the RFC 6962 audit path, computed from the definition.
    fn expected_path_len(index: u64, size: u64) -> usize {
        if size <= 1 {
            return 0;
        }
        let k = split(size);
        if index < k {
            1 + expected_path_len(index, k)
        } else {
            1 + expected_path_len(index - k, size - k)
        }
    }

    /// Tree sizes 1..=70 with every retention point; every position up to size 32, and the
    /// positions at and next to the boundaries above (debug builds hash slowly: exhaustive up
    /// to 70 would take minutes).
    fn retention_cases(n: usize, kept: usize) -> Vec<u64> {
        if n <= 32 {
            return (kept as u64..=n as u64).collect();
        }
        let mut positions: Vec<u64> = [kept, kept + 1, (kept + n) / 2, n / 2, n - 2, n - 1, n]
            .into_iter()
            .filter(|&p| p >= kept && p <= n)
            .map(|p| p as u64)
            .collect();
        positions.sort_unstable();
        positions.dedup();
        positions
    }

    #[test]
    fn inclusion_proofs_after_retention_equal_the_full_ones() {
        const N: usize = 70;
        let all = synthetic(N);
        let prefixes: Vec<Frontier> = (0..=N).map(|k| frontier_of(&all[..k])).collect();
        for n in 1..=N {
            let leaves = &all[..n];
            let full: Vec<Vec<Hash>> = (0..n as u64)
                .map(|i| inclusion_proof(&Frontier::new(), leaves, i).unwrap())
                .collect();
            for (kept, prefix) in prefixes.iter().enumerate().take(n + 1) {
                let rest = &leaves[kept..];
                for index in retention_cases(n, kept) {
                    let got = inclusion_proof(prefix, rest, index);
                    match full.get(index as usize) {
                        Some(full) => {
                            assert_eq!(
                                got.as_ref(),
                                Ok(full),
                                "leaf {index} of {n}, {kept} deleted"
                            )
                        }
                        None => assert!(got.is_err()),
                    }
                }
                let k = kept as u64;
                for index in [0, k / 2, k.saturating_sub(1)]
                    .into_iter()
                    .filter(|&i| i < k)
                {
                    assert_eq!(
                        inclusion_proof(prefix, rest, index),
                        Err(MerkleError::LeafDeleted {
                            index,
                            retained_from: kept as u64
                        })
                    );
                }
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_and_tampering_fails() {
        const N: usize = 70;
        let all = synthetic(N);
        let roots: Vec<Hash> = (0..=N).map(|n| reference_mth(&all[..n])).collect();
        for new in 0..=N {
            let leaves = &all[..new];
            for old in 0..=new {
                let proof = consistency_proof(&Frontier::new(), leaves, old as u64).unwrap();
                let (o, n) = (old as u64, new as u64);
                let ctx = format!("{old} -> {new}");
                assert!(
                    verify_consistency(o, n, &roots[old], &roots[new], &proof),
                    "{ctx}"
                );
                assert_eq!(proof.is_empty(), old == 0 || old == new, "{ctx}");
                if new > 40 {
                    continue; // tampering below is quadratic per pair: a smaller range suffices
                }
                for i in 0..proof.len() {
                    for bit in [0, 100, 255] {
                        let mut bad = proof.clone();
                        bad[i] = flip(&bad[i], bit);
                        assert!(
                            !verify_consistency(o, n, &roots[old], &roots[new], &bad),
                            "{ctx}: proof[{i}]"
                        );
                    }
                }
                assert!(
                    !verify_consistency(o, n, &flip(&roots[old], 1), &roots[new], &proof),
                    "{ctx}: old root"
                );
                if old > 0 {
                    // (Every tree extends the empty one: nothing to check of its head.)
                    assert!(
                        !verify_consistency(o, n, &roots[old], &flip(&roots[new], 9), &proof),
                        "{ctx}: new root"
                    );
                }
                if old != new {
                    assert!(
                        !verify_consistency(o, n, &roots[new], &roots[old], &proof),
                        "{ctx}: swapped"
                    );
                    assert!(
                        !verify_consistency(n, o, &roots[old], &roots[new], &proof),
                        "{ctx}: sizes swapped"
                    );
                }
                if !proof.is_empty() {
                    assert!(
                        !verify_consistency(
                            o,
                            n,
                            &roots[old],
                            &roots[new],
                            &proof[..proof.len() - 1]
                        ),
                        "{ctx}: truncated"
                    );
                    assert!(
                        !verify_consistency(o, n, &roots[old], &roots[new], &[]),
                        "{ctx}: empty"
                    );
                    let mut front = vec![proof[0]];
                    front.extend_from_slice(&proof);
                    assert!(
                        !verify_consistency(o, n, &roots[old], &roots[new], &front),
                        "{ctx}: prepended"
                    );
                }
                let mut longer = proof.clone();
                longer.push(roots[new]);
                assert!(
                    !verify_consistency(o, n, &roots[old], &roots[new], &longer),
                    "{ctx}: extended"
                );
                // Other sizes, each with its honest head: the proof is not theirs.
                for (o2, n2) in [
                    (o.wrapping_sub(1), n),
                    (o + 1, n),
                    (o, n + 1),
                    (o, n.wrapping_sub(1)),
                ] {
                    if o2 <= N as u64 && n2 <= N as u64 && (o2, n2) != (o, n) {
                        assert!(
                            !verify_consistency(
                                o2,
                                n2,
                                &roots[o2 as usize],
                                &roots[n2 as usize],
                                &proof
                            ) || (proof.is_empty() && (o2 == 0 || o2 == n2)),
                            "{ctx}: as {o2} -> {n2}"
                        );
                    }
                }
                // Other sizes with these heads.
                if !proof.is_empty() {
                    for (o2, n2) in [(o - 1, n), (o + 1, n), (o ^ 2, n), (o, n * 2), (o, n / 2)] {
                        assert!(
                            !verify_consistency(o2, n2, &roots[old], &roots[new], &proof),
                            "{ctx}: claimed {o2} -> {n2}"
                        );
                    }
                }
            }
            assert_eq!(
                consistency_proof(&Frontier::new(), leaves, new as u64 + 1),
                Err(MerkleError::OldSizeTooLarge {
                    old_size: new as u64 + 1,
                    size: new as u64
                })
            );
        }
        // Size 0 is consistent with anything, but only as the empty tree.
        assert!(verify_consistency(0, 5, &empty_root(), &roots[5], &[]));
        assert!(!verify_consistency(0, 5, &roots[1], &roots[5], &[]));
        assert!(!verify_consistency(
            0,
            5,
            &empty_root(),
            &roots[5],
            &[roots[5]]
        ));
    }

    #[test]
    fn consistency_proofs_after_retention_equal_the_full_ones() {
        const N: usize = 70;
        let all = synthetic(N);
        let prefixes: Vec<Frontier> = (0..=N).map(|k| frontier_of(&all[..k])).collect();
        for new in 0..=N {
            let leaves = &all[..new];
            let full: Vec<Vec<Hash>> = (0..=new as u64)
                .map(|old| consistency_proof(&Frontier::new(), leaves, old).unwrap())
                .collect();
            for (kept, prefix) in prefixes.iter().enumerate().take(new + 1) {
                let rest = &leaves[kept..];
                for old in retention_cases(new, kept) {
                    let got = consistency_proof(prefix, rest, old);
                    assert_eq!(
                        got.as_ref(),
                        Ok(&full[old as usize]),
                        "{old} -> {new}, {kept} deleted"
                    );
                }
                if kept > 0 {
                    assert_eq!(
                        consistency_proof(prefix, rest, kept as u64 - 1),
                        Err(MerkleError::OldSizeDeleted {
                            old_size: kept as u64 - 1,
                            retained_from: kept as u64
                        })
                    );
                }
            }
        }
    }

    #[test]
    fn an_underivable_node_is_an_error_not_a_wrong_hash() {
        let leaves = synthetic(8);
        let prefix = frontier_of(&leaves[..4]);
        let tree = Tree {
            prefix: &prefix,
            leaves: &leaves[4..],
        };
        // Derivable: the frontier node, the whole tree, a range straddling the boundary.
        assert_eq!(tree.hash(0, 4), Ok(reference_mth(&leaves[..4])));
        assert_eq!(tree.hash(0, 8), Ok(reference_mth(&leaves)));
        assert_eq!(tree.hash(0, 6), Ok(reference_mth(&leaves[..6])));
        // Inside a deleted subtree: not derivable.
        assert_eq!(
            tree.hash(0, 2),
            Err(MerkleError::NotDerivable { start: 0, end: 1 })
        );
        assert!(tree.hash(2, 4).is_err());
        assert!(tree.hash(1, 2).is_err());
        // Several frontier nodes at the end of the prefix combine.
        let prefix = frontier_of(&leaves[..7]);
        let tree = Tree {
            prefix: &prefix,
            leaves: &leaves[7..],
        };
        assert_eq!(tree.hash(4, 7), Ok(reference_mth(&leaves[4..7])));
        assert_eq!(tree.hash(0, 7), Ok(reference_mth(&leaves[..7])));
    }

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1000, 512),
            (1 << 40, 1 << 39),
        ] {
            assert_eq!(split(n), k, "{n}");
        }
        assert_eq!(split(u64::MAX), 1 << 63);
    }
}
