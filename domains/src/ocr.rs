//! OCR: read a rendered string.
//!
//! **Task.** One image shows a random string in the built-in 5 × 7 font on a plain
//! background, on one line or split over two. The model writes the text exactly
//! (case-sensitive), top line first.
//!
//! **Image.** Between 32 × 32 and 96 × 96 pixels, the size and aspect drawn per seed
//! (never smaller than the text needs). Glyphs never overlap; noise dots are drawn
//! only outside the glyph cells, in a colour between the background and the ink, so
//! every character stays readable.
//!
//! **Answer.** [`Answer::Text`]: the string; with two lines, the lines joined by one
//! space. Scored by the `ocr` verifier: `1 − edit distance / length` with all
//! whitespace removed, so the line separator (or its absence) never matters, and
//! correct only at 1. The alphabet leaves out the characters of the response markers
//! (`<`, `>`, `|`) and quotes.
//!
//! **Difficulty knobs** (all monotone in `difficulty ∈ [0, 1]`):
//! - *length*: drawn from `3 + ⌊9d⌉ ..= 4 + ⌊12d⌉` chars (3–4 at 0, 12–16 at 1);
//! - *alphabet*: upper case and digits; lower case from 0.25; punctuation from 0.5;
//! - *glyph scale*: 2 × below 0.35 when the string fits, else 1 ×;
//! - *contrast*: ink-to-background contrast falls from 200 to 70 grey levels;
//! - *noise*: background dots cover about `4d` % of the pixels;
//! - *jitter*: each glyph moves up or down by up to `⌊2d⌉` pixels (times the scale);
//! - *two lines*: from 0.5, with probability `0.6d` (and whenever one line is too wide);
//! - *dark mode*: from 0.5, light ink on a dark background half the time.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::image::{Canvas, Image, Rgb};
use crate::{font, glm_template, Answer, Domain, Sample};

/// Read a rendered string (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ocr;

/// Smallest and largest image side.
const MIN_SIDE: i64 = 32;
const MAX_SIDE: i64 = 96;
/// Free pixels kept around the text block.
const MARGIN: i64 = 2;

const UPPER_DIGITS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const PUNCT: &str = "!#$%&()*+-./:;=?@[]";

