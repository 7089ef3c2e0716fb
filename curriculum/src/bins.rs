//! Index buckets of pool indices ("bins"), maintained incrementally, with a per-bin
//! pass cursor so that no member repeats until its bin is exhausted.
//!
//! Every sampler keys each sample to one bin (RLCS: domain × tier; pass-rate
//! samplers: a quantised pass rate; PLR: score level × age window) and only moves the
//! samples an `observe` touched, so `select` costs O(batch · log bins), not O(pool).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

const NO_BIN: u32 = u32::MAX;

/// One bin: `members[..fresh]` have not been taken in the current pass over the bin,
/// `members[fresh..]` have.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Bin {
    members: Vec<u32>,
    fresh: u32,
}

/// Pool indices grouped into bins; moving a sample between bins is O(1).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BinIndex {
    bins: Vec<Bin>,
    bin_of: Vec<u32>,
    pos: Vec<u32>,
    /// Members taken per bin in the batch being selected (scratch, empty between calls).
    #[serde(skip)]
    taken: Vec<Vec<u32>>,
    #[serde(skip)]
    touched: Vec<u32>,
}

/// Equality of the saved part (the per-batch scratch is always empty between calls).
impl PartialEq for BinIndex {
    fn eq(&self, other: &Self) -> bool {
        self.bins == other.bins && self.bin_of == other.bin_of && self.pos == other.pos
    }
}

impl BinIndex {
    /// Indexes `n` samples, sample `i` into bin `key(i)`, with at least `bins` bins.
    pub fn build(bins: usize, n: usize, key: impl Fn(usize) -> u32) -> Self {
        let mut ix = BinIndex {
            bins: vec![Bin::default(); bins],
            bin_of: vec![NO_BIN; n],
            pos: vec![0; n],
            taken: Vec::new(),
            touched: Vec::new(),
        };
        for i in 0..n {
            let b = key(i);
            ix.insert(i as u32, b);
        }
        ix
    }

    /// Number of indexed samples the index was built for.
    pub fn pool_len(&self) -> usize {
        self.bin_of.len()
    }

    /// Number of bins.
    pub fn bins(&self) -> usize {
        self.bins.len()
    }

    /// Members of bin `b`.
    pub fn len(&self, b: usize) -> usize {
        self.bins.get(b).map_or(0, |x| x.members.len())
    }

    /// Heap bytes held (for memory reports).
    pub fn heap_bytes(&self) -> usize {
        self.bins
            .iter()
            .map(|b| b.members.capacity() * 4)
            .sum::<usize>()
            + self.bins.capacity() * std::mem::size_of::<Bin>()
            + (self.bin_of.capacity() + self.pos.capacity()) * 4
    }

    fn swap(&mut self, b: usize, p: usize, q: usize) {
        if p == q {
            return;
        }
        let bin = &mut self.bins[b];
        bin.members.swap(p, q);
        let (x, y) = (bin.members[p], bin.members[q]);
        self.pos[x as usize] = p as u32;
        self.pos[y as usize] = q as u32;
    }

    fn insert(&mut self, i: u32, b: u32) {
        let bu = b as usize;
        if bu >= self.bins.len() {
            self.bins.resize(bu + 1, Bin::default());
        }
        let p = self.bins[bu].members.len();
        self.bins[bu].members.push(i);
        self.bin_of[i as usize] = b;
        self.pos[i as usize] = p as u32;
        // A newcomer is fresh in its new bin.
        let f = self.bins[bu].fresh as usize;
        self.swap(bu, p, f);
        self.bins[bu].fresh += 1;
    }

    fn remove(&mut self, i: u32) {
        let b = self.bin_of[i as usize];
        if b == NO_BIN {
            return;
        }
        let bu = b as usize;
        let mut p = self.pos[i as usize] as usize;
        let fresh = self.bins[bu].fresh as usize;
        if p < fresh {
            self.swap(bu, p, fresh - 1);
            self.bins[bu].fresh -= 1;
            p = fresh - 1;
        }
        let last = self.bins[bu].members.len() - 1;
        self.swap(bu, p, last);
        self.bins[bu].members.pop();
        self.bin_of[i as usize] = NO_BIN;
    }

    /// Moves sample `i` to bin `b` (no-op when already there).
    pub fn move_to(&mut self, i: usize, b: u32) {
        if i >= self.bin_of.len() || self.bin_of[i] == b {
            return;
        }
        self.remove(i as u32);
        self.insert(i as u32, b);
    }

    /// Starts selecting a batch.
    pub fn begin_batch(&mut self) {
        if self.taken.len() < self.bins.len() {
            self.taken.resize(self.bins.len(), Vec::new());
        }
    }

    /// Ends a batch, forgetting what it took.
    pub fn end_batch(&mut self) {
        for &b in &self.touched {
            if let Some(t) = self.taken.get_mut(b as usize) {
                t.clear();
            }
        }
        self.touched.clear();
    }

    /// Members of bin `b` not yet taken in this batch.
    pub fn available(&self, b: usize) -> usize {
        self.len(b) - self.taken.get(b).map_or(0, Vec::len)
    }

