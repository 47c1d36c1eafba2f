//! The search's memo of explored configurations (linearized set, register
//! value), with its hashing.

use super::events::NIL;
use super::model::State;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// splitmix64: deterministic pseudo-random hash keys.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Passes an already well-mixed `u64` through as its own hash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Memo of explored configurations: exact (bitset, state) pairs, stored flat,
/// found through a Zobrist hash of the bitset combined with the state.
pub(super) struct Cache {
    words: usize,
    heads: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    next: Vec<u32>,
    states: Vec<State>,
    bits: Vec<u64>,
}

impl Cache {
    pub(super) fn new(words: usize) -> Self {
        Cache { words, heads: HashMap::default(), next: Vec::new(), states: Vec::new(), bits: Vec::new() }
    }

    pub(super) fn len(&self) -> usize {
        self.states.len()
    }

    /// Approximate memory held, in bytes.
    pub(super) fn bytes(&self) -> u64 {
        (self.len() * (self.words * 8 + 8 + 16)) as u64
    }

    /// Inserts the configuration; false if it was already present.
    pub(super) fn insert(&mut self, bits: &[u64], hash: u64, state: State) -> bool {
        let Cache { words, heads, next, states, bits: arena } = self;
        let w = *words;
        let new = states.len() as u32;
        let prev = match heads.get(&hash) {
            Some(&first) => {
                let mut i = first;
                while i != NIL {
                    let iu = i as usize;
                    if states[iu] == state && arena[iu * w..(iu + 1) * w] == *bits {
                        return false;
                    }
                    i = next[iu];
                }
                first
            }
            None => NIL,
        };
        heads.insert(hash, new);
        next.push(prev);
        states.push(state);
        arena.extend_from_slice(bits);
        true
    }
}
