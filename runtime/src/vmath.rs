//! `libm` functions over slices, bit for bit equal to calling them element by element: on
//! x86-64 with AVX-512 (feature `std`) 16 lanes at a time by replicas of `libm`'s own
//! algorithms (`kernels::x86::libm`), elsewhere `libm` per element. The likelihood code
//! batches its transcendentals through these, so every target still computes the same bits.

/// `pub fn $name(v: &mut [f32])`: `libm::$name` on every element, in place, through the
/// bit-exact 16-lane `x86::$batch` when the CPU has AVX-512 F.
macro_rules! batched {
    ($name:ident, $batch:ident) => {
        #[doc = concat!("`libm::", stringify!($name), "` on every element, in place.")]
        pub fn $name(v: &mut [f32]) {
            #[cfg(all(target_arch = "x86_64", feature = "std"))]
            if crate::kernels::x86::has_avx512f() {
                return crate::kernels::x86::libm::$batch(v);
            }
            for x in v {
                *x = libm::$name(*x);
            }
        }
    };
}

batched!(expf, expf_batch);
batched!(log1pf, log1pf_batch);
batched!(logf, logf_batch);

#[cfg(test)]
mod tests {
    use crate::rng::Rng;

    /// Arguments spanning every branch of both algorithms: random bit patterns (NaN, ±∞,
    /// subnormals included), random magnitudes, and the branch boundaries ± a few ulps.
    fn arguments() -> Vec<f32> {
        let mut rng = Rng::new(11);
        let mut v: Vec<f32> = (0..200_000).map(|_| f32::from_bits(rng.next_u32())).collect();
        v.extend((0..200_000).map(|_| (rng.uniform() * 2.0 - 1.0) * 2f32.powi(rng.below(16) as i32 - 8)));
        v.extend((0..100_000).map(|_| (rng.uniform() * 2.0 - 1.0) * 110.0));
        for b in [
            0x3900_0000u32,
            0x42ae_ac50,
            0x42b1_7218,
            0x42cf_f1b5,
            0x3eb1_7218,
            0x3f85_1592,
            0x3380_0000,
            0x3ed4_13d0,
            0x4b80_0000,
            0x7f80_0000,
            0x3f80_0000,
            0x0080_0000,
            0x3f35_04f3,
        ] {
            for d in 0..8u32 {
                for bits in [b.wrapping_add(d), b.wrapping_sub(d)] {
                    v.push(f32::from_bits(bits));
                    v.push(-f32::from_bits(bits));
                }
            }
        }
        v.extend([0.0, -0.0, 1.0, -1.0, f32::MIN_POSITIVE, f32::MAX, f32::EPSILON]);
        v.extend((0..100_000).map(|_| rng.uniform() * 4.0));
        v
    }

    #[test]
    fn batches_equal_libm_bit_for_bit() {
        let args = arguments();
        let mut e = args.clone();
        super::expf(&mut e);
        let mut l = args.clone();
        super::log1pf(&mut l);
        let mut g = args.clone();
        super::logf(&mut g);
        for (i, &x) in args.iter().enumerate() {
            assert_eq!(g[i].to_bits(), libm::logf(x).to_bits(), "logf({x:e}) bits {:#x}", x.to_bits());
            assert_eq!(e[i].to_bits(), libm::expf(x).to_bits(), "expf({x:e}) bits {:#x}", x.to_bits());
            assert_eq!(l[i].to_bits(), libm::log1pf(x).to_bits(), "log1pf({x:e}) bits {:#x}", x.to_bits());
        }
    }
}
