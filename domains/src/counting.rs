//! Counting: how many objects of one colour and shape are in a scene.
//!
//! **Task.** One image of coloured shapes (filled circles, squares and up-pointing
//! triangles in [`PALETTE`] colours) on a white or light background; the prompt asks
//! "How many red circles are there in the image? Answer with a number."
//!
//! **Image.** 40–96 px per side (each side drawn separately, so aspect ratios vary by
//! seed). Faint clutter strokes and dots in off-palette tints lie under the shapes.
//! Objects of the same colour never touch (two blank pixels apart at least), so every
//! object is its own blob of its colour. Objects of different colours may overlap
//! (occlusion). Objects are placed one by one in random drawing order, each drawn
//! over the ones before it, and a position is kept only when every object — target
//! or not — still shows at least 60 % of its pixels in one 4-connected piece, so
//! occlusion never hides a target nor splits one in two. An object with no such
//! position in a bounded number of random tries is left out (the first target is
//! placed on the empty canvas, so there is always at least one).
//!
//! **Answer.** [`Answer::number`]: the number of target objects actually drawn (at
//! least one); scored by the `counting` verifier (exact whole number, hedges and
//! ranges rejected).
//!
//! **Difficulty knobs** (`d` in `[0, 1]`, all monotone):
//! - *targets*: 1–3 at `d = 0` up to 3–9 at `d = 1`;
//! - *distractors*: 1–2 up to 6–12;
//! - *confusable share*: the chance `0.8·d` that a distractor shares the target's
//!   colour (other shape) or its shape (other colour); the rest differ in both;
//! - *occlusion*: objects of different colours may overlap by up to `0.35·d` of the
//!   smaller one's bounding box (none at `d = 0`);
//! - *clutter*: `round(18·d)` faint strokes and dots;
//! - *object size*: radius 5–7 px down to 3–4 px (objects 7–15 px across);
//! - *canvas*: sides 40–64 px up to 72–96 px, to make room for the extra objects.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::image::{PALETTE, WHITE};
use crate::knobs::{lerp, pick};
use crate::shapes::{box_gap, colour_name, colour_rgb, components_in, Shape, SHAPES};
use crate::{glm_template, Answer, Canvas, Domain, Image, Rgb, Sample};

/// Counting objects of one colour and shape among distractors, clutter and occlusion.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

/// Light backgrounds (none is a palette or clutter colour).
const BACKGROUNDS: [Rgb; 4] = [WHITE, [248, 246, 238], [240, 244, 250], [243, 249, 243]];
/// Off-palette tints of the clutter marks.
const CLUTTER: [Rgb; 4] = [
    [200, 200, 212],
    [208, 220, 200],
    [222, 206, 206],
    [204, 214, 226],
];
/// Random positions tried per object.
const POSITION_TRIES: usize = 60;

/// "1 red circle", "3 red circles".
fn phrase(n: usize, colour: usize, shape: Shape) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{n} {} {}{s}", colour_name(colour), shape.name())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Target,
    /// Target colour, another shape.
    SameColour,
    /// Target shape, another colour.
    SameShape,
    /// Another colour and another shape.
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Obj {
    shape: Shape,
    colour: usize,
    cx: i64,
    cy: i64,
    r: i64,
    role: Role,
}

impl Obj {
    /// Blank pixel columns (or rows) between the two bounding boxes, the larger of
    /// the two; negative when the boxes overlap on both axes.
    fn draw(&self, c: &mut Canvas, rgb: Rgb) {
        self.shape.draw(c, self.cx, self.cy, self.r, rgb);
    }

    fn gap(&self, o: &Obj) -> i64 {
        box_gap((self.cx, self.cy), self.r, (o.cx, o.cy), o.r)
    }

    /// Bounding-box intersection as a share of the smaller box.
    fn overlap_share(&self, o: &Obj) -> f64 {
        let ix = (self.cx + self.r).min(o.cx + o.r) - (self.cx - self.r).max(o.cx - o.r) + 1;
        let iy = (self.cy + self.r).min(o.cy + o.r) - (self.cy - self.r).max(o.cy - o.r) + 1;
        if ix <= 0 || iy <= 0 {
            return 0.0;
        }
        let side = (2 * self.r.min(o.r) + 1) as f64;
        (ix * iy) as f64 / (side * side)
    }

