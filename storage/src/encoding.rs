//! The binary layout of the store's records, shared by every backend.
//!
//! History is log-structured: one value per `(run, iteration)` holds all observations
//! of that iteration, sorted by sample, each packed in about 12 bytes:
//!
//! ```text
//! iteration key   run u16 BE | iteration u32 BE                       (6 bytes)
//! iteration value version u8 | n varint | base_policy_version varint
//!                 n × record:
//!                   sample u64 LE
//!                   flags u8      bits 0-1 reward mode (0 explicit f32, 1 = s/n in f32,
//!                                 2 = s/n in f64 cast to f32), bit 2 policy version
//!                                 differs from the base; bits 3-7 zero
//!                   rollouts varint | successes varint | tier_after u8
//!                   [policy_version − base varint] [mean_reward f32 LE]
//! counters key    "count/" | run u16 BE                              (in the meta table)
//! counters value  version u8 | observations varint | iterations varint
//!                 | last_iteration varint
//! ```
//!
//! Per-sample totals are not stored: one scan of the log derives them (tens of
//! millions of observations per second), which keeps an append to one read and two
//! writes per iteration.
//!
//! Decoding never panics: every malformed input is a [`DecodeError`].

use rlcs_curriculum::{Observation, SampleId};

/// Encoding version of iteration and sample records; bumped on any layout change.
pub const HISTORY_ENCODING: u8 = 1;

/// Compact index of a run in one store (0 = observations appended with no run registered).
pub type RunIndex = u16;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Written with a newer encoding version.
    Newer(u8),
    /// Malformed.
    Corrupt(String),
}

fn corrupt<T>(reason: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError::Corrupt(reason.into()))
}

/// Appends `v` as LEB128.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A cursor over a record's bytes.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads `bytes` from the start.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        match self.bytes.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => corrupt(format!("truncated at byte {}", self.pos)),
        }
    }

    /// `N` bytes.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let end = self.pos.checked_add(N);
        match end.and_then(|e| self.bytes.get(self.pos..e)) {
            Some(s) => {
                let mut a = [0u8; N];
                a.copy_from_slice(s);
                self.pos += N;
                Ok(a)
            }
            None => corrupt(format!(
                "truncated at byte {} (need {N} of {})",
                self.pos,
                self.bytes.len()
            )),
        }
    }

    /// A LEB128 integer of at most 64 bits.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let part = (b & 0x7f) as u64;
            if shift == 63 && part > 1 {
                return corrupt("varint overflows 64 bits");
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        corrupt("varint longer than 10 bytes")
    }

    /// A varint that must fit in a `u32`.
    pub fn varint_u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        let v = self.varint()?;
        u32::try_from(v).or_else(|_| corrupt(format!("{what} {v} exceeds u32")))
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            corrupt(format!(
                "{} trailing bytes after byte {}",
                self.bytes.len() - self.pos,
                self.pos
            ))
        }
    }

    fn version(&mut self) -> Result<(), DecodeError> {
        match self.u8() {
            Ok(v) if v == HISTORY_ENCODING => Ok(()),
            Ok(v) if v > HISTORY_ENCODING => Err(DecodeError::Newer(v)),
            Ok(v) => corrupt(format!("unknown encoding version {v}")),
            Err(_) => corrupt("empty record"),
        }
    }
}

/// Key of an iteration record.
pub fn iteration_key(run: RunIndex, iteration: u32) -> [u8; 6] {
    let mut k = [0u8; 6];
    k[..2].copy_from_slice(&run.to_be_bytes());
    k[2..].copy_from_slice(&iteration.to_be_bytes());
    k
}

/// `(run, iteration)` of an iteration key.
pub fn parse_iteration_key(key: &[u8]) -> Result<(RunIndex, u32), DecodeError> {
    match key {
        [a, b, c, d, e, f] => Ok((
            u16::from_be_bytes([*a, *b]),
            u32::from_be_bytes([*c, *d, *e, *f]),
        )),
        _ => corrupt(format!("iteration key of {} bytes, expected 6", key.len())),
    }
}

