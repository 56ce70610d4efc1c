//! Helpers for `card.json`, the measured figures next to every published model.

use serde_json::{json, Value};
use std::path::Path;

/// Rounds a figure to 4 decimals for the card.
pub fn r4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// `{"path": name, "bytes": size}` for a file in `dir`.
pub fn file_entry(dir: &Path, name: &str) -> Value {
    json!({"path": name, "bytes": std::fs::metadata(dir.join(name)).map(|m| m.len()).unwrap_or(0)})
}

/// The per-epoch history of a run as card entries.
pub fn history(state: &crate::checkpoint::TrainState, train_key: &str, val_key: &str) -> Value {
    Value::Array(
        state
            .history
            .iter()
            .map(|(e, t, v)| {
                let mut m = serde_json::Map::new();
                m.insert("epoch".into(), json!(e));
                m.insert(train_key.into(), json!(r4(*t)));
                m.insert(val_key.into(), json!(r4(*v)));
                Value::Object(m)
            })
            .collect(),
    )
}

/// Writes `dir/card.json` atomically.
pub fn write(dir: &Path, card: &Value) -> anyhow::Result<()> {
    crate::data::write_atomic(&dir.join("card.json"), serde_json::to_string_pretty(card)?.as_bytes())
}

/// Saves a grid of 28×28 images as a PNG, `cols` wide, enlarged `scale` times.
pub fn save_grid(path: &Path, images: &[u8], cols: usize, scale: usize) -> anyhow::Result<()> {
    let tiles: Vec<&[u8]> = images.chunks(784).collect();
    let (w, h, g) = crate::imageio::grid(&tiles, 28, cols, 2, 255);
    let (w, h, g) = crate::imageio::upscale(w, h, &g, scale);
    crate::imageio::write_gray_png(path, w, h, &g)
}
