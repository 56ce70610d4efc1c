//! One kernel test suite, run against every implementation: small cases worked out by
//! hand, and bit-exactness with the reference on random shapes and values.

use super::dispatch::{by_name, KernelTable};
use super::{AddParams, ConvGeometry, Layer, OutSpec};
use crate::quant::quantize_multiplier;
use crate::rng::Rng;

fn bytes_i32(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn quant_block(scales: &[f64]) -> Vec<u8> {
    scales
        .iter()
        .flat_map(|&s| {
            let (m, sh) = quantize_multiplier(s).unwrap();
            [m, sh]
        })
        .flat_map(|x: i32| x.to_le_bytes())
        .collect()
}

fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next_u32() as u8).collect()
}

/// A random convolution case: geometry, input, weights (some zero), bias, quant.
fn random_case(rng: &mut Rng, transpose: bool) -> (ConvGeometry, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    // Now and then many input channels: long dot products, several position groups per
    // row in the im2col kernel, and shapes beyond its stack buffers.
    let ci = if rng.below(5) == 0 { 20 + rng.below(30) as usize } else { 1 + rng.below(5) as usize };
    let co = if rng.below(4) == 0 { 6 + rng.below(10) as usize } else { 1 + rng.below(5) as usize };
    let k = 1 + rng.below(5) as usize;
    let stride = 1 + rng.below(2) as usize;
    let pad = rng.below(k as u32) as usize;
    let (hi, wi) = (1 + rng.below(9) as usize + k, 1 + rng.below(9) as usize + k);
    // Now and then a PixelCNN-like layer: 16 to 32 wide rows at stride 1, channel counts that
    // are multiples of 4 (or one channel, or not), up to 7×7 kernels (the AVX-512 VNNI
    // kernel's shapes and their edges).
    let (ci, co, k, stride, pad, hi, wi) = if !transpose && rng.below(3) == 0 {
        let ci = [1, 4, 8, 12, 32, 64, 6][rng.below(7) as usize];
        let k = [1, 3, 5, 7, 2][rng.below(5) as usize];
        let co = 1 + rng.below(if ci * k * k > 400 { 12 } else { 40 }) as usize;
        let pad = if rng.below(4) == 0 { rng.below(k as u32) as usize } else { k / 2 };
        (ci, co, k, 1, pad, 12 + rng.below(22) as usize, 12 + rng.below(24) as usize)
    } else if transpose && rng.below(3) == 0 {
        // A VAE decoder's upsampling layer: 4×4 kernels at stride 2 (run as four phases of
        // 2×2 convolutions), many channels.
        // (128 → 64 channels: the GAN's first layer, run a group of output channels at a time.)
        let ci = [8, 16, 32, 64, 128][rng.below(5) as usize];
        let co = [1, 4, 12, 32, 64][rng.below(5) as usize];
        let pad = rng.below(3) as usize;
        (ci, co, 4, 2, pad, 3 + rng.below(12) as usize, 3 + rng.below(12) as usize)
    } else {
        (ci, co, k, stride, pad, hi, wi)
    };
    let (ho, wo) = if transpose {
        ((hi - 1) * stride + k - 2 * pad, (wi - 1) * stride + k - 2 * pad)
    } else {
        ((hi + 2 * pad - k) / stride + 1, (wi + 2 * pad - k) / stride + 1)
    };
    let g = ConvGeometry {
        input: [ci, hi, wi],
        output: [co, ho, wo],
        kernel: [k, k],
        stride,
        pad,
        input_zero_point: rng.below(256) as i32 - 128,
        rows: (0, ho),
    };
    let input = random_bytes(rng, ci * hi * wi);
    let mut weights = random_bytes(rng, co * ci * k * k);
    for w in weights.iter_mut() {
        if rng.below(3) == 0 {
            *w = 0;
        }
    }
    // Now and then a masked kernel: taps that are zero for every channel (all of them, rarely).
    if rng.below(3) == 0 {
        let dead: Vec<bool> = (0..k * k).map(|_| rng.below(2) == 0).collect();
        for (i, w) in weights.iter_mut().enumerate() {
            if dead[i % (k * k)] {
                *w = 0;
            }
        }
    }
    let bias = bytes_i32(&(0..co).map(|_| rng.below(20_001) as i32 - 10_000).collect::<Vec<_>>());
    let scales: Vec<f64> = (0..co).map(|_| 1e-4 + rng.uniform() as f64 * 0.01).collect();
    (g, input, weights, bias, quant_block(&scales))
}