fn clamp_difficulty(d: f32) -> f32 {
    if d.is_finite() {
        d.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// A rendered OCR task.
// Some fields are only read by the tests (pixel checks).
#[cfg_attr(not(test), allow(dead_code))]
struct Scene {
    image: Image,
    lines: Vec<String>,
    scale: i64,
    ink: Rgb,
    noise_dots: usize,
}

fn alphabet(d: f32) -> Vec<char> {
    let mut s = String::from(UPPER_DIGITS);
    if d >= 0.25 {
        s.push_str(LOWER);
    }
    if d >= 0.5 {
        s.push_str(PUNCT);
    }
    s.chars().filter(|&c| font::has(c)).collect()
}

fn line_width(chars: usize, scale: i64) -> i64 {
    Canvas::text_width(&"x".repeat(chars), scale)
}

fn shade(c: i64) -> u8 {
    c.clamp(0, 255) as u8
}

fn render(seed: u64, difficulty: f32) -> Scene {
    let d = clamp_difficulty(difficulty);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);

    // The string.
    let lo = 3 + (d * 9.0).round() as usize;
    let hi = 4 + (d * 12.0).round() as usize;
    let len = rng.random_range(lo..=hi.max(lo));
    let chars = alphabet(d);
    let text: Vec<char> = (0..len)
        .map(|_| {
            chars
                .get(rng.random_range(0..chars.len().max(1)))
                .copied()
                .unwrap_or('A')
        })
        .collect();

    // Scale and lines.
    let room = MAX_SIDE - 2 * MARGIN;
    let scale = if d < 0.35 && line_width(len, 2) <= room {
        2
    } else {
        1
    };
    let want_two = d >= 0.5 && rng.random_bool(f64::from(d) * 0.6);
    let two = len >= 2 && (want_two || line_width(len, scale) > room);
    let lines: Vec<String> = if two {
        let mid = len / 2;
        let split = (mid as i64 + rng.random_range(-1..=1i64)).clamp(1, len as i64 - 1) as usize;
        vec![
            text.iter().take(split).collect(),
            text.iter().skip(split).collect(),
        ]
    } else {
        vec![text.iter().collect()]
    };

    // Geometry.
    let jitter = (d * 2.0).round() as i64 * scale;
    let glyph_h = font::HEIGHT as i64 * scale;
    let line_gap = 2 * scale + jitter;
    let block_w = lines
        .iter()
        .map(|l| line_width(l.chars().count(), scale))
        .max()
        .unwrap_or(0);
    let n_lines = lines.len() as i64;
    let block_h = n_lines * glyph_h + (n_lines - 1) * line_gap + 2 * jitter;
    let min_w = (block_w + 2 * MARGIN).clamp(MIN_SIDE, MAX_SIDE);
    let min_h = (block_h + 2 * MARGIN).clamp(MIN_SIDE, MAX_SIDE);
    let w = rng.random_range(min_w..=MAX_SIDE);
    let h = rng.random_range(min_h..=(min_h + 48).min(MAX_SIDE));
    let x0 = MARGIN + rng.random_range(0..=(w - 2 * MARGIN - block_w).max(0));
    let y0 = MARGIN + jitter + rng.random_range(0..=(h - 2 * MARGIN - block_h).max(0));

    // Colours: contrast falls with difficulty; a random tint; dark mode at times.
    let contrast = (200.0 - 130.0 * d).round() as i64;
    let level = rng.random_range(180..=255i64);
    let (mut bg_l, mut ink_l) = (level, level - contrast);
    if ink_l < 0 {
        bg_l -= ink_l;
        ink_l = 0;
    }
    if d >= 0.5 && rng.random_bool(0.5) {
        (bg_l, ink_l) = (255 - bg_l, 255 - ink_l);
    }
    let tint: [i64; 3] = [
        rng.random_range(-12..=12),
        rng.random_range(-12..=12),
        rng.random_range(-12..=12),
    ];
    let mix = |l: i64| -> Rgb { [shade(l + tint[0]), shade(l + tint[1]), shade(l + tint[2])] };
    let bg = mix(bg_l);
    let ink = mix(ink_l);
    // Noise sits a third of the way from the background to the ink.
    let noise = mix(bg_l + (ink_l - bg_l) / 3);

    let mut canvas = Canvas::new(w as u32, h as u32, bg);
    let mut cells: Vec<(i64, i64)> = Vec::with_capacity(len);
    let advance = font::ADVANCE as i64 * scale;
    for (k, line) in lines.iter().enumerate() {
        let y_line = y0 + k as i64 * (glyph_h + line_gap);
        for (i, c) in line.chars().enumerate() {
            let off = if jitter > 0 {
                rng.random_range(-jitter..=jitter)
            } else {
                0
            };
            let (x, y) = (x0 + i as i64 * advance, y_line + off);
            canvas.text(x, y, &c.to_string(), scale, ink);
            cells.push((x, y));
        }
    }

    // Noise dots outside every glyph cell.
    let target = (f64::from(d) * 0.04 * (w * h) as f64).round() as usize;
    let (cw, ch) = (font::WIDTH as i64 * scale, glyph_h);
    let mut noise_dots = 0;
    for _ in 0..target {
        let (x, y) = (rng.random_range(0..w), rng.random_range(0..h));
        let in_glyph = cells
            .iter()
            .any(|&(cx, cy)| x >= cx && x < cx + cw && y >= cy && y < cy + ch);
        if !in_glyph {
            canvas.dot(x, y, noise);
            noise_dots += 1;
        }
    }

    Scene {
        image: canvas.finish(),
        lines,
        scale,
        ink,
        noise_dots,
    }
}

impl Domain for Ocr {
    fn name(&self) -> &str {
        "ocr"
    }

    fn verifier(&self) -> &str {
        "ocr"
    }

    fn generate(&self, seed: u64, difficulty: f32) -> Sample {
        let scene = render(seed, difficulty);
        let answer_text = scene.lines.join(" ");
        let think = match scene.lines.as_slice() {
            [one] => format!(
                "The image shows one line of {} characters: \"{one}\". I copy it exactly, keeping the case.",
                one.chars().count()
            ),
            [top, bottom] => format!(
                "The image shows two lines of text. The top line reads \"{top}\" and the bottom line reads \"{bottom}\". I copy them in order, keeping the case."
            ),
            _ => "I read the text in the image.".to_string(),
        };
        let answer = Answer::text(answer_text);
        let template = glm_template(&think, "The text reads ", &answer.response());
        Sample::new(
            "ocr",
            "Read the text in the image exactly as written (case matters; if there are two lines, write the top line first). Put the text in a box.".to_string(),
            vec![scene.image],
            answer,
            difficulty,
            template,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEVELS: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

    #[test]
    fn the_text_is_drawn_in_ink_and_nowhere_else() {
        for seed in 0..150u64 {
            let d = (seed % 5) as f32 / 4.0;
            let scene = render(seed, d);
            let mut expected = 0usize;
            for c in scene.lines.concat().chars() {
                assert!(font::has(c) && !c.is_whitespace() && !"<>|\"'".contains(c));
                let bits: u32 = font::glyph(c).iter().map(|r| r.count_ones()).sum();
                expected += bits as usize * (scene.scale * scene.scale) as usize;
            }
            assert_eq!(scene.image.count(scene.ink), expected, "seed {seed}");
            let s = Ocr.generate(seed, d);
            assert_eq!(s.gold.replace(' ', ""), scene.lines.concat());
        }
    }

    fn mean(d: f32, f: impl Fn(&Scene) -> f64) -> f64 {
        (0..100u64).map(|s| f(&render(s, d))).sum::<f64>() / 100.0
    }

    #[test]
    fn difficulty_lengthens_the_text_and_adds_noise() {
        let lens: Vec<f64> = LEVELS
            .iter()
            .map(|&d| mean(d, |s| s.lines.concat().chars().count() as f64))
            .collect();
        let noise: Vec<f64> = LEVELS
            .iter()
            .map(|&d| mean(d, |s| s.noise_dots as f64))
            .collect();
        for series in [&lens, &noise] {
            assert!(series.windows(2).all(|w| w[1] >= w[0]), "{series:?}");
            assert!(series[4] > series[0], "{series:?}");
        }
        let two_lines = mean(1.0, |s| f64::from(u8::from(s.lines.len() == 2)));
        assert!(two_lines > 0.3 && mean(0.0, |s| s.lines.len() as f64) == 1.0);
    }
}
