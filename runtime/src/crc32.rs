//! CRC-32 (IEEE 802.3, reflected, as zlib computes it): the model file's checksum and the
//! golden files' output digests, on every target.

/// CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    !crc32_update(!0, bytes)
}

/// Feeds `bytes` to a running CRC-32 register (start with `!0`, finish with `!`): the CRC of
/// data that arrives in pieces.
pub fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    for &b in bytes {
        crc = TABLE[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_zlib_and_composes() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926, "zlib's check value");
        let bytes = b"edgegen golden vectors";
        assert_eq!(!crc32_update(crc32_update(!0, &bytes[..7]), &bytes[7..]), crc32(bytes));
    }
}
