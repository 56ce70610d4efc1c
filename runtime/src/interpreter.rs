//! The interpreter: runs a validated [`Model`] op by op over a caller-provided arena, at
//! the offsets the compiler planned. No allocation; the arena is the only RAM it touches
//! besides the stack: about 32 KiB with the optimized kernels (their im2col buffers; the
//! firmware measures its peak), a few KiB with the reference kernels.

use crate::kernels::{self, i32_at, AddParams, ConvGeometry, KernelTable, Kernels, OutSpec, Packed};
use crate::model::{DType, Model, OpCode, Tensor, NO_TENSOR};
use crate::Error;
use core::ops::Range;

/// Most tensors a [`PrivateLayout`] holds.
pub const MAX_PRIVATE_TENSORS: usize = 64;

/// An arena layout in which every tensor has storage of its own (no reuse between
/// lifetimes), so values survive across invocations: what row-band evaluation needs.
///
/// [`PrivateLayout::new`] keeps every row of every tensor (the sum of all activations);
/// [`PrivateLayout::window`] keeps only the last few rows of each, `(C, rows, W)`, the
/// current row last: what a row-causal model still reads while it is evaluated row after
/// row ([`PrivateLayout::advance`] moves every window one row down the image).
#[derive(Debug, Clone)]
pub struct PrivateLayout {
    offsets: heapless::Vec<u32, MAX_PRIVATE_TENSORS>,
    len: usize,
    /// Rows kept per tensor when a window (`None`: every row).
    window: Option<u16>,
}

impl PrivateLayout {
    /// A layout for `model`: tensors one after another, 16-byte aligned, every row kept.
    pub fn new(model: &Model) -> Result<Self, Error> {
        Self::build(model, None)
    }

    /// A layout keeping the last `rows` rows of every tensor (all tensors must be as tall as
    /// the model's input, as in a row-causal model); row `rows − 1` of each window is the
    /// row being evaluated, the rows above it the image rows before, in order.
    pub fn window(model: &Model, rows: usize) -> Result<Self, Error> {
        let h = model.input().dims[1] as usize;
        if rows == 0 || rows > h {
            return Err(Error::InvalidParameter("a row window must keep between 1 and the image's height rows"));
        }
        if (0..model.tensor_count()).any(|i| model.tensor(i).dims[1] as usize != h) {
            return Err(Error::InvalidParameter("a row window needs every tensor as tall as the image"));
        }
        Self::build(model, Some(rows as u16))
    }

    /// Rows a row-causal model reads above and at the row it evaluates, plus that row: the
    /// tallest convolution's half-height plus one (the smallest [`PrivateLayout::window`]
    /// that evaluates it exactly).
    pub fn rows_needed(model: &Model) -> usize {
        (0..model.op_count())
            .map(|i| model.op(i))
            .filter(|op| op.code == OpCode::Conv2d)
            .map(|op| op.kernel_h as usize / 2 + 1)
            .max()
            .unwrap_or(1)
    }

    fn build(model: &Model, window: Option<u16>) -> Result<Self, Error> {
        let mut layout = PrivateLayout { offsets: heapless::Vec::new(), len: 0, window };
        let mut at = 0usize;
        for i in 0..model.tensor_count() {
            layout.offsets.push(at as u32).map_err(|_| Error::InvalidParameter("too many tensors for a private layout"))?;
            at = (at + layout.shape(model.tensor(i)).byte_len as usize).div_ceil(16) * 16;
        }
        layout.len = at;
        Ok(layout)
    }

    /// Arena bytes the layout needs.
    pub fn arena_len(&self) -> usize {
        self.len
    }

    /// Rows kept per tensor, when a window.
    pub fn window_rows(&self) -> Option<usize> {
        self.window.map(usize::from)
    }

    /// Tensor `t` as stored: its window's height and bytes, or itself.
    fn shape(&self, t: Tensor) -> Tensor {
        match self.window {
            Some(rows) if t.dims[1] > 0 => {
                let byte_len = t.byte_len / t.dims[1] as u32 * rows as u32;
                Tensor { dims: [t.dims[0], rows, t.dims[2]], byte_len, ..t }
            }
            _ => t,
        }
    }

    fn range(&self, t: &Tensor, i: usize) -> Range<usize> {
        let o = self.offsets[i] as usize;
        o..o + self.shape(*t).byte_len as usize
    }

