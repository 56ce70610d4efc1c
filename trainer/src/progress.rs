//! Progress for long work (training, evaluation): a bar on a terminal, and on a log (a pipe,
//! a file, CI) a plain line every [`LOG_EVERY`] with the same figures, plus one when the phase
//! ends. Hidden only when the caller asks (`--quiet`).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seconds between two progress lines in a log.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Progress drawn as log lines: indicatif renders the bar's template and this writes the
/// rendered line to stderr when [`LOG_EVERY`] has passed since the last one (the first line
/// at once), ignoring the cursor movements a terminal bar would make.
#[derive(Debug)]
struct LogLines {
    last: Mutex<Option<Instant>>,
}

impl LogLines {
    fn emit(&self, s: &str) -> std::io::Result<()> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(());
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            *last = Some(Instant::now());
            eprintln!("{s}");
        }
        Ok(())
    }
}

impl TermLike for LogLines {
    fn width(&self) -> u16 {
        200
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.emit(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.emit(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logging(bar: &ProgressBar) -> bool {
    !bar.is_hidden() && !std::io::stderr().is_terminal()
}

/// A bar of `len` steps labelled `label`: drawn on a terminal, logged as lines otherwise,
/// hidden when `show` is false.
pub fn bar(show: bool, len: u64, label: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar
    } else {
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(LogLines { last: Mutex::new(None) }), 1);
        let bar = ProgressBar::with_draw_target(Some(len), target);
        bar.set_style(
            ProgressStyle::with_template("{prefix}: {pos}/{len} ({percent}%) after {elapsed}, about {eta} left {msg}")
                .expect("static template"),
        );
        bar
    };
    bar.set_prefix(label.to_string());
    bar
}

/// Ends a bar: clears it from a terminal, and in a log writes the phase's last line (how many
/// steps in how long).
pub fn finish(bar: &ProgressBar) {
    if logging(bar) {
        eprintln!(
            "{}: done, {}/{} in {:.1} s",
            bar.prefix(),
            bar.position(),
            bar.length().unwrap_or(bar.position()),
            bar.elapsed().as_secs_f64()
        );
    }
    bar.finish_and_clear();
}

/// Prints a line above the bar, or to stderr when there is no bar on a terminal.
pub fn println(bar: &ProgressBar, line: String) {
    if bar.is_hidden() || logging(bar) {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}
