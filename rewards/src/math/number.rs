//! Exact rationals over `i128` with an `f64` fallback.
//!
//! Every operation is checked: on `i128` overflow a result falls back to
//! [`Number::Real`]; results may then be non-finite (an overflow), which callers treat
//! as "not comparable" rather than as a value.

/// A parsed numeric answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An exact rational `num/den`, reduced to lowest terms, with `den > 0`.
    Rational {
        /// Numerator (carries the sign).
        num: i128,
        /// Denominator, always positive.
        den: i128,
    },
    /// An approximate real (irrational, or too large for `i128`). Values returned by
    /// [`crate::math::parse_number`] are finite.
    Real(f64),
}

/// Largest integer exponent evaluated exactly by repeated squaring.
const MAX_EXACT_EXPONENT: i128 = 4096;
/// Largest root index (`\sqrt[n]{}`, `x^{p/n}`) tried exactly.
const MAX_EXACT_ROOT: i128 = 64;

impl Number {
    /// The value as an `f64` (possibly rounded).
    pub fn to_f64(&self) -> f64 {
        match *self {
            Number::Rational { num, den } => num as f64 / den as f64,
            Number::Real(x) => x,
        }
    }

    /// An integer.
    pub(crate) const fn int(n: i128) -> Number {
        Number::Rational { num: n, den: 1 }
    }

    /// Whether the value is exact.
    pub(crate) fn is_exact(&self) -> bool {
        matches!(self, Number::Rational { .. })
    }

    /// The integer value, when exact and integral.
    pub(crate) fn as_int(&self) -> Option<i128> {
        match *self {
            Number::Rational { num, den: 1 } => Some(num),
            _ => None,
        }
    }

    /// `num/den` reduced with a positive denominator; `None` when `den == 0`.
    pub(crate) fn rational(num: i128, den: i128) -> Option<Number> {
        if den == 0 {
            return None;
        }
        let (n_mag, d_mag) = (num.unsigned_abs(), den.unsigned_abs());
        let g = gcd(n_mag, d_mag);
        let (n_mag, d_mag) = (n_mag / g, d_mag / g);
        let negative = (num < 0) != (den < 0);
        match (i128::try_from(n_mag), i128::try_from(d_mag)) {
            (Ok(n), Ok(d)) => Some(Number::Rational {
                num: if negative { -n } else { n },
                den: d,
            }),
            _ => Some(Number::Real(num as f64 / den as f64)),
        }
    }

    /// `-self`.
    pub(crate) fn neg(self) -> Number {
        match self {
            Number::Rational { num, den } => match num.checked_neg() {
                Some(n) => Number::Rational { num: n, den },
                None => Number::Real(-(num as f64) / den as f64),
            },
            Number::Real(x) => Number::Real(-x),
        }
    }

    /// `self + other`.
    pub(crate) fn add(self, other: Number) -> Number {
        if let (Number::Rational { num: p, den: q }, Number::Rational { num: r, den: s }) =
            (self, other)
        {
            let g = gcd(q.unsigned_abs(), s.unsigned_abs()) as i128;
            let exact = (|| {
                let n = p.checked_mul(s / g)?.checked_add(r.checked_mul(q / g)?)?;
                let d = (q / g).checked_mul(s)?;
                Number::rational(n, d)
            })();
            if let Some(v) = exact {
                return v;
            }
        }
        Number::Real(self.to_f64() + other.to_f64())
    }

    /// `self - other`.
    pub(crate) fn sub(self, other: Number) -> Number {
        self.add(other.neg())
    }

    /// `self · other`.
    pub(crate) fn mul(self, other: Number) -> Number {
        if let (Number::Rational { num: p, den: q }, Number::Rational { num: r, den: s }) =
            (self, other)
        {
            // Cross-reduce first to keep intermediates small.
            let g1 = gcd(p.unsigned_abs(), s.unsigned_abs()).max(1) as i128;
            let g2 = gcd(r.unsigned_abs(), q.unsigned_abs()).max(1) as i128;
            if let (Some(n), Some(d)) = ((p / g1).checked_mul(r / g2), (q / g2).checked_mul(s / g1))
            {
                if let Some(v) = Number::rational(n, d) {
                    return v;
                }
            }
        }
        Number::Real(self.to_f64() * other.to_f64())
    }

    /// `self / other`; NaN on division by zero.
    pub(crate) fn div(self, other: Number) -> Number {
        match other {
            Number::Rational { num: 0, .. } => Number::Real(f64::NAN),
            Number::Rational { num, den } => match num.checked_neg() {
                Some(_) => self.mul(Number::Rational {
                    num: if num < 0 { -den } else { den },
                    den: num.abs(),
                }),
                None => Number::Real(self.to_f64() / other.to_f64()),
            },
            Number::Real(x) => Number::Real(self.to_f64() / x),
        }
    }

