//! Charts: read values off a bar or line chart.
//!
//! **Task.** One image shows a bar chart (or, at higher difficulty, a line chart) of
//! a few labelled categories (`Ant`, `Bee`, … shortened to one or two letters when
//! the bars are narrow) against a y axis with numbered ticks and light gridlines.
//! The question asks for a named category's value, the category with the largest or
//! the smallest value, or the difference between two categories.
//!
//! **Image.** 64–96 pixels wide and 56–96 high, drawn per seed. Bar heights and line
//! points sit on exact pixels: `value · t / step` above the x axis, where `t` is the
//! tick spacing in pixels. Values without a printed label lie on a tick, or exactly
//! halfway between two ticks (at high difficulty, with an even tick spacing), so a
//! careful reader gets them exactly.
//!
//! **Answer.** A number ([`Answer::Number`], an integer) for value and difference
//! questions, the category label as printed ([`Answer::Text`]) for largest/smallest
//! questions. Scored by the `chart` verifier: numbers within 2.5 % relative error,
//! texts equal ignoring case and whitespace. The largest or smallest value asked for
//! is unique, and the two categories of a difference differ.
//!
//! **Difficulty knobs** (monotone in `difficulty ∈ [0, 1]`):
//! - *bars*: `3 + ⌊2d⌉ ..= 4 + ⌊3d⌉` categories (3–4 at 0, 5–7 at 1);
//! - *value labels*: printed on the bars with probability `1 − 2d` (never from 0.5),
//!   otherwise values must be read against the axis;
//! - *closer values*: values are drawn from the top `95 − 45d` % of the axis range;
//! - *half-tick values*: from 0.75, with probability `2(d − 0.5)`, unlabelled values
//!   may lie halfway between ticks;
//! - *line charts*: from 0.5, with probability `d`;
//! - *questions*: value and largest below 0.3; smallest from 0.3; differences from
//!   0.5; the newest kind unlocked is asked half the time.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::image::{Canvas, Image, Rgb, BLACK, PALETTE, WHITE};
use crate::knobs::{pick, unlocked_kind};
use crate::{font, glm_template, mix_seed, Answer, Domain, Sample};

/// Read values off a chart (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Chart;

const MAX_SIDE: i64 = 96;
/// Category names: distinct first letters and first two letters.
const NAMES: [&str; 12] = [
    "Ant", "Bee", "Cat", "Dog", "Elk", "Fox", "Gnu", "Hen", "Jay", "Owl", "Ram", "Yak",
];
const SERIES: [&str; 5] = ["red", "green", "blue", "purple", "orange"];
const GRID_LINE: Rgb = [222, 222, 222];

