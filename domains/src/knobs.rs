//! Seeded choices the generators share: a uniform pick, difficulty interpolation and
//! question kinds unlocked by difficulty.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A uniformly chosen item, or `fallback` when there are none.
pub(crate) fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T], fallback: T) -> T {
    if items.is_empty() {
        return fallback;
    }
    items
        .get(rng.random_range(0..items.len()))
        .copied()
        .unwrap_or(fallback)
}

/// `a` at difficulty 0 to `b` at difficulty 1, rounded.
pub(crate) fn lerp(a: f64, b: f64, d: f64) -> i64 {
    (a + (b - a) * d).round() as i64
}

/// A question kind: kinds 0 and 1 always, kind `2 + i` once difficulty reaches
/// `unlock[i]`; half the time the newest unlocked kind, else any unlocked one.
pub(crate) fn unlocked_kind(rng: &mut ChaCha8Rng, d: f32, unlock: &[f32]) -> usize {
    let mut kinds = vec![0usize, 1];
    kinds.extend(
        unlock
            .iter()
            .enumerate()
            .filter(|(_, &u)| d >= u)
            .map(|(i, _)| i + 2),
    );
    let newest = kinds.last().copied().unwrap_or(0);
    if rng.random_bool(0.5) {
        newest
    } else {
        pick(rng, &kinds, 0)
    }
}