    /// `self ^ exp`, exact where the result is rational and small; NaN where undefined.
    pub(crate) fn pow(self, exp: Number) -> Number {
        if let (Number::Rational { num, den }, Number::Rational { num: p, den: q }) = (self, exp) {
            if num == 0 {
                return match p.signum() {
                    1 => Number::int(0),
                    0 => Number::int(1),
                    _ => Number::Real(f64::NAN),
                };
            }
            if num == 1 && den == 1 {
                return Number::int(1);
            }
            if q == 1 {
                if num == -1 && den == 1 {
                    return Number::int(if p % 2 == 0 { 1 } else { -1 });
                }
                if p.abs() <= MAX_EXACT_EXPONENT {
                    if let (Some(n), Some(d)) =
                        (ipow(num, p.unsigned_abs()), ipow(den, p.unsigned_abs()))
                    {
                        let v = if p >= 0 {
                            Number::rational(n, d)
                        } else {
                            Number::rational(d, n)
                        };
                        if let Some(v) = v {
                            return v;
                        }
                    }
                }
            } else if q <= MAX_EXACT_ROOT {
                if let Some(root) = (Number::Rational { num, den }).root(q) {
                    if root.is_exact() {
                        return root.pow(Number::int(p));
                    }
                }
            }
        }
        let (b, e) = (self.to_f64(), exp.to_f64());
        if b < 0.0 {
            // A negative base with an odd-denominator rational exponent is real.
            if let Number::Rational { num: p, den: q } = exp {
                if q % 2 == 1 {
                    let mag = (-b).powf(e);
                    return Number::Real(if p % 2 == 0 { mag } else { -mag });
                }
            }
        }
        Number::Real(b.powf(e))
    }

    /// The real `n`-th root (`n ≥ 1`); exact when both parts are perfect powers.
    pub(crate) fn root(self, n: i128) -> Option<Number> {
        if n <= 0 {
            return None;
        }
        if let Number::Rational { num, den } = self {
            if n <= MAX_EXACT_ROOT {
                let exp = n as u32;
                if num < 0 && n % 2 == 0 {
                    return Some(Number::Real(f64::NAN));
                }
                if let (Some(a), Some(b)) = (
                    iroot(num.unsigned_abs(), exp),
                    iroot(den.unsigned_abs(), exp),
                ) {
                    let a = i128::try_from(a).ok()?;
                    let b = i128::try_from(b).ok()?;
                    return Number::rational(if num < 0 { -a } else { a }, b);
                }
            }
        }
        let x = self.to_f64();
        let r = if x < 0.0 {
            if n % 2 == 1 {
                -(-x).powf(1.0 / n as f64)
            } else {
                f64::NAN
            }
        } else {
            x.powf(1.0 / n as f64)
        };
        Some(Number::Real(r))
    }

    /// `n!` for a non-negative integer: exact while it fits, then `f64`, then `∞`.
    pub(crate) fn factorial(self) -> Number {
        let Some(n) = self.as_int() else {
            return Number::Real(f64::NAN);
        };
        if n < 0 {
            return Number::Real(f64::NAN);
        }
        if n > 170 {
            return Number::Real(f64::INFINITY);
        }
        let mut acc: i128 = 1;
        for k in 2..=n {
            match acc.checked_mul(k) {
                Some(v) => acc = v,
                None => {
                    let mut f = acc as f64;
                    for j in k..=n {
                        f *= j as f64;
                    }
                    return Number::Real(f);
                }
            }
        }
        Number::int(acc)
    }
}

/// `b^e` exactly, or `None` on overflow.
fn ipow(mut b: i128, mut e: u128) -> Option<i128> {
    let mut acc: i128 = 1;
    while e > 0 {
        if e & 1 == 1 {
            acc = acc.checked_mul(b)?;
        }
        e >>= 1;
        if e > 0 {
            b = b.checked_mul(b)?;
        }
    }
    Some(acc)
}