    /// Pixels the shape has when nothing covers it.
    fn full_pixels(&self) -> usize {
        let side = (2 * self.r + 1).max(1) as u32;
        let mut c = Canvas::new(side, side, [0, 0, 0]);
        Obj {
            cx: self.r,
            cy: self.r,
            ..*self
        }
        .draw(&mut c, WHITE);
        c.image().count(WHITE)
    }
}

/// Whether `a` and `b` may lie where they are: same-coloured objects at least two
/// blank pixels apart, others one apart or overlapping by at most `max_overlap`.
fn compatible(a: &Obj, b: &Obj, max_overlap: f64) -> bool {
    if a.colour == b.colour {
        a.gap(b) >= 2
    } else {
        a.gap(b) >= 1 || (max_overlap > 0.0 && a.overlap_share(b) <= max_overlap)
    }
}

#[derive(Debug, Clone, Copy)]
enum Mark {
    Line(i64, i64, i64, i64, Rgb),
    Dot(i64, i64, Rgb),
}

#[derive(Debug, Clone)]
struct Scene {
    width: u32,
    height: u32,
    background: Rgb,
    colour: usize,
    shape: Shape,
    /// In drawing order.
    objects: Vec<Obj>,
    clutter: Vec<Mark>,
}

impl Scene {
    fn targets(&self) -> usize {
        self.objects
            .iter()
            .filter(|o| o.role == Role::Target)
            .count()
    }

    fn has_overlap(&self) -> bool {
        self.objects
            .iter()
            .enumerate()
            .any(|(i, a)| self.objects.iter().skip(i + 1).any(|b| a.gap(b) < 1))
    }

    fn render(&self) -> Image {
        let mut c = Canvas::new(self.width, self.height, self.background);
        for m in &self.clutter {
            match *m {
                Mark::Line(x0, y0, x1, y1, rgb) => c.line(x0, y0, x1, y1, 1, rgb),
                Mark::Dot(x, y, rgb) => c.fill_rect(x, y, 2, 2, rgb),
            }
        }
        for o in &self.objects {
            o.draw(&mut c, colour_rgb(o.colour));
        }
        c.finish()
    }
}

/// Difficulty knobs (see the module docs).
struct Knobs {
    side: (u32, u32),
    targets: (usize, usize),
    distractors: (usize, usize),
    radius: (i64, i64),
    confusable: f64,
    max_overlap: f64,
    clutter: usize,
}

fn knobs(d: f64) -> Knobs {
    Knobs {
        side: (lerp(40.0, 72.0, d) as u32, lerp(64.0, 96.0, d) as u32),
        targets: (lerp(1.0, 3.0, d) as usize, lerp(3.0, 9.0, d) as usize),
        distractors: (lerp(1.0, 6.0, d) as usize, lerp(2.0, 12.0, d) as usize),
        radius: (lerp(5.0, 3.0, d), lerp(7.0, 4.0, d)),
        confusable: 0.8 * d,
        max_overlap: 0.35 * d,
        clutter: lerp(0.0, 18.0, d) as usize,
    }
}

fn clamp_difficulty(d: f32) -> f64 {
    if d.is_finite() {
        f64::from(d.clamp(0.0, 1.0))
    } else {
        0.0
    }
}

/// The id colour of object `i` in the occlusion check (never the black background).
fn id_colour(i: usize) -> Rgb {
    [1, (i >> 8) as u8, (i & 0xff) as u8]
}

/// Every object keeps at least 60 % of its pixels visible, in one 4-connected piece.
fn layout_ok(objects: &[Obj], width: u32, height: u32) -> bool {
    let mut ids = Canvas::new(width, height, [0, 0, 0]);
    for (i, o) in objects.iter().enumerate() {
        o.draw(&mut ids, id_colour(i));
    }
    let img = ids.finish();
    objects.iter().enumerate().all(|(i, o)| {
        let comps = components_in(
            &img,
            id_colour(i),
            o.cx - o.r,
            o.cy - o.r,
            o.cx + o.r,
            o.cy + o.r,
        );
        comps.len() == 1 && comps.first().map_or(0, Vec::len) * 5 >= o.full_pixels() * 3
    })
}