    /// Fills every tensor with its zero point (int8) or zero: the rows above the image that
    /// a window starts with read as the convolutions' padding.
    pub fn clear(&self, model: &Model, arena: &mut [u8]) -> Result<(), Error> {
        if arena.len() < self.len {
            return Err(Error::ArenaTooSmall { needed: self.len, got: arena.len() });
        }
        for i in 0..model.tensor_count() {
            let t = model.tensor(i);
            arena[self.range(&t, i)].fill(Self::zero_byte(&t));
        }
        Ok(())
    }

    fn zero_byte(t: &Tensor) -> u8 {
        match t.dtype {
            DType::I8 => t.zero_point as i8 as u8,
            DType::F32 => 0,
        }
    }

    /// Moves every window one image row down: each channel's rows shift up by one, and the
    /// new last row (the next one to evaluate) reads as zero points until computed. A layout
    /// that keeps every row is left as it is.
    pub fn advance(&self, model: &Model, arena: &mut [u8]) -> Result<(), Error> {
        let Some(rows) = self.window_rows() else { return Ok(()) };
        if arena.len() < self.len {
            return Err(Error::ArenaTooSmall { needed: self.len, got: arena.len() });
        }
        for i in 0..model.tensor_count() {
            let t = model.tensor(i);
            let stored = self.shape(t);
            let row = stored.byte_len as usize / (stored.dims[0] as usize * rows).max(1);
            let start = self.offsets[i] as usize;
            for ch in 0..t.dims[0] as usize {
                let base = start + ch * rows * row;
                arena.copy_within(base + row..base + rows * row, base);
                arena[base + (rows - 1) * row..base + rows * row].fill(Self::zero_byte(&t));
            }
        }
        Ok(())
    }
}

/// Runs a model over an arena, through one kernel table.
#[derive(Debug, Clone)]
pub struct Interpreter<'m> {
    model: Model<'m>,
    table: &'static KernelTable,
    /// [`Interpreter::is_row_causal`], decided once (it reads every weight).
    row_causal: bool,
    /// Each op's packed constants, made once by the table's prepare step (std only: without
    /// an allocator the kernels read the weights as stored).
    #[cfg(feature = "std")]
    packs: std::sync::Arc<[Option<Packed>]>,
}

/// Splits `arena` into the output range (mutable) and read-only views of the rest, so the
/// inputs (validated disjoint from the output) can be borrowed alongside it.
fn split(arena: &mut [u8], out: Range<usize>) -> (&[u8], &mut [u8], &[u8], usize) {
    let (left, rest) = arena.split_at_mut(out.start);
    let (o, right) = rest.split_at_mut(out.end - out.start);
    (left, o, right, out.end)
}

fn view<'b>(left: &'b [u8], right: &'b [u8], right_start: usize, r: Range<usize>) -> &'b [u8] {
    if r.end <= left.len() {
        &left[r]
    } else {
        &right[r.start - right_start..r.end - right_start]
    }
}

fn geometry(x: &Tensor, y: &Tensor, kernel: [usize; 2], stride: usize, pad: usize, rows: (usize, usize)) -> ConvGeometry {
    ConvGeometry {
        input: [x.dims[0] as usize, x.dims[1] as usize, x.dims[2] as usize],
        output: [y.dims[0] as usize, y.dims[1] as usize, y.dims[2] as usize],
        kernel,
        stride,
        pad,
        input_zero_point: x.zero_point,
        rows: (rows.0, rows.1.min(y.dims[1] as usize)),
    }
}

/// Applies `f` to the `[r0, r1)` row band of every channel of a `(C, H, W)` tensor with
/// `width` bytes per element: the elementwise ops' part of a row-band evaluation.
fn for_rows(t: &Tensor, rows: (usize, usize), width: usize, mut f: impl FnMut(core::ops::Range<usize>)) {
    let (c, h, w) = (t.dims[0] as usize, t.dims[1] as usize, t.dims[2] as usize);
    let (r0, r1) = (rows.0.min(h), rows.1.min(h));
    for ch in 0..c {
        f(width * (ch * h * w + r0 * w)..width * (ch * h * w + r1 * w));
    }
}

impl<'m> Interpreter<'m> {
    /// An interpreter for `model` using `kernels`.
    pub fn new(model: Model<'m>, kernels: Kernels) -> Self {
        Self::with_table(model, kernels.table())
    }

