//! RGB images, a small drawing canvas and PNG/JPEG coding.
//!
//! Synthetic domains render their scenes with [`Canvas`]: filled and outlined
//! rectangles, circles, triangles, lines and text in the built-in bitmap font
//! ([`crate::font`]), all with integer coordinates and clipped to the image, so
//! rendering is exact and identical on every machine. [`Image::to_png`] writes what
//! the model sees; [`Image::decode`] reads PNG or JPEG bytes from real datasets.

use serde::{Deserialize, Serialize};

use crate::font;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// A named palette shared by the domains (prompts name these colours).
pub const PALETTE: &[(&str, Rgb)] = &[
    ("red", [220, 40, 40]),
    ("green", [40, 170, 60]),
    ("blue", [40, 80, 220]),
    ("yellow", [235, 200, 30]),
    ("purple", [150, 60, 190]),
    ("orange", [245, 130, 20]),
    ("black", [20, 20, 20]),
    ("gray", [130, 130, 130]),
];

/// White, the usual background.
pub const WHITE: Rgb = [255, 255, 255];
/// Black, the usual ink.
pub const BLACK: Rgb = [20, 20, 20];

/// The palette colour called `name`.
pub fn colour(name: &str) -> Option<Rgb> {
    PALETTE.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

/// An 8-bit RGB image, rows top to bottom, pixels left to right.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width · height · 3` bytes.
    pub rgb: Vec<u8>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Image({}x{})", self.width, self.height)
    }
}

/// Errors decoding or encoding images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Neither PNG nor JPEG.
    #[error("not a PNG or JPEG image (starts with {0:02x?})")]
    UnknownFormat(Vec<u8>),
    /// The PNG decoder or encoder failed.
    #[error("PNG: {0}")]
    Png(String),
    /// The JPEG decoder failed.
    #[error("JPEG: {0}")]
    Jpeg(String),
    /// A size of zero or beyond [`MAX_SIDE`].
    #[error("image size {width}x{height} is outside 1..={max} per side")]
    BadSize {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Largest side accepted.
        max: u32,
    },
}

/// Largest side of a decoded image (larger ones are refused, not resized).
pub const MAX_SIDE: u32 = 8192;

impl Image {
    /// A `width × height` image filled with `background`.
    pub fn new(width: u32, height: u32, background: Rgb) -> Self {
        let n = width as usize * height as usize;
        let mut rgb = Vec::with_capacity(n * 3);
        for _ in 0..n {
            rgb.extend_from_slice(&background);
        }
        Image { width, height, rgb }
    }