/// A random position for `o`, drawn over `placed`, compatible with every placed
/// object and leaving every object at least 60 % visible in one piece; `None` when
/// none is found in [`POSITION_TRIES`] tries.
fn place(
    rng: &mut ChaCha8Rng,
    o: Obj,
    placed: &[Obj],
    width: u32,
    height: u32,
    max_overlap: f64,
) -> Option<Obj> {
    let (xl, xh) = (o.r + 1, i64::from(width) - 2 - o.r);
    let (yl, yh) = (o.r + 1, i64::from(height) - 2 - o.r);
    if xl > xh || yl > yh {
        return None;
    }
    for _ in 0..POSITION_TRIES {
        let cand = Obj {
            cx: rng.random_range(xl..=xh),
            cy: rng.random_range(yl..=yh),
            ..o
        };
        if !placed.iter().all(|p| compatible(&cand, p, max_overlap)) {
            continue;
        }
        // Only an object that touches another can hide part of it.
        if placed.iter().all(|p| cand.gap(p) >= 1) {
            return Some(cand);
        }
        let mut trial = placed.to_vec();
        trial.push(cand);
        if layout_ok(&trial, width, height) {
            return Some(cand);
        }
    }
    None
}

impl Counting {
    fn scene(seed: u64, difficulty: f32) -> Scene {
        let d = clamp_difficulty(difficulty);
        let k = knobs(d);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let width = rng.random_range(k.side.0..=k.side.1);
        let height = rng.random_range(k.side.0..=k.side.1);
        let background = pick(&mut rng, &BACKGROUNDS, WHITE);
        let colour = rng.random_range(0..PALETTE.len());
        let shape = pick(&mut rng, &SHAPES, Shape::Circle);
        let other_colours: Vec<usize> = (0..PALETTE.len()).filter(|&c| c != colour).collect();
        let other_shapes: Vec<Shape> = SHAPES.iter().copied().filter(|&s| s != shape).collect();

        let n_targets = rng.random_range(k.targets.0..=k.targets.1);
        let n_distractors = rng.random_range(k.distractors.0..=k.distractors.1);
        let mut specs = Vec::with_capacity(n_targets + n_distractors);
        for i in 0..n_targets + n_distractors {
            let role = if i < n_targets {
                Role::Target
            } else if rng.random::<f64>() < k.confusable {
                if rng.random::<bool>() {
                    Role::SameColour
                } else {
                    Role::SameShape
                }
            } else {
                Role::Other
            };
            let (c, s) = match role {
                Role::Target => (colour, shape),
                Role::SameColour => (colour, pick(&mut rng, &other_shapes, shape)),
                Role::SameShape => (pick(&mut rng, &other_colours, colour), shape),
                Role::Other => (
                    pick(&mut rng, &other_colours, colour),
                    pick(&mut rng, &other_shapes, shape),
                ),
            };
            specs.push(Obj {
                shape: s,
                colour: c,
                cx: 0,
                cy: 0,
                r: rng.random_range(k.radius.0..=k.radius.1),
                role,
            });
        }

        let clutter = (0..k.clutter)
            .map(|_| {
                let rgb = pick(&mut rng, &CLUTTER, CLUTTER[0]);
                let x = rng.random_range(0..i64::from(width));
                let y = rng.random_range(0..i64::from(height));
                if rng.random::<bool>() {
                    let x1 = x + rng.random_range(-12..=12);
                    let y1 = y + rng.random_range(-12..=12);
                    Mark::Line(x, y, x1, y1, rgb)
                } else {
                    Mark::Dot(x, y, rgb)
                }
            })
            .collect();

        // Objects are placed in drawing order: one target first (so there is always
        // one), then the rest shuffled, each drawn over the ones before it.
        if let Some(rest) = specs.get_mut(1..) {
            rest.shuffle(&mut rng);
        }
        let mut objects: Vec<Obj> = Vec::with_capacity(specs.len());
        for spec in &specs {
            if let Some(o) = place(&mut rng, *spec, &objects, width, height, k.max_overlap) {
                objects.push(o);
            }
        }
        Scene {
            width,
            height,
            background,
            colour,
            shape,
            objects,
            clutter,
        }
    }
}

impl Domain for Counting {
    fn name(&self) -> &str {
        "counting"
    }

    fn verifier(&self) -> &str {
        "counting"
    }

