//! Progress bars for long work (training, evaluation), hidden when not wanted.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps labelled `label`; hidden when `show` is false.
pub fn bar(show: bool, len: u64, label: &str) -> ProgressBar {
    if !show || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}

/// Prints a line above the bar, or to stderr when the bar is hidden (logs, CI).
pub fn println(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}
