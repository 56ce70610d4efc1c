//! The screen: a 400×300 8-bit grayscale framebuffer drawn with embedded-graphics. Rows of
//! generated samples per model family, then the strip of scored sensor frames, each boxed
//! by its verdict (solid box: accepted; cross: rejected) with its guard score underneath and
//! the classifier's label under that (given only for accepted frames).

use edgegen_runtime::image::Geometry;
use embedded_graphics::mono_font::ascii::{FONT_4X6, FONT_5X8};
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::{Gray8, GrayColor};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, Rectangle};
use embedded_graphics::text::Text;

/// Screen width in pixels.
pub const WIDTH: usize = 400;
/// Screen height in pixels.
pub const HEIGHT: usize = 374;

/// The framebuffer.
pub struct Screen {
    buf: [u8; WIDTH * HEIGHT],
}

impl DrawTarget for Screen {
    type Color = Gray8;
    type Error = core::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Gray8>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
        for Pixel(p, c) in pixels {
            if (0..WIDTH as i32).contains(&p.x) && (0..HEIGHT as i32).contains(&p.y) {
                self.buf[p.y as usize * WIDTH + p.x as usize] = c.luma();
            }
        }
        Ok(())
    }
}

impl OriginDimensions for Screen {
    fn size(&self) -> Size {
        Size::new(WIDTH as u32, HEIGHT as u32)
    }
}

/// A row of generated samples.
#[derive(Clone, Copy, PartialEq)]
pub enum Family {
    /// VAE samples (top row).
    Vae,
    /// GAN samples.
    Gan,
    /// PixelCNN samples.
    PixelCnn,
}

const FAMILIES: [(Family, &str); 3] = [(Family::Vae, "VAE"), (Family::Gan, "GAN"), (Family::PixelCnn, "PixelCNN")];

impl Screen {
    /// An all-zero framebuffer (a `static` in `.bss`: nothing copied from flash, no stack).
    pub const fn blank() -> Self {
        Screen { buf: [0; WIDTH * HEIGHT] }
    }

    /// Clears to a dark screen with the titles: the use case, and a label for each family
    /// row it draws (the VAE's and the PixelCNN's rows only when `vae` / `pixelcnn` sample).
    pub fn init(&mut self, use_case: &str, vae: bool, pixelcnn: bool) {
        self.buf.fill(16);
        let s = self;
        // Two fonts, not three: every glyph table is flash the image is short of.
        let title = MonoTextStyle::new(&FONT_5X8, Gray8::WHITE);
        let label = MonoTextStyle::new(&FONT_5X8, Gray8::new(200));
        let mut text: heapless::String<64> = heapless::String::new();
        let _ = text.push_str("edgegen on Cortex-M (QEMU): int8 models, ");
        let _ = text.push_str(use_case);
        let _ = Text::new(&text, Point::new(4, 10), title).draw(s);
        for (i, (family, name)) in FAMILIES.iter().enumerate() {
            let shown = match family {
                Family::Vae => vae,
                Family::Gan => true,
                Family::PixelCnn => pixelcnn,
            };
            if shown {
                let _ = Text::new(name, Point::new(4, 40 + 60 * i as i32), label).draw(s);
            }
        }
        let _ = Text::new("sensor frames: box = accept, cross = reject; guard score and label below", Point::new(4, 206), label).draw(s);
    }

    /// Draws a planar image of geometry `g` into a `box_side`-pixel square at (x0, y0),
    /// scaled to fit (nearest pixel); colour as its luma (BT.601).
    fn blit(&mut self, x0: usize, y0: usize, img: &[u8], g: Geometry, box_side: usize) {
        let (h, w, plane) = (g.height as usize, g.width as usize, g.plane());
        if img.len() != g.values() || h == 0 || w == 0 {
            return;
        }
        let side = h.max(w);
        for y in 0..box_side * h / side {
            for x in 0..box_side * w / side {
                let p = (y * side / box_side) * w + x * side / box_side;
                let v = match g.channels {
                    3 => ((77 * img[p] as u32 + 150 * img[plane + p] as u32 + 29 * img[2 * plane + p] as u32) >> 8) as u8,
                    _ => img[p],
                };
                if y0 + y < HEIGHT && x0 + x < WIDTH {
                    self.buf[(y0 + y) * WIDTH + x0 + x] = v;
                }
            }
        }
    }