fn clamp_difficulty(d: f32) -> f32 {
    if d.is_finite() {
        d.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// What the question asks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Question {
    /// The value of category `i`.
    Value(usize),
    /// The category with the largest value.
    Max,
    /// The category with the smallest value.
    Min,
    /// The value of `i` minus the value of `j`.
    Diff(usize, usize),
}

/// A rendered chart task.
// Some fields are only read by the tests (pixel checks).
#[cfg_attr(not(test), allow(dead_code))]
struct Scene {
    image: Image,
    labels: Vec<String>,
    values: Vec<i64>,
    question: Question,
    line: bool,
    value_labels: bool,
    /// Tick step in value units and tick spacing in pixels.
    step: i64,
    tick_px: i64,
    /// The x axis row and each category's centre column.
    axis_y: i64,
    centres: Vec<i64>,
    series: Rgb,
}

fn lighter(c: Rgb) -> Rgb {
    [
        ((u16::from(c[0]) + 2 * 255) / 3) as u8,
        ((u16::from(c[1]) + 2 * 255) / 3) as u8,
        ((u16::from(c[2]) + 2 * 255) / 3) as u8,
    ]
}

fn index_of(values: &[i64], best: impl Fn(i64, i64) -> bool) -> usize {
    let mut k = 0;
    for (i, &v) in values.iter().enumerate() {
        if best(v, values.get(k).copied().unwrap_or(v)) {
            k = i;
        }
    }
    k
}

fn render(seed: u64, difficulty: f32) -> Scene {
    let d = clamp_difficulty(difficulty);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);

    let n_lo = 3 + (d * 2.0).round() as usize;
    let n_hi = 4 + (d * 3.0).round() as usize;
    let n = rng.random_range(n_lo..=n_hi.max(n_lo));
    let line = d >= 0.5 && rng.random_bool(f64::from(d));
    let value_labels = !line && rng.random_bool(f64::from(1.0 - 2.0 * d).clamp(0.0, 1.0));
    let k = rng.random_range(4..=5i64);
    let step = if value_labels {
        // Two-digit values so the labels fit over the bars.
        pick(
            &mut rng,
            if k == 4 {
                &[5, 10, 20][..]
            } else {
                &[5, 10][..]
            },
            10,
        )
    } else {
        pick(&mut rng, &[2, 4, 10, 20, 50], 10)
    };
    let top_value = k * step;
    let half = !value_labels && d >= 0.75 && rng.random_bool(f64::from(2.0 * (d - 0.5)));
    let unit = if value_labels {
        1
    } else if half {
        step / 2
    } else {
        step
    };

    // Values: multiples of `unit` in the top part of the range.
    let lo_frac = 0.05 + 0.45 * f64::from(d);
    let lo_units = (((top_value as f64) * lo_frac) / unit as f64)
        .ceil()
        .max(1.0) as i64;
    let hi_units = (top_value / unit).max(lo_units);
    let mut values: Vec<i64> = (0..n)
        .map(|_| rng.random_range(lo_units..=hi_units) * unit)
        .collect();

    // The question.
    let kind = unlocked_kind(&mut rng, d, &[0.3, 0.5]);
    let question = match kind {
        1 => Question::Max,
        2 => Question::Min,
        3 => {
            let i = rng.random_range(0..n);
            let j = (i + rng.random_range(1..n.max(2))) % n;
            Question::Diff(i, j)
        }
        _ => Question::Value(rng.random_range(0..n)),
    };
    // Make the asked-for extreme unique, and the two compared values different.
    match question {
        Question::Max => {
            let top = values.iter().copied().max().unwrap_or(unit);
            let first = values.iter().position(|&v| v == top).unwrap_or(0);
            for (i, v) in values.iter_mut().enumerate() {
                if i != first && *v == top {
                    *v = (top - unit).max(unit);
                }
            }
            if values.iter().filter(|&&v| v == top).count() > 1 || top == unit {
                // Only possible when everything sits at the floor: lift the first.
                if let Some(v) = values.get_mut(first) {
                    *v = (top + unit).min(hi_units * unit);
                }
            }
        }
        Question::Min => {
            let low = values.iter().copied().min().unwrap_or(unit);
            let first = values.iter().position(|&v| v == low).unwrap_or(0);
            for (i, v) in values.iter_mut().enumerate() {
                if i != first && *v == low {
                    *v = (low + unit).min(hi_units * unit);
                }
            }
            if values.iter().filter(|&&v| v == low).count() > 1 {
                // Only possible when everything sits at the ceiling: lower the first.
                if let Some(v) = values.get_mut(first) {
                    *v = (low - unit).max(unit);
                }
            }
        }
        Question::Diff(i, j) => {
            if values.get(i) == values.get(j) {
                if let Some(v) = values.get_mut(j) {
                    *v = if *v - unit >= lo_units * unit {
                        *v - unit
                    } else {
                        *v + unit
                    };
                }
            }
        }
        Question::Value(_) => {}
    }

    // Labels: as long as the slot allows.
    let mut names: Vec<&str> = NAMES.to_vec();
    names.shuffle(&mut rng);
    let tick_label_w = Canvas::text_width(&top_value.to_string(), 1);
    let axis_x = 1 + tick_label_w + 3;
    let min_slot = if value_labels { 14 } else { 8 };
    let min_w = (axis_x + 2 + min_slot * n as i64 + 1).clamp(64, MAX_SIDE);
    let w = rng.random_range(min_w..=MAX_SIDE);
    let h = rng.random_range(56..=MAX_SIDE);
    let plot_x0 = axis_x + 1;
    let plot_w = w - 2 - plot_x0;
    let slot = (plot_w / n as i64).max(1);
    // At least three free pixels between neighbouring labels.
    let chars = ((slot - 2) / font::ADVANCE as i64).clamp(1, 3) as usize;
    let labels: Vec<String> = names
        .iter()
        .take(n)
        .map(|s| s.chars().take(chars).collect())
        .collect();

    // Vertical layout.
    let top = if value_labels { 10 } else { 4 };
    let bottom = 1 + 2 + font::HEIGHT as i64 + 1;
    let avail = h - top - bottom;
    let mut tick_px = (avail / k).clamp(4, 16);
    if half && tick_px % 2 == 1 {
        tick_px -= 1;
    }
    let plot_h = k * tick_px;
    let y_top = top + rng.random_range(0..=(avail - plot_h).max(0));
    let axis_y = y_top + plot_h;

    let series = PALETTE
        .iter()
        .find(|(name, _)| *name == pick(&mut rng, &SERIES, "blue"))
        .map(|(_, c)| *c)
        .unwrap_or([40, 80, 220]);

    let mut canvas = Canvas::new(w as u32, h as u32, WHITE);
    // Gridlines, ticks and tick labels.
    for j in 0..=k {
        let y = axis_y - j * tick_px;
        if j > 0 {
            canvas.fill_rect(plot_x0, y, w - 2 - plot_x0, 1, GRID_LINE);
        }
        canvas.fill_rect(axis_x - 2, y, 2, 1, BLACK);
        let label = (j * step).to_string();
        let lw = Canvas::text_width(&label, 1);
        canvas.text(axis_x - 3 - lw, y - 3, &label, 1, BLACK);
    }
    // Axes.
    canvas.fill_rect(axis_x, y_top, 1, plot_h + 1, BLACK);
    canvas.fill_rect(axis_x, axis_y, w - 1 - axis_x, 1, BLACK);

    let slack = plot_w - slot * n as i64;
    let x_start = plot_x0 + slack / 2;
    let bar_w = (slot * 2 / 3).clamp(3, (slot - 2).max(3));
    let px_of = |v: i64| v * tick_px / step;
    let mut centres = Vec::with_capacity(n);
    for (i, label) in labels.iter().enumerate() {
        let sx = x_start + i as i64 * slot;
        let bx = sx + (slot - bar_w) / 2;
        centres.push(bx + bar_w / 2);
        let lw = Canvas::text_width(label, 1);
        canvas.text(sx + (slot - lw) / 2, axis_y + 3, label, 1, BLACK);
    }
    if line {
        let light = lighter(series);
        for (i, pair) in values.windows(2).enumerate() {
            if let (Some(&x0), Some(&x1), [a, b]) = (centres.get(i), centres.get(i + 1), pair) {
                canvas.line(x0, axis_y - px_of(*a), x1, axis_y - px_of(*b), 1, light);
            }
        }
        for (&cx, &v) in centres.iter().zip(&values) {
            canvas.fill_rect(cx - 1, axis_y - px_of(v) - 1, 3, 3, series);
        }
    } else {
        for (&cx, &v) in centres.iter().zip(&values) {
            let bh = if value_labels {
                (v * tick_px + step / 2) / step
            } else {
                px_of(v)
            };
            let bx = cx - bar_w / 2;
            canvas.fill_rect(bx, axis_y - bh, bar_w, bh, series);
            if value_labels {
                let t = v.to_string();
                let lw = Canvas::text_width(&t, 1);
                canvas.text(cx - lw / 2, axis_y - bh - 9, &t, 1, BLACK);
            }
        }
    }

    Scene {
        image: canvas.finish(),
        labels,
        values,
        question,
        line,
        value_labels,
        step,
        tick_px,
        axis_y,
        centres,
        series,
    }
}

