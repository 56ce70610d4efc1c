//! Golden vectors of compiled models (`golden/int8/<part>.bin`), written by the trainer with
//! the reference kernels and read by every test that runs the model: host, aarch64 and the
//! firmware. Layout (little-endian): `b"EGGV"`, `u32` version (1), `u32` set count, `u32`
//! input bytes, `u32` output bytes, then per set its input (8-bit pixels or f32 latents) and
//! its outputs (f32, all outputs concatenated). Version 2 is the same with each set's outputs
//! replaced by their CRC-32 (4 bytes, little-endian): the firmware embeds that form, which
//! checks the same bits in a fraction of the flash.

use crate::Error;

/// File magic.
pub const MAGIC: [u8; 4] = *b"EGGV";
/// Header length: magic and four words.
pub const HEADER_LEN: usize = 20;
/// Version whose sets hold the outputs in full.
pub const VERSION_FULL: u32 = 1;
/// Version whose sets hold the outputs' CRC-32.
pub const VERSION_DIGEST: u32 = 2;

/// Encodes golden sets: `sets` yields (input bytes, output bytes); every input and every
/// output must have the same length as the first. `digest` writes version 2 (each set's
/// outputs as their CRC-32), else version 1.
#[cfg(feature = "std")]
pub fn encode<'s>(sets: impl IntoIterator<Item = (&'s [u8], &'s [u8])>, digest: bool) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    let (mut count, mut lens) = (0u32, None);
    for (input, output) in sets {
        if *lens.get_or_insert((input.len(), output.len())) != (input.len(), output.len()) {
            return Err(Error::InvalidParameter("golden sets of different lengths"));
        }
        body.extend_from_slice(input);
        if digest {
            body.extend_from_slice(&crate::crc32::crc32(output).to_le_bytes());
        } else {
            body.extend_from_slice(output);
        }
        count += 1;
    }
    let (input_len, output_len) = lens.unwrap_or((0, 0));
    let version = if digest { VERSION_DIGEST } else { VERSION_FULL };
    let mut out = MAGIC.to_vec();
    for word in [version, count, input_len as u32, if digest { 4 } else { output_len as u32 }] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.extend_from_slice(&body);
    Ok(out)
}

/// A parsed golden file, read in place.
#[derive(Debug, Clone, Copy)]
pub struct Golden<'a> {
    bytes: &'a [u8],
    count: usize,
    input_len: usize,
    output_len: usize,
    /// Version 2: each set's expected outputs are a CRC-32 of their bytes.
    digest: bool,
}

impl<'a> Golden<'a> {
    /// Parses and checks a golden file.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated { needed: HEADER_LEN as u32, got: bytes.len() as u32 });
        }
        if bytes[..4] != MAGIC {
            return Err(Error::BadMagic);
        }
        let word = |i: usize| u32::from_le_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize;
        if word(0) != 1 && word(0) != 2 {
            return Err(Error::UnsupportedVersion { found: word(0).min(u16::MAX as usize) as u16, supported: 2 });
        }
        let (count, input_len, output_len) = (word(1), word(2), word(3));
        let digest = word(0) == 2;
        if digest && output_len != 4 {
            return Err(Error::LengthMismatch { expected: 4, got: output_len });
        }
        let needed = input_len.checked_add(output_len).and_then(|s| s.checked_mul(count)).and_then(|s| s.checked_add(20));
        if needed != Some(bytes.len()) {
            return Err(Error::Truncated { needed: needed.unwrap_or(usize::MAX) as u32, got: bytes.len() as u32 });
        }
        Ok(Golden { bytes, count, input_len, output_len, digest })
    }

    /// Number of sets.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the file holds no set.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// True for version 2: each set's outputs are stored as their CRC-32.
    pub fn is_digest(&self) -> bool {
        self.digest
    }

    /// The same sets in version 2 (each set's outputs as their CRC-32; a version-2 file's
    /// digests are copied), keeping the sets in `sets`: the form the firmware embeds.
    #[cfg(feature = "std")]
    pub fn to_digest(&self, sets: core::ops::Range<usize>) -> Result<Vec<u8>, Error> {
        if sets.end > self.count {
            return Err(Error::InvalidParameter("golden set range past the end"));
        }
        if self.digest {
            let per = self.input_len + self.output_len;
            let mut out = self.bytes[..HEADER_LEN].to_vec();
            out[8..12].copy_from_slice(&(sets.len() as u32).to_le_bytes());
            out.extend_from_slice(&self.bytes[HEADER_LEN + sets.start * per..HEADER_LEN + sets.end * per]);
            return Ok(out);
        }
        encode(sets.map(|i| self.set(i)), true)
    }

    /// Set `i`: (input bytes, expected output bytes, or their CRC-32 in version 2).
    pub fn set(&self, i: usize) -> (&'a [u8], &'a [u8]) {
        let at = HEADER_LEN + i * (self.input_len + self.output_len);
        (&self.bytes[at..at + self.input_len], &self.bytes[at + self.input_len..at + self.input_len + self.output_len])
    }

    /// Runs set `i` through `interp` (the input written as pixels or as f32 latents, as the
    /// model takes it) and tells whether every output byte equals the stored one (version 2:
    /// whether the outputs' CRC-32 equals the stored one).
    pub fn check(&self, interp: &crate::interpreter::Interpreter, arena: &mut [u8], i: usize) -> Result<bool, Error> {
        let (input, expected) = self.set(i);
        let model = interp.model();
        if model.input().dtype == crate::model::DType::I8 {
            interp.set_input_image(arena, input)?;
        } else {
            let t = model.input();
            if t.byte_len as usize != input.len() {
                return Err(Error::LengthMismatch { expected: t.byte_len as usize, got: input.len() });
            }
            arena[t.range()].copy_from_slice(input);
        }
        interp.invoke(arena)?;
        if self.digest {
            let crc = model.outputs().iter().fold(!0, |crc, &o| crate::crc32::crc32_update(crc, &arena[model.tensor(o as usize).range()]));
            return Ok((!crc).to_le_bytes() == expected[..4]);
        }
        let mut at = 0;
        for &o in model.outputs() {
            let r = model.tensor(o as usize).range();
            let n = r.len();
            if at + n > expected.len() || arena[r] != expected[at..at + n] {
                return Ok(false);
            }
            at += n;
        }
        Ok(at == expected.len())
    }

    /// How many sets `interp` reproduces bit for bit (all of them, for a correct engine).
    pub fn passed(&self, interp: &crate::interpreter::Interpreter, arena: &mut [u8]) -> Result<usize, Error> {
        let mut n = 0;
        for i in 0..self.count {
            n += self.check(interp, arena, i)? as usize;
        }
        Ok(n)
    }
}