    /// Generated sample `n` of `family`'s row.
    pub fn sample(&mut self, family: Family, n: usize, img: &[u8], g: Geometry) {
        let row = FAMILIES.iter().position(|f| f.0 == family).unwrap_or(0);
        self.blit(60 + n * 62, 16 + row * 60, img, g, 56);
    }

    /// Scored frame `slot` with its verdict, score and label.
    pub fn frame(&mut self, slot: usize, img: &[u8], g: Geometry, accept: bool, score: f32, label: Option<&str>) {
        let (col, row) = (slot % 12, slot / 12);
        let (x, y) = (4 + col * 33, 214 + row * 52);
        if let Some(name) = label {
            let _ = Text::new(name, Point::new(x as i32 + 1, y as i32 + 48), MonoTextStyle::new(&FONT_4X6, Gray8::new(240))).draw(self);
        }
        self.blit(x + 2, y + 2, img, g, 28);
        let style = PrimitiveStyle::with_stroke(if accept { Gray8::WHITE } else { Gray8::new(110) }, 1);
        let _ = Rectangle::new(Point::new(x as i32, y as i32), Size::new(32, 32)).into_styled(style).draw(self);
        if !accept {
            let cross = PrimitiveStyle::with_stroke(Gray8::WHITE, 1);
            let _ = Line::new(Point::new(x as i32, y as i32), Point::new(x as i32 + 31, y as i32 + 31)).into_styled(cross).draw(self);
            let _ = Line::new(Point::new(x as i32 + 31, y as i32), Point::new(x as i32, y as i32 + 31)).into_styled(cross).draw(self);
        }
        let mut text: heapless::String<8> = heapless::String::new();
        let hundredths = (if score < 0.0 { -score } else { score } * 100.0 + 0.5) as u32;
        let sign = if score < 0.0 && hundredths > 0 { "-" } else { "" };
        let _ = text.push_str(sign);
        let _ = text.push_str(decimal(hundredths / 100, 1, &mut [0; 10]));
        let _ = text.push('.');
        let _ = text.push_str(decimal(hundredths % 100, 2, &mut [0; 10]));
        let _ = Text::new(&text, Point::new(x as i32 + 2, y as i32 + 40), MonoTextStyle::new(&FONT_5X8, Gray8::new(220))).draw(self);
    }

    /// The PGM header of the framebuffer.
    pub fn pgm_header(&self) -> heapless::Vec<u8, 32> {
        let mut s: heapless::String<32> = heapless::String::new();
        let _ = s.push_str("P5\n");
        let _ = s.push_str(decimal(WIDTH as u32, 1, &mut [0; 10]));
        let _ = s.push(' ');
        let _ = s.push_str(decimal(HEIGHT as u32, 1, &mut [0; 10]));
        let _ = s.push_str("\n255\n");
        heapless::Vec::from_slice(s.as_bytes()).unwrap_or_default()
    }

    /// The framebuffer, row-major.
    pub fn pixels(&self) -> &[u8] {
        &self.buf
    }
}

/// `v` in decimal, at least `digits` digits (zeros in front), in `buf`: the screen's numbers
/// without `core::fmt`, whose formatting machinery would cost the image about 3 KB of flash.
fn decimal(v: u32, digits: usize, buf: &mut [u8; 10]) -> &str {
    let (mut v, mut n) = (v, 0);
    while n < 10 && (v > 0 || n < digits.max(1)) {
        buf[9 - n] = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
    }
    // SAFETY: ASCII digits only (and `from_utf8`'s validator would cost more flash than this).
    unsafe { core::str::from_utf8_unchecked(&buf[10 - n..]) }
}