/// Every kernel table a build can have, by name: each gets the whole suite below, or is
/// skipped where this build or CPU lacks it.
const TABLES: [&str; 6] = ["reference", "portable", "x86-avx2", "x86-avx512-vnni", "arm-dsp", "arm-mve"];

/// Prints which tables this machine runs (the test command shows it with `--nocapture`).
#[test]
fn report() {
    for name in TABLES {
        let state = if by_name(name).is_some() { "runs here" } else { "skipped: not in this build or not on this CPU" };
        println!("kernel suite {name}: {state}");
    }
    assert!(by_name("reference").is_some() && by_name("portable").is_some());
    assert_eq!(crate::kernels::Kernels::Optimized.table().name, crate::kernels::dispatch::best().name);
}

/// One table under test: each weighted call runs twice, with the table's packing of the
/// layer (its prepare step) and without, and both must agree before the suite compares
/// them with the reference.
struct Imp(&'static KernelTable);

impl Imp {
    fn of(name: &str) -> Option<Imp> {
        let t = by_name(name);
        if t.is_none() {
            eprintln!("kernel suite {name}: skipped (not in this build or not on this CPU)");
        }
        t.map(Imp)
    }

    fn conv(&self, transposed: bool, g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
        let f = if transposed { self.0.conv_transpose2d } else { self.0.conv2d };
        let whole = ConvGeometry { rows: (0, g.output[1]), ..*g };
        let layer = if transposed { Layer::ConvTranspose(whole) } else { Layer::Conv(whole) };
        let packed = (self.0.pack)(&layer, weights, bias);
        let mut unpacked = out.to_vec();
        f(g, input, weights, bias, spec, out, packed.as_ref());
        f(g, input, weights, bias, spec, &mut unpacked, None);
        assert_eq!(out, &unpacked[..], "{}: packed and unpacked runs differ", self.0.name);
    }

    fn conv2d(&self, g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
        self.conv(false, g, input, weights, bias, spec, out)
    }

    fn conv_transpose2d(&self, g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
        self.conv(true, g, input, weights, bias, spec, out)
    }

    fn fully_connected(&self, input: &[u8], zp: i32, weights: &[u8], bias: &[u8], outputs: usize, spec: &OutSpec, out: &mut [u8]) {
        let layer = Layer::Dense { inputs: input.len(), outputs, input_zero_point: zp };
        let packed = (self.0.pack)(&layer, weights, bias);
        let mut unpacked = out.to_vec();
        (self.0.fully_connected)(input, zp, weights, bias, outputs, spec, out, packed.as_ref());
        (self.0.fully_connected)(input, zp, weights, bias, outputs, spec, &mut unpacked, None);
        assert_eq!(out, &unpacked[..], "{}: packed and unpacked runs differ", self.0.name);
    }

    fn add(&self, p: &AddParams, a: &[u8], b: &[u8], out: &mut [u8]) {
        (self.0.add)(p, a, b, out)
    }

    fn relu(&self, zp: i32, input: &[u8], out: &mut [u8]) {
        (self.0.relu)(zp, input, out)
    }
}

macro_rules! kernel_suite {
    ($name:ident, $table:literal) => {
        mod $name {
            use super::*;

            #[test]
            fn conv_identity_kernel_copies_input() {
                let Some(imp) = Imp::of($table) else { return };
                let g = ConvGeometry {
                    input: [1, 3, 3],
                    output: [1, 3, 3],
                    kernel: [3, 3],
                    stride: 1,
                    pad: 1,
                    input_zero_point: 5,
                    rows: (0, 3),
                };
                let input: Vec<u8> = [-9i8, 0, 4, 7, 100, -128, 127, 5, 6].iter().map(|&v| v as u8).collect();
                let mut w = [0u8; 9];
                w[4] = 1;
                let spec = OutSpec::Int8 { zero_point: 5, act_min: -128, act_max: 127, quant: &quant_block(&[1.0 - 1e-9]) };
                let mut out = [0u8; 9];
                imp.conv2d(&g, &input, &w, &bytes_i32(&[0]), &spec, &mut out);
                assert_eq!(out.to_vec(), input);
            }

            #[test]
            fn conv_sums_neighbourhood_with_padding() {
                let Some(imp) = Imp::of($table) else { return };
                // 3x3 ones kernel over a 2x2 input of value 1 (zero point 0): every output sees all 4.
                let g = ConvGeometry {
                    input: [1, 2, 2],
                    output: [1, 2, 2],
                    kernel: [3, 3],
                    stride: 1,
                    pad: 1,
                    input_zero_point: 0,
                    rows: (0, 2),
                };
                let spec = OutSpec::F32 { quant: &0.5f32.to_le_bytes() };
                let mut out = [0u8; 16];
                imp.conv2d(&g, &[1, 1, 1, 1], &[1; 9], &bytes_i32(&[2]), &spec, &mut out);
                for c in out.chunks(4) {
                    assert_eq!(f32::from_le_bytes([c[0], c[1], c[2], c[3]]), 3.0);
                }
            }

            #[test]
            fn transposed_conv_of_an_impulse_is_the_kernel() {
                let Some(imp) = Imp::of($table) else { return };
                let g = ConvGeometry {
                    input: [1, 1, 1],
                    output: [1, 3, 3],
                    kernel: [3, 3],
                    stride: 2,
                    pad: 0,
                    input_zero_point: -1,
                    rows: (0, 3),
                };
                let w: Vec<u8> = (1..=9i8).map(|v| v as u8).collect();
                let spec = OutSpec::Int8 { zero_point: 0, act_min: -128, act_max: 127, quant: &quant_block(&[1.0 - 1e-9]) };
                let mut out = [0u8; 9];
                imp.conv_transpose2d(&g, &[0], &w, &bytes_i32(&[0]), &spec, &mut out);
                assert_eq!(out.to_vec(), w);
            }

            #[test]
            fn dense_is_a_dot_product_and_clamps() {
                let Some(imp) = Imp::of($table) else { return };
                let input: Vec<u8> = [1i8, -2, 3].iter().map(|&v| v as u8).collect();
                let w: Vec<u8> = [4i8, 5, 6, -1, -1, -1].iter().map(|&v| v as u8).collect();
                let spec = OutSpec::Int8 { zero_point: 0, act_min: 0, act_max: 127, quant: &quant_block(&[1.0 - 1e-9, 1.0 - 1e-9]) };
                let mut out = [0u8; 2];
                imp.fully_connected(&input, 0, &w, &bytes_i32(&[10, 0]), 2, &spec, &mut out);
                assert_eq!(out, [22, 0]); // 1·4 − 2·5 + 3·6 + 10; the second row, −2, clamps to 0
            }

            #[test]
            fn add_of_equal_scales_sums() {
                let Some(imp) = Imp::of($table) else { return };
                let (m_in, s_in) = quantize_multiplier(0.5).unwrap();
                let (m_out, s_out) = quantize_multiplier(2.0 / (1 << 20) as f64).unwrap();
                let p = AddParams {
                    left_shift: 20,
                    zero_points: [0, 0],
                    inputs: [(m_in, s_in), (m_in, s_in)],
                    output: (m_out, s_out),
                    output_zero_point: 0,
                    act: (-128, 127),
                };
                let a: Vec<u8> = [1i8, 50, -60, 100].iter().map(|&v| v as u8).collect();
                let b: Vec<u8> = [2i8, 50, -60, 100].iter().map(|&v| v as u8).collect();
                let mut out = [0u8; 4];
                imp.add(&p, &a, &b, &mut out);
                assert_eq!(out.map(|v| v as i8), [3, 100, -120, 127]);
            }

            #[test]
            fn relu_is_bit_exact_with_reference() {
                let Some(imp) = Imp::of($table) else { return };
                let mut rng = Rng::new(79);
                for zp in [-128, -5, 0, 77, 127, 200, -300] {
                    let n = 1 + rng.below(3000) as usize;
                    let x = random_bytes(&mut rng, n);
                    let (mut want, mut got) = (vec![0u8; n], vec![0u8; n]);
                    crate::kernels::reference::relu(zp, &x, &mut want);
                    imp.relu(zp, &x, &mut got);
                    assert_eq!(want, got, "zero point {zp}");
                }
            }

            #[test]
            fn add_is_bit_exact_with_reference_on_random_cases() {
                let Some(imp) = Imp::of($table) else { return };
                let mut rng = Rng::new(78);
                for case in 0..40 {
                    let q = |rng: &mut Rng| quantize_multiplier(1e-3 + rng.uniform() as f64 * 0.9).unwrap();
                    let p = AddParams {
                        left_shift: 20,
                        zero_points: [rng.below(256) as i32 - 128, rng.below(256) as i32 - 128],
                        inputs: [q(&mut rng), q(&mut rng)],
                        output: quantize_multiplier((1e-3 + rng.uniform() as f64) / (1 << 20) as f64).unwrap(),
                        output_zero_point: rng.below(256) as i32 - 128,
                        act: (-128 + rng.below(100) as i8, 127),
                    };
                    // Long enough for the optimized kernel's tables, short ones too.
                    let n = if case % 2 == 0 { 600 + rng.below(900) as usize } else { 1 + rng.below(100) as usize };
                    let (a, b) = (random_bytes(&mut rng, n), random_bytes(&mut rng, n));
                    let (mut want, mut got) = (vec![0u8; n], vec![0u8; n]);
                    crate::kernels::reference::add(&p, &a, &b, &mut want);
                    imp.add(&p, &a, &b, &mut got);
                    assert_eq!(want, got, "case {case}");
                }
            }

            /// Layers whose weights outgrow one pass of the optimized kernels' buffers (the
            /// flow's full 3×3 convolutions of 32 → 32 channels), run a group of output
            /// channels at a time: bit-exact with the reference, whole and in a row band.
            #[test]
            fn conv_wider_than_one_weight_pass_is_bit_exact() {
                let Some(imp) = Imp::of($table) else { return };
                let mut rng = Rng::new(5);
                for (ci, co, k, h, w) in [(32, 32, 3, 28, 28), (32, 36, 3, 12, 20), (64, 24, 3, 10, 14), (16, 70, 3, 9, 8)] {
                    for (rows, ho) in [((0, h), h), ((3, 7), h)] {
                        let g = ConvGeometry {
                            input: [ci, h, w],
                            output: [co, ho, w],
                            kernel: [k, k],
                            stride: 1,
                            pad: k / 2,
                            input_zero_point: rng.below(256) as i32 - 128,
                            rows,
                        };
                        let input = random_bytes(&mut rng, ci * h * w);
                        let weights = random_bytes(&mut rng, co * ci * k * k);
                        let bias = bytes_i32(&(0..co).map(|_| rng.below(20_001) as i32 - 10_000).collect::<Vec<_>>());
                        let quant = quant_block(&(0..co).map(|_| 1e-5 + rng.uniform() as f64 * 1e-3).collect::<Vec<_>>());
                        for spec in [
                            OutSpec::Int8 { zero_point: -3, act_min: -128, act_max: 127, quant: &quant },
                            OutSpec::F32 { quant: &quant[..4 * co] },
                        ] {
                            let width = if matches!(spec, OutSpec::F32 { .. }) { 4 } else { 1 };
                            let n = co * ho * w * width;
                            let mut want = vec![0xAAu8; n];
                            crate::kernels::reference::conv2d(&g, &input, &weights, &bias, &spec, &mut want);
                            let mut got = vec![0xAAu8; n];
                            imp.conv2d(&g, &input, &weights, &bias, &spec, &mut got);
                            assert_eq!(want, got, "{ci} → {co}, {k}×{k}, {h}×{w}, rows {rows:?}");
                        }
                    }
                }
            }

            #[test]
            fn bit_exact_with_reference_on_random_cases() {
                let Some(imp) = Imp::of($table) else { return };
                let mut rng = Rng::new(77);
                for case in 0..300 {
                    let transpose = case % 2 == 1;
                    let (g, input, weights, bias, quant) = random_case(&mut rng, transpose);
                    let n = g.output.iter().product::<usize>();
                    let act_min = rng.below(100) as i32 - 128;
                    let zp = rng.below(200) as i32 - 100;
                    for spec in [
                        OutSpec::Int8 { zero_point: zp, act_min: act_min as i8, act_max: 127, quant: &quant },
                        OutSpec::F32 { quant: &quant[..4 * g.output[0]] },
                    ] {
                        let width = if matches!(spec, OutSpec::F32 { .. }) { 4 } else { 1 };
                        let (mut want, mut got) = (vec![0u8; n * width], vec![0u8; n * width]);
                        if transpose {
                            crate::kernels::reference::conv_transpose2d(&g, &input, &weights, &bias, &spec, &mut want);
                            imp.conv_transpose2d(&g, &input, &weights, &bias, &spec, &mut got);
                        } else {
                            crate::kernels::reference::conv2d(&g, &input, &weights, &bias, &spec, &mut want);
                            imp.conv2d(&g, &input, &weights, &bias, &spec, &mut got);
                        }
                        assert_eq!(want, got, "case {case} {g:?}");
                        // A band of output rows: exactly those rows, the rest untouched.
                        if !transpose {
                            let ho = g.output[1];
                            let r0 = rng.below(ho as u32) as usize;
                            let r1 = r0 + 1 + rng.below((ho - r0) as u32) as usize;
                            let band = ConvGeometry { rows: (r0, r1), ..g };
                            let mut part = vec![0xAAu8; n * width];
                            imp.conv2d(&band, &input, &weights, &bias, &spec, &mut part);
                            let plane = g.output[1] * g.output[2];
                            for (i, (&p, &w)) in part.iter().zip(&want).enumerate() {
                                let row = (i / width % plane) / g.output[2];
                                if (r0..r1).contains(&row) {
                                    assert_eq!(p, w, "band case {case}");
                                } else {
                                    assert_eq!(p, 0xAA, "band case {case} wrote outside its rows");
                                }
                            }
                        }
                    }
                    let (m, k) = (1 + rng.below(40) as usize, 1 + rng.below(700) as usize);
                    let x = random_bytes(&mut rng, k);
                    let w = random_bytes(&mut rng, m * k);
                    let b = bytes_i32(&(0..m).map(|_| rng.below(2001) as i32 - 1000).collect::<Vec<_>>());
                    // A scale per output (vector kernels requantize lanes with their own).
                    let q = quant_block(&(0..m).map(|_| 1e-4 + rng.uniform() as f64 * 0.01).collect::<Vec<_>>());
                    let spec = OutSpec::Int8 { zero_point: zp, act_min: -128, act_max: 127, quant: &q };
                    let (mut want, mut got) = (vec![0u8; m], vec![0u8; m]);
                    crate::kernels::reference::fully_connected(&x, zp, &w, &b, m, &spec, &mut want);
                    imp.fully_connected(&x, zp, &w, &b, m, &spec, &mut got);
                    assert_eq!(want, got, "dense case {case}");
                    // f32 outputs (a VAE encoder's mu and logvar).
                    let spec = OutSpec::F32 { quant: &q[..4 * m] };
                    let (mut want, mut got) = (vec![0u8; 4 * m], vec![0u8; 4 * m]);
                    crate::kernels::reference::fully_connected(&x, zp, &w, &b, m, &spec, &mut want);
                    imp.fully_connected(&x, zp, &w, &b, m, &spec, &mut got);
                    assert_eq!(want, got, "dense f32 case {case}");
                }
            }
        }
    };
}

kernel_suite!(reference_suite, "reference");
kernel_suite!(portable_suite, "portable");
kernel_suite!(x86_avx2_suite, "x86-avx2");
kernel_suite!(x86_avx512_vnni_suite, "x86-avx512-vnni");
kernel_suite!(arm_dsp_suite, "arm-dsp");
kernel_suite!(arm_mve_suite, "arm-mve");
