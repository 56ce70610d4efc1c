//! Elementwise ops (reference).

use crate::kernels::AddParams;
use crate::quant::multiply_by_quantized_multiplier;

/// int8 addition with rescaling (TFLite): both inputs shifted left, rescaled to a common
/// scale, summed, and requantized to the output.
pub fn add(p: &AddParams, a: &[u8], b: &[u8], out: &mut [u8]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let xs = (x as i8 as i32 - p.zero_points[0]) << p.left_shift;
        let ys = (y as i8 as i32 - p.zero_points[1]) << p.left_shift;
        let sum = multiply_by_quantized_multiplier(xs, p.inputs[0].0, p.inputs[0].1)
            + multiply_by_quantized_multiplier(ys, p.inputs[1].0, p.inputs[1].1);
        let v = multiply_by_quantized_multiplier(sum, p.output.0, p.output.1) + p.output_zero_point;
        *o = v.clamp(p.act.0 as i32, p.act.1 as i32) as i8 as u8;
    }
}

/// int8 ReLU: values below the zero point become the zero point (same quantization).
pub fn relu(zero_point: i32, input: &[u8], out: &mut [u8]) {
    for (o, &x) in out.iter_mut().zip(input) {
        *o = (x as i8 as i32).max(zero_point) as i8 as u8;
    }
}

/// f32 tanh (little-endian bytes in and out), through `libm` for identical results on
/// every target.
pub fn tanh(input: &[u8], out: &mut [u8]) {
    for (o, x) in out.chunks_exact_mut(4).zip(input.chunks_exact(4)) {
        let v = f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
        o.copy_from_slice(&libm::tanhf(v).to_le_bytes());
    }
}

/// f32 → int8: `q = round_half_even(x / scale) + zero_point`, saturated (ONNX
/// QuantizeLinear semantics).
pub fn quantize(scale: f32, zero_point: i32, input: &[u8], out: &mut [u8]) {
    for (o, x) in out.iter_mut().zip(input.chunks_exact(4)) {
        let v = f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
        let q = libm::rintf(v / scale);
        let q = if q.is_nan() { 0 } else { (q.clamp(-1e6, 1e6) as i32 + zero_point).clamp(-128, 127) };
        *o = q as i8 as u8;
    }
}
