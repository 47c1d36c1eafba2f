//! The seed tree: one `u64` seed, one ChaCha stream per component.
//!
//! Every random choice of a run comes from a [`SimRng`] derived from the run's
//! seed by a label (`"network"`, `"disk/3"`, `"node/2/0"`, …), so adding draws to
//! one component never shifts the draws of another.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// FNV-1a over bytes: a stable, dependency-free 64-bit hash (also used for trace hashes).
pub fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    let mut hash = hash;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The FNV-1a offset basis.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Derives the sub-seed of component `label` from the run's `seed`.
pub fn derive_seed(seed: u64, label: &str) -> u64 {
    let mixed = fnv1a(fnv1a(FNV_OFFSET, &seed.to_le_bytes()), label.as_bytes());
    ChaCha8Rng::seed_from_u64(mixed).next_u64()
}

/// A deterministic random stream with the few helpers the simulator needs.
#[derive(Clone, Debug)]
pub struct SimRng {
    inner: ChaCha8Rng,
}

impl SimRng {
    /// The stream of component `label` under `seed`.
    pub fn derive(seed: u64, label: &str) -> SimRng {
        SimRng::from_seed(derive_seed(seed, label))
    }

    /// A stream from a seed directly.
    pub fn from_seed(seed: u64) -> SimRng {
        SimRng { inner: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// A raw 64-bit draw.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in `[low, high]` (inclusive). `low > high` is a bug.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high, "empty range {low}..={high}");
        let span = high - low;
        if span == u64::MAX {
            return self.next_u64();
        }
        // Multiply-shift: unbiased enough for simulation and fully deterministic.
        let draw = (u128::from(self.next_u64()) * u128::from(span + 1)) >> 64;
        low + draw as u64
    }

    /// Uniform index into a collection of `len` items.
    pub fn index(&mut self, len: usize) -> usize {
        assert!(len > 0, "index into an empty collection");
        self.range(0, len as u64 - 1) as usize
    }

    /// True with probability `probability` (clamped to `[0, 1]`).
    pub fn chance(&mut self, probability: f64) -> bool {
        if probability <= 0.0 {
            return false;
        }
        if probability >= 1.0 {
            return true;
        }
        let threshold = (probability * (u64::MAX as f64)) as u64;
        self.next_u64() < threshold
    }

    /// A uniform float in `[low, high)`.
    pub fn float(&mut self, low: f64, high: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        low + unit * (high - low)
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_seeds_are_stable_and_distinct() {
        assert_eq!(derive_seed(7, "network"), derive_seed(7, "network"));
        assert_ne!(derive_seed(7, "network"), derive_seed(7, "disk"));
        assert_ne!(derive_seed(7, "network"), derive_seed(8, "network"));
    }

    #[test]
    fn ranges_stay_inside_their_bounds() {
        let mut rng = SimRng::from_seed(1);
        for _ in 0..1000 {
            let value = rng.range(3, 5);
            assert!((3..=5).contains(&value), "{value}");
        }
        assert_eq!(rng.range(9, 9), 9);
        assert!(!rng.chance(0.0));
        assert!(rng.chance(1.0));
    }
}