/// The answer to `q` over `values` named by `labels`.
fn answer_of(q: Question, labels: &[String], values: &[i64]) -> Answer {
    let label = |i: usize| labels.get(i).cloned().unwrap_or_default();
    let value = |i: usize| values.get(i).copied().unwrap_or(0);
    match q {
        Question::Value(i) => Answer::number(value(i)),
        Question::Max => Answer::text(label(index_of(values, |v, best| v > best))),
        Question::Min => Answer::text(label(index_of(values, |v, best| v < best))),
        Question::Diff(i, j) => Answer::number(value(i) - value(j)),
    }
}

impl Scene {
    /// How a reader gets category `i`'s value.
    fn reading(&self, i: usize) -> String {
        let v = self.values.get(i).copied().unwrap_or(0);
        let name = self.labels.get(i).cloned().unwrap_or_default();
        let mark = if self.line { "point" } else { "bar" };
        if self.value_labels {
            format!("the {name} {mark} is labelled {v}")
        } else if v % self.step == 0 {
            format!("the {name} {mark} sits on the {v} gridline")
        } else {
            let below = v / self.step * self.step;
            format!(
                "the {name} {mark} sits halfway between {below} and {}, at {v}",
                below + self.step
            )
        }
    }

    fn all_readings(&self) -> String {
        (0..self.values.len())
            .map(|i| self.reading(i))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Domain for Chart {
    fn name(&self) -> &str {
        "chart"
    }

    fn verifier(&self) -> &str {
        "chart"
    }

    fn generate(&self, seed: u64, difficulty: f32) -> Sample {
        let s = render(seed, difficulty);
        let answer = answer_of(s.question, &s.labels, &s.values);
        let kind = if s.line { "line chart" } else { "bar chart" };
        let label = |i: usize| s.labels.get(i).cloned().unwrap_or_default();
        let value = |i: usize| s.values.get(i).copied().unwrap_or(0);
        let (question, think, lead) = match s.question {
            Question::Value(i) => (
                format!(
                    "What is the value of {}? Answer with a number in a box.",
                    label(i)
                ),
                format!("In the {kind}, {}.", s.reading(i)),
                format!("{} is ", label(i)),
            ),
            Question::Max | Question::Min => {
                let word = if s.question == Question::Max {
                    "largest"
                } else {
                    "smallest"
                };
                (
                    format!("Which category has the {word} value? Answer with its label in a box."),
                    format!(
                        "In the {kind}, {}. The {word} is {}.",
                        s.all_readings(),
                        answer.gold()
                    ),
                    format!("The {word} value belongs to "),
                )
            }
            Question::Diff(i, j) => (
                format!(
                    "What is the value of {} minus the value of {}? Answer with a number in a box.",
                    label(i),
                    label(j)
                ),
                format!(
                    "In the {kind}, {} and {}; {} − {} = {}.",
                    s.reading(i),
                    s.reading(j),
                    value(i),
                    value(j),
                    (value(i) - value(j)).to_string().replace('-', "−")
                ),
                "The difference is ".to_string(),
            ),
        };
        let template = glm_template(&think, &lead, &answer.response());
        Sample::new(
            "chart",
            format!("The image shows a {kind}. {question}"),
            vec![s.image],
            answer,
            difficulty,
            template,
        )
    }

    /// Numbers move by at least a tenth (so the 2.5 % tolerance rejects them); labels
    /// change one letter.
    fn perturb(&self, sample: &Sample, seed: u64) -> String {
        match &sample.answer {
            Answer::Number { value } => {
                let Ok(v) = value.trim().parse::<i64>() else {
                    return sample.answer.perturbed(seed);
                };
                let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, 0xc4a7));
                let step = v.abs() / 10 + 1;
                let off = step * rng.random_range(1..=3i64);
                if rng.random_bool(0.5) {
                    (v + off).to_string()
                } else {
                    (v - off).to_string()
                }
            }
            other => other.perturbed(seed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const LEVELS: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

    /// Reads each category's value back from the pixels: the bar's height, or the
    /// row of the point marker, at the category's centre column.
    fn read_values(s: &Scene) -> Vec<f64> {
        let img = &s.image;
        s.centres
            .iter()
            .map(|&cx| {
                let rows: Vec<i64> = (0..s.axis_y)
                    .filter(|&y| img.get(cx as u32, y as u32) == Some(s.series))
                    .collect();
                let px = if s.line {
                    assert_eq!(rows.len(), 3, "marker at column {cx}");
                    s.axis_y - rows[1]
                } else {
                    // A solid run down to the axis.
                    assert_eq!(rows.last(), Some(&(s.axis_y - 1)));
                    assert!(rows.windows(2).all(|w| w[1] == w[0] + 1));
                    rows.len() as i64
                };
                px as f64 * s.step as f64 / s.tick_px as f64
            })
            .collect()
    }

    #[test]
    fn the_answer_can_be_read_from_the_pixels() {
        for seed in 0..300u64 {
            let d = (seed % 11) as f32 / 10.0;
            let s = render(seed, d);
            assert!(s.values.iter().all(|&v| v > 0 && v <= 5 * s.step));
            assert!(s.tick_px >= 4 && s.labels.iter().all(|l| !l.is_empty()));
            let labels: HashSet<&String> = s.labels.iter().collect();
            assert_eq!(labels.len(), s.labels.len(), "labels are distinct");
            let read = read_values(&s);
            if s.value_labels {
                // Rounded bars; the printed label carries the exact value.
                for (r, &v) in read.iter().zip(&s.values) {
                    assert!((r - v as f64).abs() <= s.step as f64 / s.tick_px as f64);
                }
                continue;
            }
            let exact: Vec<i64> = read.iter().map(|r| r.round() as i64).collect();
            for (r, e) in read.iter().zip(&exact) {
                assert_eq!(*r, *e as f64, "seed {seed}: off-pixel value");
            }
            assert_eq!(exact, s.values, "seed {seed}");
            assert_eq!(
                answer_of(s.question, &s.labels, &exact),
                answer_of(s.question, &s.labels, &s.values)
            );
            // Half-tick values sit on an exact pixel between gridlines.
            if s.values.iter().any(|v| v % s.step != 0) {
                assert_eq!(s.tick_px % 2, 0);
            }
        }
    }

    #[test]
    fn asked_for_extremes_are_unique_and_differences_nonzero() {
        for seed in 0..500u64 {
            let s = render(seed, (seed % 11) as f32 / 10.0);
            match s.question {
                Question::Max | Question::Min => {
                    let ext = if s.question == Question::Max {
                        s.values.iter().max()
                    } else {
                        s.values.iter().min()
                    };
                    let n = s.values.iter().filter(|v| Some(*v) == ext).count();
                    assert_eq!(n, 1, "seed {seed}: {:?}", s.values);
                }
                Question::Diff(i, j) => {
                    assert_ne!(i, j);
                    assert_ne!(s.values[i], s.values[j]);
                }
                Question::Value(i) => assert!(i < s.values.len()),
            }
        }
    }

    #[test]
    fn difficulty_adds_bars_and_removes_help() {
        let mean = |d: f32, f: &dyn Fn(&Scene) -> f64| {
            (0..100u64).map(|s| f(&render(s, d))).sum::<f64>() / 100.0
        };
        let bars: Vec<f64> = LEVELS
            .iter()
            .map(|&d| mean(d, &|s| s.values.len() as f64))
            .collect();
        let unlabelled: Vec<f64> = LEVELS
            .iter()
            .map(|&d| mean(d, &|s| f64::from(u8::from(!s.value_labels))))
            .collect();
        // Closeness: one minus the values' standard deviation, as a share of the
        // largest value.
        let closeness: Vec<f64> = LEVELS
            .iter()
            .map(|&d| {
                mean(d, &|s| {
                    let n = s.values.len() as f64;
                    let m = s.values.iter().sum::<i64>() as f64 / n;
                    let var = s
                        .values
                        .iter()
                        .map(|&v| (v as f64 - m).powi(2))
                        .sum::<f64>()
                        / n;
                    let top = s.values.iter().max().copied().unwrap_or(1) as f64;
                    1.0 - var.sqrt() / top
                })
            })
            .collect();
        for series in [&bars, &unlabelled, &closeness] {
            assert!(series.windows(2).all(|w| w[1] >= w[0]), "{series:?}");
            assert!(series[4] > series[0], "{series:?}");
        }
    }
}