    /// An interpreter for `model` using the kernels of `table`; the prepare step (the table's
    /// weight packing, the row-causality check) runs here, once.
    pub fn with_table(model: Model<'m>, table: &'static KernelTable) -> Self {
        let mut interp = Interpreter {
            model,
            table,
            row_causal: false,
            #[cfg(feature = "std")]
            packs: std::sync::Arc::from([]),
        };
        interp.row_causal = interp.check_row_causal();
        #[cfg(feature = "std")]
        {
            interp.packs = (0..model.op_count()).map(|i| interp.prepare(i)).collect();
        }
        interp
    }

    /// The kernel table this interpreter runs.
    pub fn table(&self) -> &'static KernelTable {
        self.table
    }

    /// The table's packing of op `i`'s constants, if it packs that op.
    #[cfg(feature = "std")]
    fn prepare(&self, i: usize) -> Option<Packed> {
        let m = &self.model;
        let op = m.op(i);
        if !op.code.has_weights() {
            return None;
        }
        let (x, y) = (m.tensor(op.input0 as usize), m.tensor(op.output as usize));
        let co = if op.code == OpCode::FullyConnected { y.len() } else { y.dims[0] as usize };
        let g = geometry(&x, &y, [op.kernel_h as usize, op.kernel_w as usize], op.stride as usize, op.pad as usize, (0, usize::MAX));
        let layer = match op.code {
            OpCode::Conv2d => kernels::Layer::Conv(g),
            OpCode::ConvTranspose2d => kernels::Layer::ConvTranspose(g),
            _ => kernels::Layer::Dense { inputs: x.len(), outputs: co, input_zero_point: x.zero_point },
        };
        (self.table.pack)(&layer, m.data(op.weights, op.weights_len as usize), m.data(op.bias, 4 * co))
    }

    /// Op `i`'s packed constants, if the prepare step made some.
    #[inline]
    fn packed(&self, _i: usize) -> Option<&Packed> {
        #[cfg(feature = "std")]
        return self.packs.get(_i).and_then(Option::as_ref);
        #[cfg(not(feature = "std"))]
        None
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// Multiply-accumulates of op `i`: `(nominal, executed)`, where executed leaves out the
    /// kernel taps that are zero for every channel (the masked part of a PixelCNN
    /// convolution, which the optimized kernels skip). 0 for ops without weights.
    pub fn op_macs(&self, i: usize) -> (u64, u64) {
        let m = &self.model;
        let op = m.op(i);
        let (x, y) = (m.tensor(op.input0 as usize), m.tensor(op.output as usize));
        let (xn, yn) = (x.len() as u64, y.len() as u64);
        match op.code {
            OpCode::FullyConnected => (xn * yn, xn * yn),
            OpCode::Conv2d | OpCode::ConvTranspose2d => {
                let taps = op.kernel_h as usize * op.kernel_w as usize;
                let (ci, co) = (x.dims[0] as usize, y.dims[0] as usize);
                let per_tap = if op.code == OpCode::Conv2d { yn * ci as u64 } else { xn * co as u64 };
                let mut live = [0u8; 256];
                let weights = m.data(op.weights, op.weights_len as usize);
                let n_live = if taps <= live.len() { kernels::live_taps(weights, ci * co, taps, &mut live) } else { taps };
                (per_tap * taps as u64, per_tap * n_live as u64)
            }
            _ => (0, 0),
        }
    }

    /// Bytes of arena the model needs (ask before allocating).
    pub fn arena_len(&self) -> usize {
        self.model.arena_len()
    }

    fn check_arena(&self, arena: &[u8]) -> Result<(), Error> {
        if arena.len() < self.model.arena_len() {
            return Err(Error::ArenaTooSmall { needed: self.model.arena_len(), got: arena.len() });
        }
        Ok(())
    }

    /// Writes an 8-bit image into the int8 input tensor: `q = p − 128` (the input is
    /// quantized with scale 1/127.5 and zero point 0, see `edgegen_runtime::model`).
    pub fn set_input_image(&self, arena: &mut [u8], pixels: &[u8]) -> Result<(), Error> {
        self.check_arena(arena)?;
        let t = self.model.input();
        if t.dtype != DType::I8 || t.len() != pixels.len() {
            return Err(Error::LengthMismatch { expected: t.len(), got: pixels.len() });
        }
        for (o, &p) in arena[t.range()].iter_mut().zip(pixels) {
            *o = p ^ 0x80;
        }
        Ok(())
    }

    /// Writes f32 values into the f32 input tensor (latent vectors).
    pub fn set_input_f32(&self, arena: &mut [u8], values: &[f32]) -> Result<(), Error> {
        self.check_arena(arena)?;
        let t = self.model.input();
        if t.dtype != DType::F32 || t.len() != values.len() {
            return Err(Error::LengthMismatch { expected: t.len(), got: values.len() });
        }
        for (o, v) in arena[t.range()].chunks_exact_mut(4).zip(values) {
            o.copy_from_slice(&v.to_le_bytes());
        }
        Ok(())
    }

    /// Reads output `which` (an f32 tensor) into `out`.
    pub fn output_f32(&self, arena: &[u8], which: usize, out: &mut [f32]) -> Result<(), Error> {
        let Some(&idx) = self.model.outputs().get(which) else {
            return Err(Error::InvalidParameter("no such output"));
        };
        let t = self.model.tensor(idx as usize);
        if t.dtype != DType::F32 || t.len() != out.len() {
            return Err(Error::LengthMismatch { expected: t.len(), got: out.len() });
        }
        self.check_arena(arena)?;
        for (o, b) in out.iter_mut().zip(arena[t.range()].chunks_exact(4)) {
            *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
    }

    /// Runs every op.
    pub fn invoke(&self, arena: &mut [u8]) -> Result<(), Error> {
        self.invoke_ops(arena, 0..self.model.op_count())
    }

    /// Runs ops `ops` (in order); for callers that re-run only part of a graph.
    pub fn invoke_ops(&self, arena: &mut [u8], ops: Range<usize>) -> Result<(), Error> {
        self.check_arena(arena)?;
        if ops.end > self.model.op_count() {
            return Err(Error::InvalidParameter("op range past the end of the model"));
        }
        for i in ops {
            self.run_op(arena, i, (0, usize::MAX), None);
        }
        Ok(())
    }

    /// Runs every op with tensors at the offsets of `layout` instead of the planned ones.
    pub fn invoke_in(&self, arena: &mut [u8], layout: &PrivateLayout) -> Result<(), Error> {
        if arena.len() < layout.arena_len() {
            return Err(Error::ArenaTooSmall { needed: layout.arena_len(), got: arena.len() });
        }
        for i in 0..self.model.op_count() {
            self.run_op(arena, i, (0, usize::MAX), Some(layout));
        }
        Ok(())
    }

    /// The bytes of tensor `i` under `layout`.
    pub fn tensor_bytes<'a>(&self, arena: &'a [u8], layout: &PrivateLayout, i: usize) -> &'a [u8] {
        &arena[layout.range(&self.model.tensor(i), i)]
    }

    /// The bytes of tensor `i` under `layout`, mutable (to edit the input between bands).
    pub fn tensor_bytes_mut<'a>(&self, arena: &'a mut [u8], layout: &PrivateLayout, i: usize) -> &'a mut [u8] {
        &mut arena[layout.range(&self.model.tensor(i), i)]
    }

    /// True when every output row of every op depends only on input rows at or above it,
    /// so [`Interpreter::invoke_rows`] is exact: stride-1 convolutions (and elementwise ops)
    /// over equally tall maps whose kernel rows below the centre are all zero (masked
    /// convolutions). Checked against the weights themselves.
    pub fn is_row_causal(&self) -> bool {
        self.row_causal
    }

    fn check_row_causal(&self) -> bool {
        let m = &self.model;
        let h = m.input().dims[1];
        (0..m.op_count()).all(|i| {
            let op = m.op(i);
            let y = m.tensor(op.output as usize);
            if y.dims[1] != h || m.tensor(op.input0 as usize).dims[1] != h {
                return false;
            }
            match op.code {
                OpCode::Conv2d => {
                    let (kh, kw) = (op.kernel_h as usize, op.kernel_w as usize);
                    if op.stride != 1 || op.pad as usize != kh / 2 || kh % 2 == 0 {
                        return false;
                    }
                    let w = m.data(op.weights, op.weights_len as usize);
                    w.chunks(kh * kw).all(|k| k[(kh / 2 + 1) * kw..].iter().all(|&v| v == 0))
                }
                OpCode::Add | OpCode::Relu => true,
                _ => false,
            }
        })
    }

    /// Recomputes only output rows `rows` of every op (for a row-causal model, see
    /// [`Interpreter::is_row_causal`]): after the input changes only in rows ≥ `rows.start`,
    /// and all rows above were computed before, the outputs in `rows` are exactly what a full
    /// [`Interpreter::invoke`] gives. The cost is the band's share of a full pass.
    ///
    /// Tensors live at `layout`'s private offsets, so the rows above the band are still
    /// there from earlier calls (the planned arena reuses memory between layers).
    pub fn invoke_rows(&self, arena: &mut [u8], layout: &PrivateLayout, rows: core::ops::Range<usize>) -> Result<(), Error> {
        if arena.len() < layout.arena_len() {
            return Err(Error::ArenaTooSmall { needed: layout.arena_len(), got: arena.len() });
        }
        if !self.is_row_causal() {
            return Err(Error::InvalidParameter("row-band evaluation needs a row-causal model"));
        }
        for i in 0..self.model.op_count() {
            self.run_op(arena, i, (rows.start, rows.end), Some(layout));
        }
        Ok(())
    }

    fn run_op(&self, arena: &mut [u8], i: usize, rows: (usize, usize), layout: Option<&PrivateLayout>) {
        let m = &self.model;
        let op = m.op(i);
        let shape = |t: Tensor| layout.map_or(t, |l| l.shape(t));
        let x = shape(m.tensor(op.input0 as usize));
        let y = shape(m.tensor(op.output as usize));
        let range = |t: &Tensor, idx: u16| layout.map_or_else(|| t.range(), |l| l.range(t, idx as usize));
        let (left, out, right, right_start) = split(arena, range(&y, op.output));
        let input = view(left, right, right_start, range(&x, op.input0));
        let table = self.table;
        match op.code {
            OpCode::Conv2d | OpCode::ConvTranspose2d | OpCode::FullyConnected => {
                let co = if op.code == OpCode::FullyConnected { y.len() } else { y.dims[0] as usize };
                let weights = m.data(op.weights, op.weights_len as usize);
                let bias = m.data(op.bias, 4 * co);
                let quant = m.data(op.quant, op.quant_len as usize);
                let spec = match y.dtype {
                    DType::I8 => OutSpec::Int8 { zero_point: y.zero_point, act_min: op.act_min, act_max: op.act_max, quant },
                    DType::F32 => OutSpec::F32 { quant },
                };
                let g = geometry(&x, &y, [op.kernel_h as usize, op.kernel_w as usize], op.stride as usize, op.pad as usize, rows);
                let packed = self.packed(i);
                match op.code {
                    OpCode::Conv2d => (table.conv2d)(&g, input, weights, bias, &spec, out, packed),
                    OpCode::ConvTranspose2d => (table.conv_transpose2d)(&g, input, weights, bias, &spec, out, packed),
                    _ => (table.fully_connected)(input, x.zero_point, weights, bias, co, &spec, out, packed),
                }
            }
            OpCode::Add => {
                debug_assert!(op.input1 != NO_TENSOR);
                let x2 = shape(m.tensor(op.input1 as usize));
                let other = view(left, right, right_start, range(&x2, op.input1));
                let q = m.data(op.quant, 28);
                let p = AddParams {
                    left_shift: i32_at(q, 0),
                    zero_points: [x.zero_point, x2.zero_point],
                    inputs: [(i32_at(q, 1), i32_at(q, 2)), (i32_at(q, 3), i32_at(q, 4))],
                    output: (i32_at(q, 5), i32_at(q, 6)),
                    output_zero_point: y.zero_point,
                    act: (op.act_min, op.act_max),
                };
                let add = table.add;
                if rows == (0, usize::MAX) {
                    add(&p, input, other, out)
                } else {
                    for_rows(&y, rows, 1, |r| add(&p, &input[r.clone()], &other[r.clone()], &mut out[r]));
                }
            }
            OpCode::Relu => {
                let relu = table.relu;
                if rows == (0, usize::MAX) {
                    relu(x.zero_point, input, out)
                } else {
                    for_rows(&y, rows, 1, |r| relu(x.zero_point, &input[r.clone()], &mut out[r]));
                }
            }
            OpCode::Tanh => kernels::reference::tanh(input, out),
            OpCode::Quantize => kernels::reference::quantize(y.scale, y.zero_point, input, out),
        }
    }
}
