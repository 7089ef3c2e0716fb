//! Arithmetic: evaluate an integer expression. Difficulty adds operands, widens the
//! operand range and brings in multiplication.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{glm_template, Answer, Domain, Sample};

/// Integer arithmetic with `+`, `−` and `×` (usual precedence).
#[derive(Debug, Clone, Copy, Default)]
pub struct Arithmetic;

/// Operands and operators of one problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    /// Operands, left to right.
    pub operands: Vec<i64>,
    /// Operators between them (`+`, `-`, `*`).
    pub operators: Vec<char>,
}

impl Expression {
    /// The value with `*` binding tighter than `+`/`-`.
    pub fn value(&self) -> i64 {
        let mut total = 0i64;
        let mut term = self.operands.first().copied().unwrap_or(0);
        let mut sign = 1i64;
        for (op, &x) in self.operators.iter().zip(self.operands.iter().skip(1)) {
            match op {
                '*' => term *= x,
                '+' | '-' => {
                    total += sign * term;
                    sign = if *op == '+' { 1 } else { -1 };
                    term = x;
                }
                _ => {}
            }
        }
        total + sign * term
    }

    /// The expression as the prompt shows it.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (k, x) in self.operands.iter().enumerate() {
            if k > 0 {
                let op = match self.operators[k - 1] {
                    '*' => '×',
                    '-' => '−',
                    c => c,
                };
                s.push(' ');
                s.push(op);
                s.push(' ');
            }
            s.push_str(&x.to_string());
        }
        s
    }
}

impl Arithmetic {
    /// The expression for a seed and difficulty (exposed for tests and templates).
    pub fn expression(seed: u64, difficulty: f32) -> Expression {
        let d = if difficulty.is_finite() {
            difficulty.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = 2 + (d * 3.0).round() as usize; // 2..=5 operands
        let max = 10i64.pow(1 + (d * 2.0).round() as u32); // 10, 100, 1000
        let allow_mul = d > 0.4;
        let operands: Vec<i64> = (0..n).map(|_| rng.random_range(1..max)).collect();
        let operators = (1..n)
            .map(|_| {
                let r = rng.random_range(0..if allow_mul { 3 } else { 2 });
                ['+', '-', '*'][r]
            })
            .collect();
        Expression {
            operands,
            operators,
        }
    }
}

impl Domain for Arithmetic {
    fn name(&self) -> &str {
        "arithmetic"
    }

    fn verifier(&self) -> &str {
        "math"
    }

    fn generate(&self, seed: u64, difficulty: f32) -> Sample {
        let e = Self::expression(seed, difficulty);
        let shown = e.render();
        let value = e.value();
        let prompt = format!("Compute {shown}. Put the final answer in a box.");
        let template = glm_template(
            &format!("I evaluate {shown}, multiplying before adding and subtracting, which gives {value}."),
            "The value is ",
            &value.to_string(),
        );
        Sample::new(
            "arithmetic",
            prompt,
            Vec::new(),
            Answer::number(value),
            difficulty,
            template,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlcs_rewards::Registry;

    #[test]
    fn precedence_is_respected() {
        let e = Expression {
            operands: vec![2, 3, 4, 5],
            operators: vec!['+', '*', '-'],
        };
        assert_eq!(e.value(), 2 + 3 * 4 - 5);
        assert_eq!(e.render(), "2 + 3 × 4 − 5");
    }

    #[test]
    fn difficulty_grows_the_problem() {
        let easy = Arithmetic::expression(1, 0.0);
        let hard = Arithmetic::expression(1, 1.0);
        assert_eq!(easy.operands.len(), 2);
        assert_eq!(hard.operands.len(), 5);
        assert!(easy.operands.iter().all(|&x| x < 10));
        assert!(easy.operators.iter().all(|&c| c != '*'));
    }

    #[test]
    fn template_scores_one_and_a_wrong_answer_zero() {
        let reg = Registry::builtin();
        let d = Arithmetic;
        let v = reg.get(d.verifier()).unwrap();
        for seed in 0..50 {
            let s = d.generate(seed, (seed % 11) as f32 / 10.0);
            assert_eq!(v.verify(&s.template, &s.gold).reward, 1.0, "{}", s.template);
            let wrong = s.template.replace(
                &format!("<|begin_of_box|>{}<|end_of_box|>", s.gold),
                &format!(
                    "<|begin_of_box|>{}<|end_of_box|>",
                    s.gold.parse::<i64>().unwrap() + 1
                ),
            );
            assert_eq!(v.verify(&wrong, &s.gold).reward, 0.0);
        }
    }

    #[test]
    fn same_seed_same_sample() {
        assert_eq!(Arithmetic.generate(9, 0.5), Arithmetic.generate(9, 0.5));
    }
}