const REWARD_EXPLICIT: u8 = 0;
const REWARD_F32_RATIO: u8 = 1;
const REWARD_F64_RATIO: u8 = 2;
const POLICY_DIFFERS: u8 = 0b100;
const RESERVED: u8 = !0b111;

fn reward_f32_ratio(successes: u32, rollouts: u32) -> f32 {
    if rollouts == 0 {
        0.0
    } else {
        successes as f32 / rollouts as f32
    }
}

fn reward_f64_ratio(successes: u32, rollouts: u32) -> f32 {
    (successes as f64 / rollouts.max(1) as f64) as f32
}

/// One observation inside an iteration record (the iteration is the record's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Packed {
    /// The sample.
    pub sample: SampleId,
    /// Policy version.
    pub policy_version: u64,
    /// Rollouts.
    pub rollouts: u32,
    /// Successes.
    pub successes: u32,
    /// Mean reward.
    pub mean_reward: f32,
    /// Tier after.
    pub tier_after: u8,
}

impl Packed {
    /// The packed part of an observation.
    pub fn of(o: &Observation) -> Self {
        Packed {
            sample: o.sample,
            policy_version: o.policy_version,
            rollouts: o.rollouts,
            successes: o.successes,
            mean_reward: o.mean_reward,
            tier_after: o.tier_after,
        }
    }

    /// The observation at `iteration`.
    pub fn at(&self, iteration: u32) -> Observation {
        Observation {
            sample: self.sample,
            iteration,
            policy_version: self.policy_version,
            rollouts: self.rollouts,
            successes: self.successes,
            mean_reward: self.mean_reward,
            tier_after: self.tier_after,
        }
    }
}

/// Encodes one iteration's observations; `records` must be sorted by sample with no
/// duplicates (the caller guarantees it).
pub fn encode_iteration(records: &[Packed]) -> Vec<u8> {
    let base = records.iter().map(|r| r.policy_version).min().unwrap_or(0);
    let mut out = Vec::with_capacity(12 + records.len() * 13);
    out.push(HISTORY_ENCODING);
    put_varint(&mut out, records.len() as u64);
    put_varint(&mut out, base);
    for r in records {
        out.extend_from_slice(&r.sample.to_le_bytes());
        let bits = r.mean_reward.to_bits();
        let mut flags = if bits == reward_f32_ratio(r.successes, r.rollouts).to_bits() {
            REWARD_F32_RATIO
        } else if bits == reward_f64_ratio(r.successes, r.rollouts).to_bits() {
            REWARD_F64_RATIO
        } else {
            REWARD_EXPLICIT
        };
        if r.policy_version != base {
            flags |= POLICY_DIFFERS;
        }
        out.push(flags);
        put_varint(&mut out, r.rollouts as u64);
        put_varint(&mut out, r.successes as u64);
        out.push(r.tier_after);
        if flags & POLICY_DIFFERS != 0 {
            put_varint(&mut out, r.policy_version - base);
        }
        if flags & 0b11 == REWARD_EXPLICIT {
            out.extend_from_slice(&bits.to_le_bytes());
        }
    }
    out
}

