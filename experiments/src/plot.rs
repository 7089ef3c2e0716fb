//! Line plots as PNG files, drawn pixel by pixel: axes, ticks, lines, a legend and
//! labels in an embedded 5×7 bitmap font (no system fonts, no plotting crate).
//!
//! ```
//! use rlcs_experiments::plot::{LinePlot, Series};
//! let plot = LinePlot {
//!     title: "demo".into(),
//!     x_label: "rollouts".into(),
//!     y_label: "accuracy".into(),
//!     series: vec![Series { label: "uniform".into(), points: vec![(0.0, 0.2), (10.0, 0.6)] }],
//!     hline: Some((0.5, "target".into())),
//!     ..LinePlot::default()
//! };
//! let png = plot.to_png().unwrap();
//! assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
//! ```

use std::io::Write as _;

/// Errors of the plot writer.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The image is too small to hold the axes.
    #[error("image {width}x{height} is too small (at least 200x150)")]
    TooSmall {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
    /// Compressing the pixels failed.
    #[error("encoding PNG: {0}")]
    Encode(#[from] std::io::Error),
}

/// One line of a plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// `(x, y)` points, drawn in order; non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
}

/// A line plot.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    /// Title above the plot.
    pub title: String,
    /// X-axis label.
    pub x_label: String,
    /// Y-axis label.
    pub y_label: String,
    /// The lines, one colour each, in legend order.
    pub series: Vec<Series>,
    /// A dashed horizontal reference line and its label (e.g. a target).
    pub hline: Option<(f64, String)>,
    /// Image width in pixels (default 1000).
    pub width: u32,
    /// Image height in pixels (default 640).
    pub height: u32,
}

impl Default for LinePlot {
    fn default() -> Self {
        LinePlot {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            series: Vec::new(),
            hline: None,
            width: 1000,
            height: 640,
        }
    }
}

type Rgb = [u8; 3];

/// Distinct line colours (Tableau 10, then darker extras).
const PALETTE: [Rgb; 12] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [0, 0, 0],
    [120, 60, 0],
];

/// 5×7 glyphs: seven rows, bit 4 is the leftmost pixel. Lower case draws as upper case.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        ' ' => [0; 7],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '>' => [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
        '<' => [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
    }
}

/// Text scale: each font pixel is a `SCALE`×`SCALE` square.
const SCALE: i64 = 2;
/// Advance per character, in image pixels.
const CHAR_W: i64 = 6 * SCALE;
/// Height of a line of text, in image pixels.
const CHAR_H: i64 = 7 * SCALE;

/// An RGB canvas.
struct Canvas {
    w: i64,
    h: i64,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: u32, h: u32) -> Self {
        Canvas {
            w: w as i64,
            h: h as i64,
            px: vec![255; w as usize * h as usize * 3],
        }
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && x < self.w && y < self.h {
            let i = ((y * self.w + x) * 3) as usize;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.set(x, y, c);
            }
        }
    }

    /// A line `thick` pixels wide (Bresenham, stamped with a square); `dash` > 0
    /// draws `dash` pixels on, `dash` off.
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb, thick: i64, dash: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err, mut n) = (x0, y0, dx + dy, 0i64);
        let lo = -(thick - 1) / 2;
        loop {
            if dash == 0 || (n / dash) % 2 == 0 {
                self.rect(x + lo, y + lo, x + lo + thick - 1, y + lo + thick - 1, c);
            }
            n += 1;
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Text with its top-left corner at `(x, y)`.
    fn text(&mut self, x: i64, y: i64, s: &str, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            let rows = glyph(ch);
            let ox = x + k as i64 * CHAR_W;
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        let (px, py) = (ox + col * SCALE, y + r as i64 * SCALE);
                        self.rect(px, py, px + SCALE - 1, py + SCALE - 1, c);
                    }
                }
            }
        }
    }

    /// Text rotated a quarter turn counter-clockwise (reads bottom to top), its
    /// bottom-left corner at `(x, y)`.
    fn text_up(&mut self, x: i64, y: i64, s: &str, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            let rows = glyph(ch);
            let oy = y - k as i64 * CHAR_W;
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        let (px, py) = (x + r as i64 * SCALE, oy - col * SCALE);
                        self.rect(px, py - SCALE + 1, px + SCALE - 1, py, c);
                    }
                }
            }
        }
    }
}

