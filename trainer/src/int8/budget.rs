//! Does a compiled model fit a device? The flash it takes (its model files) and the RAM it
//! needs (the largest arena of its parts, plus the guard's per-value likelihood buffers for a
//! PixelCNN), against `--ram` / `--flash` or a named board's memory.

use anyhow::{bail, Context, Result};

/// A device's memory for models: bytes of RAM for arenas and of flash for model files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// What the numbers are (a board's name, or "--ram/--flash").
    pub name: String,
    /// RAM for the arena, bytes.
    pub ram: Option<u64>,
    /// Flash for the model files, bytes.
    pub flash: Option<u64>,
}

/// Boards edgegen knows: name, SRAM bytes, flash bytes, and what they are. The whole memory
/// is the budget; firmware code, stack and buffers need their share of it too.
pub const BOARDS: [(&str, u64, u64, &str); 5] = [
    ("nucleo-l4r5zi", 640 * 1024, 2048 * 1024, "ST NUCLEO-L4R5ZI, Cortex-M4F, MLPerf Tiny's reference board"),
    ("stm32f407", 192 * 1024, 1024 * 1024, "STM32F407 (Discovery), Cortex-M4F"),
    ("alif-e7-hp", 1024 * 1024, 5632 * 1024, "Alif Ensemble E7 high-performance core, Cortex-M55: 1 MiB DTCM, 5.5 MiB MRAM"),
    ("mps2-an386", 4096 * 1024, 4096 * 1024, "QEMU mps2-an386, Cortex-M4F (the tested profile)"),
    ("mps3-an547", 4096 * 1024, 2048 * 1024, "QEMU mps3-an547, Cortex-M55 (the tested profile; models in its QSPI flash)"),
];

/// Parses a byte count: `655360`, `640K`/`640KiB` (×1024), `2M`/`2MiB` (×1024²), `512KB`
/// (×1000), `2MB` (×1000²).
pub fn parse_bytes(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().with_context(|| format!("{s}: expected a byte count such as 655360, 640K or 2M"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1024,
        "m" | "mib" => 1024 * 1024,
        "kb" => 1000,
        "mb" => 1_000_000,
        other => bail!("{s}: unknown unit {other:?} (use K, KiB, M, MiB, KB or MB)"),
    };
    n.checked_mul(mult).with_context(|| format!("{s}: too large"))
}

impl Budget {
    /// The budget of `--board`, `--ram` and `--flash` (explicit numbers override the board's);
    /// `None` when none is given.
    pub fn from_args(board: Option<&str>, ram: Option<&str>, flash: Option<&str>) -> Result<Option<Budget>> {
        let mut b = match board {
            Some(name) => {
                let Some(&(n, r, f, _)) = BOARDS.iter().find(|b| b.0.eq_ignore_ascii_case(name)) else {
                    let known: Vec<&str> = BOARDS.iter().map(|b| b.0).collect();
                    bail!("--board {name}: unknown board (known: {}); or give --ram and --flash", known.join(", "));
                };
                Budget { name: n.to_string(), ram: Some(r), flash: Some(f) }
            }
            None if ram.is_none() && flash.is_none() => return Ok(None),
            None => Budget { name: "--ram/--flash".into(), ram: None, flash: None },
        };
        if let Some(r) = ram {
            b.ram = Some(parse_bytes(r).context("--ram")?);
        }
        if let Some(f) = flash {
            b.flash = Some(parse_bytes(f).context("--flash")?);
        }
        Ok(Some(b))
    }

    /// Checks a model needing `ram` bytes of RAM and `flash` bytes of flash (`what` says where
    /// the numbers come from); the error says by how much it does not fit.
    pub fn check(&self, ram: u64, flash: u64, what: &str) -> Result<String> {
        let mut over = Vec::new();
        if let Some(r) = self.ram.filter(|&r| ram > r) {
            over.push(format!("RAM: needs {ram} B, {} has {r} B ({} B over)", self.name, ram - r));
        }
        if let Some(f) = self.flash.filter(|&f| flash > f) {
            over.push(format!("flash: needs {flash} B, {} has {f} B ({} B over)", self.name, flash - f));
        }
        if !over.is_empty() {
            bail!("the model does not fit {}: {}. {what}. Nothing was written; make the model smaller (fewer --features, --inner, --blocks) or choose a larger device", self.name, over.join("; "));
        }
        let pct = |need: u64, have: Option<u64>| {
            have.map_or("no limit given".to_string(), |h| format!("{:.1}% of {h} B", 100.0 * need as f64 / h as f64))
        };
        Ok(format!("fits {}: RAM {ram} B ({}), flash {flash} B ({})", self.name, pct(ram, self.ram), pct(flash, self.flash)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_and_boards() {
        assert_eq!(parse_bytes("655360").unwrap(), 655_360);
        assert_eq!(parse_bytes("640K").unwrap(), 655_360);
        assert_eq!(parse_bytes("640KiB").unwrap(), 655_360);
        assert_eq!(parse_bytes("2M").unwrap(), 2 * 1024 * 1024);
        assert_eq!(parse_bytes("512KB").unwrap(), 512_000);
        assert!(parse_bytes("lots").is_err() && parse_bytes("12 parsecs").is_err() && parse_bytes("99999999999999999999M").is_err());
        let b = Budget::from_args(Some("NUCLEO-L4R5ZI"), None, Some("1M")).unwrap().unwrap();
        assert_eq!((b.ram, b.flash), (Some(640 * 1024), Some(1024 * 1024)));
        assert!(Budget::from_args(Some("pdp-11"), None, None).unwrap_err().to_string().contains("known: nucleo-l4r5zi"));
        assert_eq!(Budget::from_args(None, None, None).unwrap(), None);
    }

    #[test]
    fn check_says_by_how_much() {
        let b = Budget { name: "stm32f407".into(), ram: Some(1000), flash: Some(5000) };
        assert!(b.check(1000, 5000, "x").unwrap().contains("100.0% of 1000 B"));
        let e = b.check(1500, 4000, "arena of model.egm").unwrap_err().to_string();
        assert!(e.contains("needs 1500 B") && e.contains("500 B over") && e.contains("arena of model.egm") && !e.contains("flash:"), "{e}");
        let e = b.check(10, 6000, "x").unwrap_err().to_string();
        assert!(e.contains("flash: needs 6000 B") && e.contains("1000 B over"), "{e}");
    }
}
