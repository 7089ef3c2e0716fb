//! Sequence packing and the learning-rate schedule — the parts of training that need
//! no tensors.

use serde::{Deserialize, Serialize};

/// Sequences packed into rows of a fixed capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct Packing {
    /// Each row's sequence indices, in the order they are laid out.
    pub rows: Vec<Vec<usize>>,
    /// Row capacity in tokens.
    pub capacity: usize,
    /// Tokens of real sequences (the sum of the packed lengths).
    pub real_tokens: usize,
}

impl Packing {
    /// Share of the rows' tokens that belong to sequences (1.0 = no padding).
    pub fn efficiency(&self) -> f64 {
        let total = self.rows.len() * self.capacity;
        if total == 0 {
            1.0
        } else {
            self.real_tokens as f64 / total as f64
        }
    }
}

/// A sequence longer than the row capacity.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("sequence {index} has {len} tokens, more than the packing capacity of {capacity}")]
pub struct TooLong {
    /// The sequence.
    pub index: usize,
    /// Its length.
    pub len: usize,
    /// The capacity.
    pub capacity: usize,
}

/// Best-fit decreasing: sequences longest first, each into the fullest row it still
/// fits, else a new row. Deterministic (ties keep input order).
pub fn best_fit(lengths: &[usize], capacity: usize) -> Result<Packing, TooLong> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    // Free space per row, kept in a sorted multiset (space, row) for the best fit.
    let mut free: std::collections::BTreeSet<(usize, usize)> = Default::default();
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut real = 0;
    for i in order {
        let len = lengths[i];
        if len > capacity {
            return Err(TooLong {
                index: i,
                len,
                capacity,
            });
        }
        if len == 0 {
            continue;
        }
        real += len;
        match free.range((len, 0)..).next().copied() {
            Some((space, row)) => {
                free.remove(&(space, row));
                rows[row].push(i);
                free.insert((space - len, row));
            }
            None => {
                rows.push(vec![i]);
                free.insert((capacity - len, rows.len() - 1));
            }
        }
    }
    Ok(Packing {
        rows,
        capacity,
        real_tokens: real,
    })
}

/// Learning rate: linear warmup from 0, then cosine decay to `min_ratio · peak`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    /// Peak learning rate.
    pub lr: f64,
    /// Steps of linear warmup.
    pub warmup_steps: u64,
    /// Step at which the cosine reaches its floor (and stays).
    pub total_steps: u64,
    /// Floor as a share of the peak.
    pub min_ratio: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            lr: 1e-3,
            warmup_steps: 10,
            total_steps: 1000,
            min_ratio: 0.1,
        }
    }
}

impl Schedule {
    /// The rate for optimiser step `step` (0-based).
    pub fn at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let t = ((step - self.warmup_steps) as f64 / span as f64).min(1.0);
        let floor = self.lr * self.min_ratio;
        floor + (self.lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }

    /// Checks the values; the message names the field.
    pub fn validate(&self, table: &str) -> Result<(), String> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!(
                "{table}.lr must be a positive number, got {}",
                self.lr
            ));
        }
        if !(0.0..=1.0).contains(&self.min_ratio) {
            return Err(format!(
                "{table}.min_ratio must be in [0, 1], got {}",
                self.min_ratio
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn best_fit_packs_everything_once_within_capacity() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let lengths: Vec<usize> = (0..2000).map(|_| rng.random_range(20..400)).collect();
        let p = best_fit(&lengths, 1024).unwrap();
        let mut seen = vec![false; lengths.len()];
        for row in &p.rows {
            assert!(row.iter().map(|&i| lengths[i]).sum::<usize>() <= 1024);
            for &i in row {
                assert!(!seen[i]);
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
        assert!(p.efficiency() >= 0.97, "efficiency {}", p.efficiency());
    }

    #[test]
    fn too_long_sequences_are_named() {
        let e = best_fit(&[3, 9, 2], 8).unwrap_err();
        assert_eq!(e.index, 1);
        assert!(e.to_string().contains("sequence 1 has 9 tokens"));
        assert_eq!(best_fit(&[], 8).unwrap().efficiency(), 1.0);
    }

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        let s = Schedule {
            lr: 1.0,
            warmup_steps: 4,
            total_steps: 14,
            min_ratio: 0.1,
        };
        assert_eq!(s.at(0), 0.25);
        assert_eq!(s.at(3), 1.0);
        assert!((s.at(4) - 1.0).abs() < 1e-12);
        assert!((s.at(9) - 0.55).abs() < 1e-12);
        assert!((s.at(14) - 0.1).abs() < 1e-12);
        assert!((s.at(100) - 0.1).abs() < 1e-12);
        assert!(s.at(6) > s.at(7));
    }
}