/// Decodes an iteration record.
pub fn decode_iteration(bytes: &[u8]) -> Result<Vec<Packed>, DecodeError> {
    let mut r = Reader::new(bytes);
    r.version()?;
    let n = r.varint()?;
    // Each record takes at least 12 bytes: a count beyond that is corruption, and
    // must not drive an allocation.
    if n > (bytes.len() / 12) as u64 {
        return corrupt(format!("{n} records cannot fit in {} bytes", bytes.len()));
    }
    let base = r.varint()?;
    let mut out = Vec::with_capacity(n as usize);
    let mut prev: Option<SampleId> = None;
    for i in 0..n {
        let sample = u64::from_le_bytes(r.array()?);
        if prev.is_some_and(|p| p >= sample) {
            return corrupt(format!("record {i}: samples out of order"));
        }
        prev = Some(sample);
        let flags = r.u8()?;
        if flags & RESERVED != 0 || flags & 0b11 == 0b11 {
            return corrupt(format!("record {i}: unknown flags {flags:#04x}"));
        }
        let rollouts = r.varint_u32("rollouts")?;
        let successes = r.varint_u32("successes")?;
        if successes > rollouts {
            return corrupt(format!(
                "record {i}: {successes} successes of {rollouts} rollouts"
            ));
        }
        let tier_after = r.u8()?;
        let policy_version = if flags & POLICY_DIFFERS != 0 {
            let d = r.varint()?;
            match base.checked_add(d) {
                Some(v) => v,
                None => return corrupt(format!("record {i}: policy version overflows")),
            }
        } else {
            base
        };
        let mean_reward = match flags & 0b11 {
            REWARD_F32_RATIO => reward_f32_ratio(successes, rollouts),
            REWARD_F64_RATIO => reward_f64_ratio(successes, rollouts),
            _ => f32::from_bits(u32::from_le_bytes(r.array()?)),
        };
        out.push(Packed {
            sample,
            policy_version,
            rollouts,
            successes,
            mean_reward,
            tier_after,
        });
    }
    r.finish()?;
    Ok(out)
}

/// Totals of one sample over every run of the store, accumulated in key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Rollouts.
    pub attempts: u64,
    /// Correct rollouts.
    pub successes: u64,
    /// Observations.
    pub observations: u64,
    /// Run of the earliest observation (a lower bound once one was replaced).
    pub first_run: RunIndex,
    /// Iteration of the earliest observation.
    pub first_iteration: u32,
    /// Run of the latest observation.
    pub last_run: RunIndex,
    /// Iteration of the latest observation.
    pub last_iteration: u32,
    /// Tier after the latest observation.
    pub tier: u8,
}

impl Totals {
    /// Adds an observation at `(run, iteration)`.
    pub fn add(&mut self, run: RunIndex, iteration: u32, p: &Packed) {
        self.attempts += p.rollouts as u64;
        self.successes += p.successes as u64;
        if self.observations == 0 || (run, iteration) < (self.first_run, self.first_iteration) {
            self.first_run = run;
            self.first_iteration = iteration;
        }
        if self.observations == 0 || (run, iteration) >= (self.last_run, self.last_iteration) {
            self.last_run = run;
            self.last_iteration = iteration;
            self.tier = p.tier_after;
        }
        self.observations += 1;
    }
}

/// Per-run counters kept beside the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunCounters {
    /// Observations stored.
    pub observations: u64,
    /// Iterations stored.
    pub iterations: u64,
    /// Highest iteration stored.
    pub last_iteration: u32,
}

impl RunCounters {
    /// Encodes the counters.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12);
        out.push(HISTORY_ENCODING);
        put_varint(&mut out, self.observations);
        put_varint(&mut out, self.iterations);
        put_varint(&mut out, self.last_iteration as u64);
        out
    }

    /// Decodes counters.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version()?;
        let observations = r.varint()?;
        let iterations = r.varint()?;
        let last_iteration = r.varint_u32("iteration")?;
        r.finish()?;
        Ok(RunCounters {
            observations,
            iterations,
            last_iteration,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_observation_packs_into_12_bytes() {
        let recs: Vec<Packed> = (0..100u64)
            .map(|i| Packed {
                sample: i * 7919,
                policy_version: 42,
                rollouts: 8,
                successes: (i % 9) as u32,
                mean_reward: (i % 9) as f32 / 8.0,
                tier_after: 3,
            })
            .collect();
        let bytes = encode_iteration(&recs);
        assert!(bytes.len() <= 100 * 12 + 4, "{}", bytes.len());
        assert_eq!(decode_iteration(&bytes).unwrap(), recs);
    }

    #[test]
    fn varint_rejects_overflow_and_truncation() {
        let mut r = Reader::new(&[0xff; 11]);
        assert!(r.varint().is_err());
        let mut r = Reader::new(&[0x80]);
        assert!(r.varint().is_err());
        let mut v = Vec::new();
        put_varint(&mut v, u64::MAX);
        assert_eq!(Reader::new(&v).varint().unwrap(), u64::MAX);
    }
}