    fn generate(&self, seed: u64, difficulty: f32) -> Sample {
        let scene = Self::scene(seed, difficulty);
        let n = scene.targets();
        let plural = format!("{} {}s", colour_name(scene.colour), scene.shape.name());
        let prompt = format!("How many {plural} are there in the image? Answer with a number.");

        let mut groups: BTreeMap<(usize, Shape), usize> = BTreeMap::new();
        for o in &scene.objects {
            *groups.entry((o.colour, o.shape)).or_insert(0) += 1;
        }
        let mut parts = vec![phrase(n, scene.colour, scene.shape)];
        parts.extend(
            groups
                .iter()
                .filter(|(&(c, s), _)| (c, s) != (scene.colour, scene.shape))
                .map(|(&(c, s), &m)| phrase(m, c, s)),
        );
        let list = match parts.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => parts.join(""),
        };
        let overlap = if scene.has_overlap() {
            " Some shapes overlap, so I follow each outline and count every partly covered one once."
        } else {
            ""
        };
        let verb = if n == 1 { "is" } else { "are" };
        let think = format!(
            "I look for {plural} among {} shapes. I see {list}.{overlap} So there {verb} {}.",
            scene.objects.len(),
            phrase(n, scene.colour, scene.shape)
        );
        let answer = Answer::number(n);
        let template = glm_template(
            &think,
            &format!("The number of {plural} is "),
            &answer.response(),
        );
        Sample::new(
            "counting",
            prompt,
            vec![scene.render()],
            answer,
            difficulty,
            template,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::{classify, components};

    const DIFFS: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

    /// Objects drawn, measured on the image: every object is its own blob of its
    /// colour, so the palette-coloured blobs are the objects.
    fn blobs(img: &Image) -> usize {
        PALETTE.iter().map(|(_, c)| components(img, *c).len()).sum()
    }

    #[test]
    fn difficulty_adds_objects_and_occlusion() {
        let mut means = Vec::new();
        let mut overlap_rates = Vec::new();
        for diff in DIFFS {
            let (mut total, mut overlapping) = (0usize, 0usize);
            for seed in 0..100 {
                let s = Counting.generate(seed, diff);
                let scene = Counting::scene(seed, diff);
                let b = blobs(&s.images[0]);
                assert_eq!(b, scene.objects.len(), "seed {seed} d {diff}");
                total += b;
                overlapping += usize::from(scene.has_overlap());
            }
            means.push(total as f64 / 100.0);
            overlap_rates.push(overlapping);
        }
        assert!(means.windows(2).all(|w| w[0] <= w[1]), "{means:?}");
        assert!(means[4] > means[0] + 5.0, "{means:?}");
        assert_eq!(overlap_rates[0], 0, "no occlusion at difficulty 0");
        assert!(overlap_rates[4] > 50, "{overlap_rates:?}");
    }

    #[test]
    fn the_answer_is_in_the_image() {
        for diff in DIFFS {
            for seed in 0..100 {
                let s = Counting.generate(seed, diff);
                let scene = Counting::scene(seed, diff);
                let img = &s.images[0];
                let rgb = colour_rgb(scene.colour);
                let n: usize = s.gold.parse().unwrap();
                assert!(n >= 1);
                assert_eq!(n, scene.targets());
                // Every target keeps at least 60 % of its pixels in its colour.
                for o in scene.objects.iter().filter(|o| o.role == Role::Target) {
                    let mut alone = Canvas::new(img.width, img.height, [0, 0, 0]);
                    o.draw(&mut alone, WHITE);
                    let (mut full, mut seen) = (0, 0);
                    for y in 0..img.height {
                        for x in 0..img.width {
                            if alone.image().get(x, y) == Some(WHITE) {
                                full += 1;
                                seen += usize::from(img.get(x, y) == Some(rgb));
                            }
                        }
                    }
                    assert!(
                        seen * 5 >= full * 3,
                        "seed {seed}: {seen} of {full} visible"
                    );
                }
                // Blobs of the target colour: the targets and the same-coloured
                // distractors, one each.
                let comps = components(img, rgb);
                let same_colour = scene.objects.iter().filter(|o| o.colour == scene.colour);
                assert_eq!(comps.len(), same_colour.count(), "seed {seed} d {diff}");
                // Without occlusion the shapes can be read off the blobs.
                if !scene.has_overlap() {
                    let read = comps.iter().filter(|c| classify(c) == scene.shape).count();
                    assert_eq!(read, n, "seed {seed} d {diff}");
                }
            }
        }
    }

    #[test]
    fn prompt_names_the_target_and_distractors_confuse_at_high_difficulty() {
        let s = Counting.generate(5, 0.0);
        assert!(s.prompt.starts_with("How many "));
        assert!(s.prompt.contains("Answer with a number"));
        let confusable = |diff: f32| -> usize {
            (0..100)
                .map(|seed| {
                    Counting::scene(seed, diff)
                        .objects
                        .iter()
                        .filter(|o| matches!(o.role, Role::SameColour | Role::SameShape))
                        .count()
                })
                .sum()
        };
        assert_eq!(confusable(0.0), 0);
        assert!(confusable(1.0) > 300);
    }
}