/// The exact integer `n`-th root of `x`, when `x` is a perfect `n`-th power.
fn iroot(x: u128, n: u32) -> Option<u128> {
    if x < 2 || n == 1 {
        return Some(x);
    }
    let guess = (x as f64).powf(1.0 / f64::from(n)).round();
    if !guess.is_finite() || guess < 0.0 {
        return None;
    }
    let g = guess as u128;
    for c in [g.saturating_sub(1), g, g + 1] {
        let mut acc: u128 = 1;
        let mut ok = true;
        for _ in 0..n {
            match acc.checked_mul(c) {
                Some(v) if v <= x => acc = v,
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        if ok && acc == x {
            return Some(c);
        }
    }
    None
}

/// Greatest common divisor (`gcd(0, 0) = 0`).
pub(crate) fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Most bits a [`Big`] may hold; operations that would exceed it give `None`.
pub(crate) const MAX_BIG_BITS: usize = 8192;

/// A signed integer beyond `i128`, for exact comparison of huge integer answers
/// (`2^{200}`, `100!`). Bounded by [`MAX_BIG_BITS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Big {
    neg: bool,
    /// Little-endian base-2^32 limbs without trailing zeros (zero is empty).
    mag: Vec<u32>,
}

impl Big {
    pub(crate) fn from_i128(v: i128) -> Big {
        let mut m = v.unsigned_abs();
        let mut mag = Vec::new();
        while m > 0 {
            mag.push(m as u32);
            m >>= 32;
        }
        Big { neg: v < 0, mag }
    }

    /// Parses ASCII decimal digits.
    pub(crate) fn from_digits(s: &str) -> Option<Big> {
        if s.is_empty()
            || s.len() > MAX_BIG_BITS * 3 / 10 + 1
            || !s.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut mag: Vec<u32> = Vec::new();
        for chunk in s.as_bytes().chunks(9) {
            let mut v: u64 = 0;
            for &b in chunk {
                v = v * 10 + u64::from(b - b'0');
            }
            let scale = 10u64.pow(chunk.len() as u32);
            let mut carry = v;
            for limb in mag.iter_mut() {
                let x = u64::from(*limb) * scale + carry;
                *limb = x as u32;
                carry = x >> 32;
            }
            while carry > 0 {
                mag.push(carry as u32);
                carry >>= 32;
            }
        }
        let mut b = Big { neg: false, mag };
        b.trim();
        Some(b)
    }

    fn trim(&mut self) {
        while self.mag.last() == Some(&0) {
            self.mag.pop();
        }
        if self.mag.is_empty() {
            self.neg = false;
        }
    }

    fn bits(&self) -> usize {
        match self.mag.last() {
            None => 0,
            Some(&top) => (self.mag.len() - 1) * 32 + (32 - top.leading_zeros() as usize),
        }
    }

    pub(crate) fn neg(mut self) -> Big {
        if !self.mag.is_empty() {
            self.neg = !self.neg;
        }
        self
    }

    fn cmp_mag(a: &[u32], b: &[u32]) -> std::cmp::Ordering {
        a.len()
            .cmp(&b.len())
            .then_with(|| a.iter().rev().cmp(b.iter().rev()))
    }

    fn add_mag(a: &[u32], b: &[u32]) -> Vec<u32> {
        let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
        let mut carry = 0u64;
        for i in 0..a.len().max(b.len()) {
            let x = u64::from(*a.get(i).unwrap_or(&0)) + u64::from(*b.get(i).unwrap_or(&0)) + carry;
            out.push(x as u32);
            carry = x >> 32;
        }
        if carry > 0 {
            out.push(carry as u32);
        }
        out
    }

    /// `a - b` for `a ≥ b`.
    fn sub_mag(a: &[u32], b: &[u32]) -> Vec<u32> {
        let mut out = Vec::with_capacity(a.len());
        let mut borrow = 0i64;
        for (i, &x) in a.iter().enumerate() {
            let mut d = i64::from(x) - i64::from(*b.get(i).unwrap_or(&0)) - borrow;
            borrow = 0;
            if d < 0 {
                d += 1 << 32;
                borrow = 1;
            }
            out.push(d as u32);
        }
        out
    }

    pub(crate) fn add(&self, o: &Big) -> Option<Big> {
        let mut r = if self.neg == o.neg {
            Big {
                neg: self.neg,
                mag: Big::add_mag(&self.mag, &o.mag),
            }
        } else if Big::cmp_mag(&self.mag, &o.mag) != std::cmp::Ordering::Less {
            Big {
                neg: self.neg,
                mag: Big::sub_mag(&self.mag, &o.mag),
            }
        } else {
            Big {
                neg: o.neg,
                mag: Big::sub_mag(&o.mag, &self.mag),
            }
        };
        r.trim();
        (r.bits() <= MAX_BIG_BITS).then_some(r)
    }

    pub(crate) fn mul(&self, o: &Big) -> Option<Big> {
        if self.bits() + o.bits() > MAX_BIG_BITS + 1 {
            return None;
        }
        let mut out = vec![0u32; self.mag.len() + o.mag.len()];
        for (i, &x) in self.mag.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &y) in o.mag.iter().enumerate() {
                let t = u64::from(x) * u64::from(y) + u64::from(out[i + j]) + carry;
                out[i + j] = t as u32;
                carry = t >> 32;
            }
            let mut k = i + o.mag.len();
            while carry > 0 && k < out.len() {
                let t = u64::from(out[k]) + carry;
                out[k] = t as u32;
                carry = t >> 32;
                k += 1;
            }
        }
        let mut r = Big {
            neg: self.neg != o.neg,
            mag: out,
        };
        r.trim();
        (r.bits() <= MAX_BIG_BITS).then_some(r)
    }

    pub(crate) fn pow(&self, mut e: u64) -> Option<Big> {
        if self.mag.is_empty() {
            return Some(if e == 0 {
                Big::from_i128(1)
            } else {
                self.clone()
            });
        }
        if self.bits() == 1 && self.mag.len() == 1 {
            // ±1
            return Some(Big {
                neg: self.neg && e % 2 == 1,
                mag: vec![1],
            });
        }
        if (self.bits() as u64 - 1).saturating_mul(e) > MAX_BIG_BITS as u64 {
            return None;
        }
        let mut acc = Big::from_i128(1);
        let mut base = self.clone();
        while e > 0 {
            if e & 1 == 1 {
                acc = acc.mul(&base)?;
            }
            e >>= 1;
            if e > 0 {
                base = base.mul(&base)?;
            }
        }
        Some(acc)
    }
}