fn text_width(s: &str) -> i64 {
    s.chars().count() as i64 * CHAR_W
}

/// About `n` round tick values covering `[lo, hi]`.
fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut v = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while v <= hi + step * 1e-9 && out.len() < 50 {
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    out
}

/// A tick label: compact thousands (`12k`), otherwise up to two decimals.
fn tick_label(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        let k = v / 1000.0;
        if (k - k.round()).abs() < 1e-9 {
            format!("{}k", k.round() as i64)
        } else {
            format!("{k:.1}k")
        }
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').to_string()
    }
}

impl LinePlot {
    /// Draws the plot and encodes it as PNG bytes.
    pub fn to_png(&self) -> Result<Vec<u8>, PlotError> {
        let (w, h) = (self.width, self.height);
        if w < 200 || h < 150 || w > 8000 || h > 8000 {
            return Err(PlotError::TooSmall {
                width: w,
                height: h,
            });
        }
        let mut cv = Canvas::new(w, h);
        let pts = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter().copied())
                .filter(|(x, y)| x.is_finite() && y.is_finite())
        };
        let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
        for (x, y) in pts().chain(self.hline.iter().map(|(y, _)| (f64::NAN, *y))) {
            if x.is_finite() {
                x0 = x0.min(x);
                x1 = x1.max(x);
            }
            if y.is_finite() {
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
        if !x0.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        if !y0.is_finite() {
            (y0, y1) = (0.0, 1.0);
        }
        if x1 - x0 < 1e-12 {
            x1 = x0 + 1.0;
        }
        // A little room above and below the data.
        let pad = ((y1 - y0) * 0.05).max(0.01);
        (y0, y1) = (y0 - pad, y1 + pad);
        let (left, right, top, bottom) = (90i64, w as i64 - 20, 40i64, h as i64 - 60);
        let sx = |x: f64| left + ((x - x0) / (x1 - x0) * (right - left) as f64).round() as i64;
        let sy = |y: f64| bottom - ((y - y0) / (y1 - y0) * (bottom - top) as f64).round() as i64;
        let (ink, grid) = ([0, 0, 0], [225, 225, 225]);

        for t in ticks(x0, x1, 8) {
            let x = sx(t);
            cv.line((x, top), (x, bottom), grid, 1, 0);
            cv.line((x, bottom), (x, bottom + 5), ink, 1, 0);
            let l = tick_label(t);
            cv.text(x - text_width(&l) / 2, bottom + 10, &l, ink);
        }
        for t in ticks(y0, y1, 6) {
            let y = sy(t);
            cv.line((left, y), (right, y), grid, 1, 0);
            cv.line((left - 5, y), (left, y), ink, 1, 0);
            let l = tick_label(t);
            cv.text(left - 10 - text_width(&l), y - CHAR_H / 2, &l, ink);
        }
        cv.line((left, top), (left, bottom), ink, 1, 0);
        cv.line((left, bottom), (right, bottom), ink, 1, 0);
        cv.text(
            (left + right) / 2 - text_width(&self.title) / 2,
            12,
            &self.title,
            ink,
        );
        cv.text(
            (left + right) / 2 - text_width(&self.x_label) / 2,
            bottom + 32,
            &self.x_label,
            ink,
        );
        cv.text_up(
            12,
            (top + bottom) / 2 + text_width(&self.y_label) / 2,
            &self.y_label,
            ink,
        );
        if let Some((y, label)) = &self.hline {
            let py = sy(*y);
            cv.line((left, py), (right, py), [90, 90, 90], 1, 6);
            cv.text(left + 6, py - CHAR_H - 3, label, [90, 90, 90]);
        }
        for (k, s) in self.series.iter().enumerate() {
            let c = PALETTE[k % PALETTE.len()];
            let p: Vec<(i64, i64)> = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| (sx(x), sy(y)))
                .collect();
            for pair in p.windows(2) {
                cv.line(pair[0], pair[1], c, 2, 0);
            }
            for &(x, y) in &p {
                cv.rect(x - 2, y - 2, x + 2, y + 2, c);
            }
        }
        // Legend in the lower-right corner of the plot area.
        if !self.series.is_empty() {
            let lw = self
                .series
                .iter()
                .map(|s| text_width(&s.label))
                .max()
                .unwrap_or(0)
                + 40;
            let lh = self.series.len() as i64 * (CHAR_H + 6) + 8;
            let (lx, ly) = (right - lw - 8, bottom - lh - 8);
            cv.rect(lx, ly, lx + lw, ly + lh, [255, 255, 255]);
            cv.line((lx, ly), (lx + lw, ly), ink, 1, 0);
            cv.line((lx, ly + lh), (lx + lw, ly + lh), ink, 1, 0);
            cv.line((lx, ly), (lx, ly + lh), ink, 1, 0);
            cv.line((lx + lw, ly), (lx + lw, ly + lh), ink, 1, 0);
            for (k, s) in self.series.iter().enumerate() {
                let c = PALETTE[k % PALETTE.len()];
                let y = ly + 6 + k as i64 * (CHAR_H + 6);
                cv.line((lx + 6, y + CHAR_H / 2), (lx + 26, y + CHAR_H / 2), c, 3, 0);
                cv.text(lx + 32, y, &s.label, ink);
            }
        }
        encode_png(w, h, &cv.px)
    }
}