    /// The pixel at `(x, y)`, `None` outside.
    pub fn get(&self, x: u32, y: u32) -> Option<Rgb> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        Some([self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]])
    }

    /// Sets the pixel at `(x, y)`; outside the image nothing happens.
    pub fn put(&mut self, x: i64, y: i64, c: Rgb) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.rgb[i..i + 3].copy_from_slice(&c);
    }

    /// Pixels of colour `c`.
    pub fn count(&self, c: Rgb) -> usize {
        self.rgb.chunks_exact(3).filter(|p| *p == c).count()
    }

    /// The image as PNG bytes.
    pub fn to_png(&self) -> Result<Vec<u8>, ImageError> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width, self.height);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc
                .write_header()
                .map_err(|e| ImageError::Png(e.to_string()))?;
            w.write_image_data(&self.rgb)
                .map_err(|e| ImageError::Png(e.to_string()))?;
        }
        Ok(out)
    }

    /// Decodes PNG or JPEG bytes (told apart by their signature) to RGB.
    pub fn decode(bytes: &[u8]) -> Result<Image, ImageError> {
        if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
            Self::decode_png(bytes)
        } else if bytes.starts_with(&[0xff, 0xd8]) {
            Self::decode_jpeg(bytes)
        } else {
            Err(ImageError::UnknownFormat(
                bytes.iter().take(8).copied().collect(),
            ))
        }
    }

    fn checked(width: u32, height: u32) -> Result<(), ImageError> {
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(ImageError::BadSize {
                width,
                height,
                max: MAX_SIDE,
            });
        }
        Ok(())
    }

    fn decode_png(bytes: &[u8]) -> Result<Image, ImageError> {
        let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
        // 8-bit samples, palettes expanded.
        dec.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = dec
            .read_info()
            .map_err(|e| ImageError::Png(e.to_string()))?;
        let (w, h) = {
            let info = reader.info();
            (info.width, info.height)
        };
        Self::checked(w, h)?;
        let size = reader.output_buffer_size();
        let mut buf = vec![0; size];
        let frame = reader
            .next_frame(&mut buf)
            .map_err(|e| ImageError::Png(e.to_string()))?;
        let data = &buf[..frame.buffer_size()];
        let channels = frame.color_type.samples();
        let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
        for px in data.chunks_exact(channels) {
            match channels {
                1 | 2 => rgb.extend_from_slice(&[px[0], px[0], px[0]]),
                _ => rgb.extend_from_slice(&px[..3]),
            }
        }
        Ok(Image {
            width: w,
            height: h,
            rgb,
        })
    }

    fn decode_jpeg(bytes: &[u8]) -> Result<Image, ImageError> {
        let mut dec = jpeg_decoder::Decoder::new(bytes);
        let pixels = dec.decode().map_err(|e| ImageError::Jpeg(e.to_string()))?;
        let info = dec
            .info()
            .ok_or_else(|| ImageError::Jpeg("no image information".into()))?;
        let (w, h) = (u32::from(info.width), u32::from(info.height));
        Self::checked(w, h)?;
        let rgb = match info.pixel_format {
            jpeg_decoder::PixelFormat::RGB24 => pixels,
            jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
            jpeg_decoder::PixelFormat::L16 => pixels
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0]])
                .collect(),
            jpeg_decoder::PixelFormat::CMYK32 => pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = 255 - u32::from(p[3]);
                    let f = |c: u8| ((255 - u32::from(c)) * k / 255) as u8;
                    [f(p[0]), f(p[1]), f(p[2])]
                })
                .collect(),
        };
        Ok(Image {
            width: w,
            height: h,
            rgb,
        })
    }
}

/// Draws on an [`Image`]. Every primitive clips to the image.
pub struct Canvas {
    image: Image,
}