    /// Takes a random member of bin `b` not taken before in this pass over the bin;
    /// a bin whose pass is over starts a new one (members taken in this batch stay
    /// out). `None` when the whole bin is already in this batch.
    pub fn take(&mut self, b: usize, rng: &mut ChaCha8Rng) -> Option<usize> {
        if self.available(b) == 0 {
            return None;
        }
        if self.taken.len() < self.bins.len() {
            self.taken.resize(self.bins.len(), Vec::new());
        }
        if self.bins[b].fresh == 0 {
            // New pass: everything is fresh again except this batch's picks.
            self.bins[b].fresh = self.bins[b].members.len() as u32;
            let taken = std::mem::take(&mut self.taken[b]);
            for &i in &taken {
                let p = self.pos[i as usize] as usize;
                let f = self.bins[b].fresh as usize;
                if p < f {
                    self.swap(b, p, f - 1);
                    self.bins[b].fresh -= 1;
                }
            }
            self.taken[b] = taken;
        }
        let f = self.bins[b].fresh as usize;
        let k = rng.random_range(0..f);
        self.swap(b, k, f - 1);
        self.bins[b].fresh -= 1;
        let i = self.bins[b].members[f - 1];
        if self.taken[b].is_empty() {
            self.touched.push(b as u32);
        }
        self.taken[b].push(i);
        Some(i as usize)
    }

    /// Checks internal consistency (tests).
    #[cfg(test)]
    pub fn check(&self) {
        for (b, bin) in self.bins.iter().enumerate() {
            assert!(bin.fresh as usize <= bin.members.len());
            for (p, &i) in bin.members.iter().enumerate() {
                assert_eq!(self.bin_of[i as usize] as usize, b);
                assert_eq!(self.pos[i as usize] as usize, p);
            }
        }
    }
}

/// Draws bins with probability proportional to a weight, without replacement of
/// weight: `reduce` lowers a bin's weight after a take. A Fenwick tree, so a draw
/// and an update are O(log bins).
#[derive(Debug, Clone)]
pub struct WeightedBins {
    tree: Vec<f64>,
    w: Vec<f64>,
}

impl WeightedBins {
    /// Over `weights` (negative or non-finite count as 0).
    pub fn new(weights: Vec<f64>) -> Self {
        let w: Vec<f64> = weights
            .into_iter()
            .map(|x| if x.is_finite() && x > 0.0 { x } else { 0.0 })
            .collect();
        let n = w.len();
        let mut tree = vec![0.0; n + 1];
        for i in 0..n {
            tree[i + 1] += w[i];
            let j = (i + 1) + ((i + 1) & (i + 1).wrapping_neg());
            if j <= n {
                let v = tree[i + 1];
                tree[j] += v;
            }
        }
        WeightedBins { tree, w }
    }

    /// Sets bin `b`'s weight.
    pub fn set(&mut self, b: usize, weight: f64) {
        let weight = if weight.is_finite() && weight > 0.0 {
            weight
        } else {
            0.0
        };
        let Some(old) = self.w.get_mut(b) else { return };
        let delta = weight - *old;
        *old = weight;
        let n = self.w.len();
        let mut i = b + 1;
        while i <= n {
            self.tree[i] += delta;
            i += i & i.wrapping_neg();
        }
    }

    /// Draws a bin with positive weight, or `None` when all weights are 0.
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> Option<usize> {
        let n = self.w.len();
        let total = self.tree_total();
        if total <= 0.0 || n == 0 {
            return None;
        }
        let mut rem = rng.random::<f64>() * total;
        let mut pos = 0usize;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next] <= rem {
                pos = next;
                rem -= self.tree[next];
            }
            step >>= 1;
        }
        // Rounding can land on a zero-weight bin: take the nearest positive one.
        if pos < n && self.w[pos] > 0.0 {
            return Some(pos);
        }
        (pos.min(n)..n)
            .chain((0..pos.min(n)).rev())
            .find(|&b| self.w[b] > 0.0)
    }

    fn tree_total(&self) -> f64 {
        let mut i = self.w.len();
        let mut s = 0.0;
        while i > 0 {
            s += self.tree[i];
            i -= i & i.wrapping_neg();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn moves_keep_the_index_consistent_and_passes_cover_bins() {
        let mut ix = BinIndex::build(3, 10, |i| (i % 3) as u32);
        ix.check();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        ix.move_to(4, 2);
        ix.move_to(5, 0);
        ix.move_to(5, 0);
        ix.check();
        assert_eq!(ix.len(0) + ix.len(1) + ix.len(2), 10);
        // Two passes over bin 0 in batches of 1: every member once per pass.
        let n0 = ix.len(0);
        let mut seen = Vec::new();
        for _ in 0..2 * n0 {
            ix.begin_batch();
            seen.push(ix.take(0, &mut rng).unwrap());
            ix.end_batch();
            ix.check();
        }
        let (a, b) = seen.split_at(n0);
        let (mut a, mut b) = (a.to_vec(), b.to_vec());
        a.sort();
        b.sort();
        assert_eq!(a, b);
        a.dedup();
        assert_eq!(a.len(), n0);
    }

    #[test]
    fn a_batch_never_repeats_across_a_pass_boundary() {
        let mut ix = BinIndex::build(1, 3, |_| 0);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        ix.begin_batch();
        let x = ix.take(0, &mut rng).unwrap();
        ix.end_batch();
        ix.begin_batch();
        let mut got: Vec<_> = (0..3).filter_map(|_| ix.take(0, &mut rng)).collect();
        assert_eq!(ix.take(0, &mut rng), None);
        ix.end_batch();
        got.sort();
        assert_eq!(got, vec![0, 1, 2]);
        let _ = x;
        ix.check();
    }

    #[test]
    fn weighted_bins_draw_by_weight() {
        let mut w = WeightedBins::new(vec![0.0, 1.0, 3.0, 0.0]);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut c = [0usize; 4];
        for _ in 0..4000 {
            c[w.draw(&mut rng).unwrap()] += 1;
        }
        assert_eq!(c[0] + c[3], 0);
        assert!(c[2] > 2 * c[1]);
        w.set(1, 0.0);
        w.set(2, 0.0);
        assert_eq!(w.draw(&mut rng), None);
        w.set(3, 0.5);
        assert_eq!(w.draw(&mut rng), Some(3));
    }
}