/// A horizontal bar chart: one labelled bar per row, its value written at its end.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    /// Title above the chart.
    pub title: String,
    /// Label of the value axis.
    pub x_label: String,
    /// `(label, value)` per bar, top to bottom; negative and non-finite values draw
    /// as empty bars.
    pub bars: Vec<(String, f64)>,
    /// Image width in pixels.
    pub width: u32,
}

impl BarChart {
    /// Draws the chart and encodes it as PNG bytes (height grows with the bars).
    pub fn to_png(&self) -> Result<Vec<u8>, PlotError> {
        let row = CHAR_H + 16;
        let h = (90 + self.bars.len() as i64 * row).clamp(150, 8000) as u32;
        let w = self.width;
        if !(200..=8000).contains(&w) {
            return Err(PlotError::TooSmall {
                width: w,
                height: h,
            });
        }
        let mut cv = Canvas::new(w, h);
        let ink = [0, 0, 0];
        let label_w = self
            .bars
            .iter()
            .map(|(l, _)| text_width(l))
            .max()
            .unwrap_or(0);
        let (left, right, top) = (label_w + 24, w as i64 - 90, 44i64);
        let max = self
            .bars
            .iter()
            .map(|(_, v)| *v)
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            .max(1e-12);
        cv.text(
            w as i64 / 2 - text_width(&self.title) / 2,
            12,
            &self.title,
            ink,
        );
        for (k, (label, v)) in self.bars.iter().enumerate() {
            let y = top + k as i64 * row;
            cv.text(left - 12 - text_width(label), y + 4, label, ink);
            let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
            let x1 = left + ((v / max) * (right - left) as f64).round() as i64;
            if x1 > left {
                cv.rect(left, y, x1, y + row - 6, PALETTE[k % PALETTE.len()]);
            }
            cv.text(x1 + 6, y + 4, &tick_label((v * 100.0).round() / 100.0), ink);
        }
        let bottom = top + self.bars.len() as i64 * row;
        cv.line((left, top - 4), (left, bottom), ink, 1, 0);
        cv.text(
            (left + right) / 2 - text_width(&self.x_label) / 2,
            bottom + 12,
            &self.x_label,
            ink,
        );
        encode_png(w, h, &cv.px)
    }
}

