//! Per-op wall time of a compiled model on this machine (optimized kernels), averaged over
//! N runs: `cargo run --release -p edgegen-runtime --example op_profile -- MODEL.egm [N]`.
use edgegen_runtime::interpreter::Interpreter;
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::model::Model;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&args[1]).expect("model file");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let model = Model::from_bytes(&bytes).expect("model");
    let interp = Interpreter::new(model, Kernels::Optimized);
    let mut arena = vec![0u8; interp.arena_len()];
    let img: Vec<u8> = (0..784).map(|i| (i * 37 % 256) as u8).collect();
    interp.set_input_image(&mut arena, &img).unwrap();
    let ops = interp.model().op_count();
    let mut t = vec![0f64; ops];
    for _ in 0..n {
        for (i, t) in t.iter_mut().enumerate() {
            let s = Instant::now();
            interp.invoke_ops(&mut arena, i..i + 1).unwrap();
            *t += s.elapsed().as_secs_f64();
        }
    }
    let total: f64 = t.iter().sum();
    for (i, t) in t.iter().enumerate() {
        let op = interp.model().op(i);
        let (m, e) = interp.op_macs(i);
        println!("op {i:>2} {:?} k{}x{} macs {m:>9} exec {e:>9} {:>8.1} us {:>5.1}%", op.code, op.kernel_h, op.kernel_w, t / n as f64 * 1e6, 100.0 * t / total);
    }
    println!("total {:.1} us", total / n as f64 * 1e6);
}
