//! Coloured shapes shared by the scene domains (counting, grounding, video): the
//! three shapes, palette colours by index, spacing between shapes, and reading shapes
//! back from pixels (connected components), which the generators use to check
//! occlusion and the tests use to read answers off the image.

use crate::image::{BLACK, PALETTE};
use crate::{Canvas, Image, Rgb};

/// A shape the scene domains draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Shape {
    Circle,
    Square,
    Triangle,
}

/// Every shape, in a fixed order.
pub(crate) const SHAPES: [Shape; 3] = [Shape::Circle, Shape::Square, Shape::Triangle];

impl Shape {
    /// The name prompts use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
        }
    }

    /// Draws the shape centred at `(cx, cy)`; it fills (part of) `[cx ± r] × [cy ± r]`.
    pub(crate) fn draw(self, c: &mut Canvas, cx: i64, cy: i64, r: i64, rgb: Rgb) {
        match self {
            Shape::Circle => c.fill_circle(cx, cy, r, rgb),
            Shape::Square => c.fill_rect(cx - r, cy - r, 2 * r + 1, 2 * r + 1, rgb),
            Shape::Triangle => c.fill_triangle(cx, cy, r, rgb),
        }
    }
}

/// The palette colour name of index `i` (black beyond the palette).
pub(crate) fn colour_name(i: usize) -> &'static str {
    PALETTE.get(i).map_or("black", |p| p.0)
}

/// The palette colour of index `i` (black beyond the palette).
pub(crate) fn colour_rgb(i: usize) -> Rgb {
    PALETTE.get(i).map_or(BLACK, |p| p.1)
}

/// Blank pixel columns (or rows) between the boxes of two shapes centred at `a` and
/// `b` with radii `ra` and `rb`, the larger of the two; negative when the boxes
/// overlap on both axes.
pub(crate) fn box_gap(a: (i64, i64), ra: i64, b: (i64, i64), rb: i64) -> i64 {
    let gx = (a.0 - b.0).abs() - ra - rb - 1;
    let gy = (a.1 - b.1).abs() - ra - rb - 1;
    gx.max(gy)
}

/// 4-connected components of pixels of colour `c` inside `[x0, x1] × [y0, y1]`.
pub(crate) fn components_in(
    img: &Image,
    c: Rgb,
    x0: i64,
    y0: i64,
    x1: i64,
    y1: i64,
) -> Vec<Vec<(i64, i64)>> {
    let (x0, y0) = (x0.max(0), y0.max(0));
    let x1 = x1.min(i64::from(img.width) - 1);
    let y1 = y1.min(i64::from(img.height) - 1);
    if x0 > x1 || y0 > y1 {
        return Vec::new();
    }
    let rw = (x1 - x0 + 1) as usize;
    let inside = |x: i64, y: i64| {
        x >= x0 && x <= x1 && y >= y0 && y <= y1 && img.get(x as u32, y as u32) == Some(c)
    };
    let mut seen = vec![false; rw * (y1 - y0 + 1) as usize];
    let mut mark = |x: i64, y: i64| -> bool {
        let k = (y - y0) as usize * rw + (x - x0) as usize;
        match seen.get_mut(k) {
            Some(s) if !*s => {
                *s = true;
                true
            }
            _ => false,
        }
    };
    let mut out = Vec::new();
    for y in y0..=y1 {
        for x in x0..=x1 {
            if !inside(x, y) || !mark(x, y) {
                continue;
            }
            let mut comp = vec![(x, y)];
            let mut stack = vec![(x, y)];
            while let Some((px, py)) = stack.pop() {
                for (nx, ny) in [(px + 1, py), (px - 1, py), (px, py + 1), (px, py - 1)] {
                    if inside(nx, ny) && mark(nx, ny) {
                        comp.push((nx, ny));
                        stack.push((nx, ny));
                    }
                }
            }
            out.push(comp);
        }
    }
    out
}

/// 4-connected components of pixels of colour `c` in the whole image.
#[cfg(test)]
pub(crate) fn components(img: &Image, c: Rgb) -> Vec<Vec<(i64, i64)>> {
    components_in(img, c, 0, 0, i64::from(img.width), i64::from(img.height))
}

/// The bounding box `(x0, y0, x1, y1)` of a non-empty component.
#[cfg(test)]
pub(crate) fn extent(comp: &[(i64, i64)]) -> (i64, i64, i64, i64) {
    let x0 = comp.iter().map(|p| p.0).min().unwrap_or(0);
    let x1 = comp.iter().map(|p| p.0).max().unwrap_or(0);
    let y0 = comp.iter().map(|p| p.1).min().unwrap_or(0);
    let y1 = comp.iter().map(|p| p.1).max().unwrap_or(0);
    (x0, y0, x1, y1)
}

/// The shape of an unoccluded blob: a full box is a square, a one-pixel apex a
/// triangle, anything else a circle.
#[cfg(test)]
pub(crate) fn classify(comp: &[(i64, i64)]) -> Shape {
    let (x0, y0, x1, y1) = extent(comp);
    let top = comp.iter().filter(|p| p.1 == y0).count();
    if comp.len() as i64 == (x1 - x0 + 1) * (y1 - y0 + 1) {
        Shape::Square
    } else if top == 1 {
        Shape::Triangle
    } else {
        Shape::Circle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::WHITE;

    #[test]
    fn drawn_shapes_are_read_back_as_themselves() {
        for (k, shape) in SHAPES.into_iter().enumerate() {
            for r in 3..8 {
                let mut c = Canvas::new(40, 40, WHITE);
                shape.draw(&mut c, 20, 20, r, colour_rgb(k));
                let comps = components(c.image(), colour_rgb(k));
                assert_eq!(comps.len(), 1);
                assert_eq!(classify(&comps[0]), shape, "{shape:?} r {r}");
                let (x0, y0, x1, y1) = extent(&comps[0]);
                assert!(x0 >= 20 - r && x1 <= 20 + r && y0 >= 20 - r && y1 <= 20 + r);
            }
        }
        assert_eq!(box_gap((0, 0), 2, (10, 0), 2), 5);
        assert!(box_gap((0, 0), 3, (1, 1), 3) < 0);
        assert_eq!(colour_name(usize::MAX), "black");
    }
}
