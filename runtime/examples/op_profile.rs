//! Per-op wall time of a compiled model on this machine (optimized kernels), averaged over
//! N runs: `cargo run --release -p edgegen-runtime --example op_profile -- MODEL.egm [N]`.
//! The input is a fixed pattern: an image for models that take one, seeded N(0, 1) values
//! for the ones that take f32 (a VAE decoder's or a GAN generator's latent).
use edgegen_runtime::interpreter::Interpreter;
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::model::{DType, Model};
use std::time::Instant;

fn main() {
    if let Err(e) = run() {
        eprintln!("op_profile: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: op_profile MODEL.egm [RUNS]")?;
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let n: usize = match args.get(2) {
        Some(s) => s.parse().map_err(|_| format!("RUNS must be a positive number, not {s:?}"))?,
        None => 200,
    };
    let model = Model::from_bytes(&bytes).map_err(|e| format!("{path}: {e}"))?;
    let interp = Interpreter::new(model, Kernels::Optimized);
    let mut arena = vec![0u8; interp.arena_len()];
    let input = interp.model().input();
    if input.dtype == DType::F32 {
        let mut z = vec![0f32; input.len()];
        edgegen_runtime::rng::Rng::new(1).fill_normal(&mut z);
        interp.set_input_f32(&mut arena, &z).map_err(|e| e.to_string())?;
    } else {
        let img: Vec<u8> = (0..input.len()).map(|i| (i * 37 % 256) as u8).collect();
        interp.set_input_image(&mut arena, &img).map_err(|e| e.to_string())?;
    }
    let ops = interp.model().op_count();
    let mut t = vec![0f64; ops];
    for _ in 0..n.max(1) {
        for (i, t) in t.iter_mut().enumerate() {
            let s = Instant::now();
            interp.invoke_ops(&mut arena, i..i + 1).map_err(|e| e.to_string())?;
            *t += s.elapsed().as_secs_f64();
        }
    }
    let total: f64 = t.iter().sum();
    for (i, t) in t.iter().enumerate() {
        let op = interp.model().op(i);
        let (m, e) = interp.op_macs(i);
        println!(
            "op {i:>2} {:?} k{}x{} macs {m:>9} exec {e:>9} {:>8.1} us {:>5.1}%",
            op.code,
            op.kernel_h,
            op.kernel_w,
            t / n.max(1) as f64 * 1e6,
            100.0 * t / total
        );
    }
    println!("total {:.1} us", total / n.max(1) as f64 * 1e6);
    Ok(())
}