/// Encodes 8-bit RGB pixels (row-major, no padding) as a PNG.
pub fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, PlotError> {
    let row = width as usize * 3;
    if rgb.len() != row * height as usize {
        return Err(PlotError::Encode(std::io::Error::other(format!(
            "{} bytes of pixels for a {width}x{height} image",
            rgb.len()
        ))));
    }
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for r in rgb.chunks(row) {
        raw.push(0); // filter: none
        raw.extend_from_slice(r);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw)?;
    let idat = z.finish()?;
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit, RGB, deflate, no filter, no interlace
    for (kind, data) in [
        (b"IHDR", &ihdr[..]),
        (b"IDAT", &idat[..]),
        (b"IEND", &[][..]),
    ] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> LinePlot {
        LinePlot {
            title: "Accuracy vs rollouts".into(),
            x_label: "rollouts".into(),
            y_label: "eval accuracy".into(),
            series: vec![
                Series {
                    label: "uniform".into(),
                    points: vec![(0.0, 0.2), (5000.0, 0.5), (10000.0, 0.6)],
                },
                Series {
                    label: "rlcs".into(),
                    points: vec![(0.0, 0.2), (4000.0, 0.55), (f64::NAN, 0.9), (9000.0, 0.7)],
                },
            ],
            hline: Some((0.6, "target 0.6".into())),
            ..LinePlot::default()
        }
    }

    #[test]
    fn png_has_valid_chunks_and_pixels() {
        let png = demo().to_png().unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1000);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 640);
        // Every chunk's CRC matches; the last chunk is IEND.
        let mut i = 8;
        let mut kinds = Vec::new();
        while i < png.len() {
            let len = u32::from_be_bytes(png[i..i + 4].try_into().unwrap()) as usize;
            let body = &png[i + 4..i + 8 + len];
            let crc = u32::from_be_bytes(png[i + 8 + len..i + 12 + len].try_into().unwrap());
            assert_eq!(crc32fast::hash(body), crc);
            kinds.push(String::from_utf8_lossy(&body[..4]).into_owned());
            i += 12 + len;
        }
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        // The pixels decode back and include both series' colours.
        let idat_len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        let mut d = flate2::read::ZlibDecoder::new(&png[41..41 + idat_len]);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut raw).unwrap();
        assert_eq!(raw.len(), 640 * (1000 * 3 + 1));
        for c in [PALETTE[0], PALETTE[1]] {
            assert!(raw.windows(3).any(|w| w == c), "colour {c:?} drawn");
        }
    }

    #[test]
    fn plots_are_deterministic_and_reject_tiny_images() {
        assert_eq!(demo().to_png().unwrap(), demo().to_png().unwrap());
        let tiny = LinePlot {
            width: 50,
            ..demo()
        };
        assert!(tiny.to_png().is_err());
        // No data at all still draws axes.
        let empty = LinePlot::default();
        assert!(empty.to_png().is_ok());
    }

    #[test]
    fn bar_charts_draw_every_bar() {
        let chart = BarChart {
            title: "Seconds per stage".into(),
            x_label: "seconds".into(),
            bars: vec![
                ("sft".into(), 10.0),
                ("rl".into(), 5.0),
                ("eval".into(), f64::NAN),
            ],
            width: 600,
        };
        let png = chart.to_png().unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(png, chart.to_png().unwrap());
        let idat_len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        let mut d = flate2::read::ZlibDecoder::new(&png[41..41 + idat_len]);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut raw).unwrap();
        for c in [PALETTE[0], PALETTE[1]] {
            assert!(raw.windows(3).any(|w| w == c), "bar colour {c:?} drawn");
        }
        assert!(
            !raw.windows(3).any(|w| w == PALETTE[2]),
            "a NaN bar is empty"
        );
        assert!(BarChart { width: 10, ..chart }.to_png().is_err());
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(tick_label(20_000.0), "20k");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(0.5), "0.5");
    }
}