impl Canvas {
    /// A blank `width × height` canvas.
    pub fn new(width: u32, height: u32, background: Rgb) -> Self {
        Canvas {
            image: Image::new(width, height, background),
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.image.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.image.height
    }

    /// The finished image.
    pub fn finish(self) -> Image {
        self.image
    }

    /// The image drawn so far.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// One pixel.
    pub fn dot(&mut self, x: i64, y: i64, c: Rgb) {
        self.image.put(x, y, c);
    }

    /// A filled rectangle with corners `(x, y)` and `(x + w − 1, y + h − 1)`.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        for yy in y.max(0)..(y + h).min(i64::from(self.image.height)) {
            for xx in x.max(0)..(x + w).min(i64::from(self.image.width)) {
                self.image.put(xx, yy, c);
            }
        }
    }

    /// A one-pixel rectangle outline.
    pub fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        if w <= 0 || h <= 0 {
            return;
        }
        self.fill_rect(x, y, w, 1, c);
        self.fill_rect(x, y + h - 1, w, 1, c);
        self.fill_rect(x, y, 1, h, c);
        self.fill_rect(x + w - 1, y, 1, h, c);
    }

    /// A filled disc of radius `r` centred at `(cx, cy)`.
    pub fn fill_circle(&mut self, cx: i64, cy: i64, r: i64, c: Rgb) {
        for dy in -r..=r {
            for dx in -r..=r {
                if dx * dx + dy * dy <= r * r + r / 2 {
                    self.image.put(cx + dx, cy + dy, c);
                }
            }
        }
    }

    /// A filled triangle pointing up, inscribed in the box of side `2r` centred at
    /// `(cx, cy)`.
    pub fn fill_triangle(&mut self, cx: i64, cy: i64, r: i64, c: Rgb) {
        let h = 2 * r;
        for row in 0..=h {
            // Half width grows linearly from 0 at the apex to r at the base.
            let half = (row * r + h / 2) / h.max(1);
            self.fill_rect(cx - half, cy - r + row, 2 * half + 1, 1, c);
        }
    }

    /// A line from `(x0, y0)` to `(x1, y1)` (Bresenham), `thick` pixels wide.
    pub fn line(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, thick: i64, c: Rgb) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        let t = thick.max(1);
        loop {
            self.fill_rect(x - (t - 1) / 2, y - (t - 1) / 2, t, t, c);
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

    /// Text in the built-in font with its top-left corner at `(x, y)`, each font
    /// pixel drawn as a `scale × scale` block. Returns the width drawn.
    pub fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, c: Rgb) -> i64 {
        let scale = scale.max(1);
        let mut pen = x;
        for ch in s.chars() {
            let rows = font::glyph(ch);
            for (ry, bits) in rows.iter().enumerate() {
                for rx in 0..font::WIDTH {
                    if bits & (1 << (font::WIDTH - 1 - rx)) != 0 {
                        self.fill_rect(
                            pen + rx as i64 * scale,
                            y + ry as i64 * scale,
                            scale,
                            scale,
                            c,
                        );
                    }
                }
            }
            pen += font::ADVANCE as i64 * scale;
        }
        pen - x
    }

    /// Width of `s` in pixels at `scale` (without the trailing gap).
    pub fn text_width(s: &str, scale: i64) -> i64 {
        let n = s.chars().count() as i64;
        if n == 0 {
            0
        } else {
            (n * font::ADVANCE as i64 - (font::ADVANCE - font::WIDTH) as i64) * scale.max(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_clip_and_cover_what_they_should() {
        let mut c = Canvas::new(20, 10, WHITE);
        c.fill_rect(-5, -5, 10, 10, BLACK);
        assert_eq!(c.image().count(BLACK), 25);
        c.fill_rect(100, 100, 10, 10, BLACK);
        c.line(0, 9, 19, 9, 1, [1, 2, 3]);
        assert_eq!(c.image().count([1, 2, 3]), 20);
        c.fill_circle(15, 4, 2, [9, 9, 9]);
        assert!(c.image().count([9, 9, 9]) >= 9);
        let img = c.finish();
        assert_eq!(img.rgb.len(), 20 * 10 * 3);
        assert_eq!(img.get(0, 0), Some(BLACK));
        assert_eq!(img.get(20, 0), None);
    }

    #[test]
    fn png_round_trips_and_garbage_is_an_error() {
        let mut c = Canvas::new(37, 23, WHITE);
        c.text(1, 1, "AB12", 1, BLACK);
        c.fill_triangle(30, 12, 5, [200, 10, 10]);
        let img = c.finish();
        let png = img.to_png().unwrap();
        assert_eq!(Image::decode(&png).unwrap(), img);
        assert!(matches!(
            Image::decode(b"GIF89a.."),
            Err(ImageError::UnknownFormat(_))
        ));
        assert!(Image::decode(&png[..png.len() / 2]).is_err());
        assert!(Image::decode(&[0xff, 0xd8, 0, 0]).is_err());
    }

    #[test]
    fn text_draws_ink_and_measures_its_width() {
        let mut c = Canvas::new(60, 10, WHITE);
        let w = c.text(0, 0, "HELLO", 1, BLACK);
        assert_eq!(w, 5 * font::ADVANCE as i64);
        assert_eq!(Canvas::text_width("HELLO", 1), w - 1);
        assert!(c.image().count(BLACK) > 20);
    }
}
