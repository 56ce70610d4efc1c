//! `edgegen export c-array`: a model file as C source, `const unsigned char NAME[]` (16-byte
//! aligned, as the int8 engine and TFLite Micro both want their model data) and
//! `const unsigned int NAME_len`.

use anyhow::{bail, ensure, Context, Result};
use std::fmt::Write as _;
use std::path::Path;

/// A C identifier from a file name: `model.egm` → `model_egm`; other characters become `_`,
/// and a leading digit gets a `_` in front.
pub fn identifier(file: &Path) -> Result<String> {
    let stem = file.file_name().and_then(|n| n.to_str()).with_context(|| format!("{}: not a file name", file.display()))?;
    let mut id: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if id.starts_with(|c: char| c.is_ascii_digit()) {
        id.insert(0, '_');
    }
    Ok(id)
}

/// Whether `name` is a C identifier (and not one of C's keywords).
fn valid_identifier(name: &str) -> bool {
    const KEYWORDS: [&str; 12] =
        ["auto", "char", "const", "int", "long", "short", "static", "struct", "unsigned", "void", "volatile", "return"];
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&name)
}

/// The C source of `bytes` as array `name` (`what`: a line saying where it came from).
pub fn source(bytes: &[u8], name: &str, what: &str) -> String {
    let mut s = String::with_capacity(bytes.len() * 6 + 512);
    let _ = writeln!(s, "/* {what}: {} bytes. Written by `edgegen export c-array`. */", bytes.len());
    let _ = writeln!(s, "#include <stdalign.h>\n");
    let _ = writeln!(s, "alignas(16) const unsigned char {name}[] = {{");
    for chunk in bytes.chunks(12) {
        s.push_str("   ");
        for b in chunk {
            let _ = write!(s, " 0x{b:02x},");
        }
        s.push('\n');
    }
    let _ = writeln!(s, "}};");
    let _ = writeln!(s, "const unsigned int {name}_len = {};", bytes.len());
    s
}

/// Writes `file` (a compiled `.egm` or a `.tflite`, checked to be one) as C source `out`
/// (atomically). Returns the byte count.
pub fn write(file: &Path, out: &Path, name: &str) -> Result<usize> {
    ensure!(valid_identifier(name), "--name {name:?} is not a C identifier (letters, digits and _, not starting with a digit)");
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let what = if bytes.len() >= 8 && &bytes[4..8] == b"TFL3" {
        "a TFLite flatbuffer".to_string()
    } else {
        match edgegen_runtime::model::Model::from_bytes(&bytes) {
            Ok(m) => format!("edgegen model file {:?}", m.metadata().name_str()),
            Err(e) => bail!("{}: neither a TFLite file (no TFL3 identifier) nor a valid edgegen model file ({e})", file.display()),
        }
    };
    crate::data::write_atomic(out, source(&bytes, name, &what).as_bytes())?;
    Ok(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_source() {
        assert_eq!(identifier(Path::new("models/x/model.egm")).unwrap(), "model_egm");
        assert_eq!(identifier(Path::new("3d-net.tflite")).unwrap(), "_3d_net_tflite");
        assert!(valid_identifier("model_egm") && !valid_identifier("3x") && !valid_identifier("a-b") && !valid_identifier("int"));
        let c = source(&[1, 2, 255], "m", "test");
        assert!(c.contains("alignas(16) const unsigned char m[] = {") && c.contains(" 0x01, 0x02, 0xff,") && c.contains("m_len = 3;"));
    }
}
