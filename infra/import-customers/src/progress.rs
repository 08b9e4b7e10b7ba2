//! Progress on stderr: an indicatif bar when stderr is a terminal, else a plain line per
//! answered request (which scripts and tests read).

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{Progress, Summary, thousands};

/// `[#############.................]  45%  4,500/10,000 rows  created 3,980 updated 500 ...`
const TEMPLATE: &str = "[{bar:30}] {percent:>3}%  {human_pos}/{human_len} rows  {msg}";
/// How often the bar is drawn again even without news.
const TICK: Duration = Duration::from_millis(200);

pub(crate) enum ProgressView<'a> {
    /// On a terminal: the bar, made at the first news (nothing is drawn before).
    Bar {
        target: Option<ProgressDrawTarget>,
        bar: Option<ProgressBar>,
    },
    Lines(&'a mut dyn Write),
}

impl<'a> ProgressView<'a> {
    /// A bar on the process's stderr when `terminal` (indicatif draws nothing there
    /// unless it is one), else lines on `err`.
    pub(crate) fn new(err: &'a mut dyn Write, terminal: bool) -> Self {
        match terminal {
            true => Self::bar(ProgressDrawTarget::stderr()),
            false => Self::Lines(err),
        }
    }

    pub(crate) fn bar(target: ProgressDrawTarget) -> Self {
        Self::Bar {
            target: Some(target),
            bar: None,
        }
    }

    pub(crate) fn show(&mut self, progress: &Progress) {
        let summary = progress.summary;
        let (done, total) = (summary.done().min(summary.rows), summary.rows);
        match self {
            Self::Bar { target, bar } => match bar {
                Some(bar) => {
                    // Drawn once, with the counts (the ticker draws what a burst of
                    // answers left undrawn).
                    bar.update(|state| {
                        state.set_len(total);
                        state.set_pos(done);
                    });
                    bar.set_message(counts(summary));
                }
                None => {
                    let style = ProgressStyle::with_template(TEMPLATE)
                        .expect("the template is valid")
                        .progress_chars("#.");
                    let target = target.take().unwrap_or_else(ProgressDrawTarget::hidden);
                    let new = ProgressBar::with_draw_target(Some(total), target)
                        .with_style(style)
                        .with_position(done)
                        .with_message(counts(summary));
                    new.enable_steady_tick(TICK);
                    *bar = Some(new);
                }
            },
            Self::Lines(err) if progress.request > 0 => {
                let lines = match progress.lines {
                    Some((first, last)) => format!(" (lines {first}-{last})"),
                    None => String::new(),
                };
                let rest = if progress.rest { ", the rest" } else { "" };
                let stopped = match progress.stopped_at {
                    Some(line) => format!(
                        "; the server ran out of time at line {line}, sending the rest again"
                    ),
                    None => String::new(),
                };
                let _ = writeln!(
                    err,
                    "request {}/{}{rest}{lines}: {}/{} rows  {}{stopped}",
                    progress.request,
                    progress.requests,
                    thousands(done),
                    thousands(total),
                    counts(summary)
                );
                let _ = err.flush();
            }
            Self::Lines(_) => {}
        }
    }

    /// Leaves the bar drawn with the last news; the terminal's next output goes on the
    /// next line (indicatif fills the bar's line to the terminal's width).
    pub(crate) fn finish(&mut self) {
        if let Self::Bar { bar: Some(bar), .. } = self {
            bar.abandon();
        }
    }
}

pub(crate) fn counts(summary: &Summary) -> String {
    format!(
        "created {} updated {} unchanged {} failed {}",
        thousands(summary.created),
        thousands(summary.updated),
        thousands(summary.unchanged),
        thousands(summary.failed.len() as u64)
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use indicatif::TermLike;

    use super::*;
    use crate::FailedRow;

    /// A terminal that keeps what is written on it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl TermLike for Screen {
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
        fn write_line(&self, line: &str) -> std::io::Result<()> {
            self.write_str(&format!("{line}\n"))
        }
        fn write_str(&self, text: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(text);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.write_str("\r")
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn progress_output(view: &mut ProgressView) {
        let summary = Summary {
            rows: 10_000,
            created: 3_980,
            updated: 500,
            unchanged: 10,
            failed: vec![
                FailedRow {
                    line: 2,
                    id: None,
                    errors: vec![]
                };
                10
            ],
            ..Summary::default()
        };
        for request in [0, 1] {
            view.show(&Progress {
                summary: &summary,
                request,
                requests: 2,
                lines: Some((2, 4_501)),
                rest: false,
                stopped_at: Some(4_400),
            });
        }
        view.finish();
    }

    #[test]
    fn progress_is_a_bar_on_a_terminal_and_lines_elsewhere() {
        let screen = Screen::default();
        let mut view = ProgressView::bar(ProgressDrawTarget::term_like(Box::new(screen.clone())));
        progress_output(&mut view);
        let drawn = screen.0.lock().unwrap().clone();
        let last = drawn.rsplit('\r').next().unwrap_or_default().trim_end();
        assert_eq!(
            last,
            format!(
                "[{}{}]  45%  4,500/10,000 rows  created 3,980 updated 500 unchanged 10 failed 10",
                "#".repeat(13),
                ".".repeat(17)
            ),
            "{drawn:?}"
        );

        let mut err = Vec::new();
        progress_output(&mut ProgressView::new(&mut err, false));
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "request 1/2 (lines 2-4501): 4,500/10,000 rows  created 3,980 updated 500 \
             unchanged 10 failed 10; the server ran out of time at line 4400, sending the rest \
             again\n"
        );
    }

    #[test]
    fn an_empty_file_is_a_full_bar() {
        let screen = Screen::default();
        let mut view = ProgressView::bar(ProgressDrawTarget::term_like(Box::new(screen.clone())));
        view.show(&Progress {
            summary: &Summary::default(),
            request: 0,
            requests: 0,
            lines: None,
            rest: false,
            stopped_at: None,
        });
        view.finish();
        let drawn = screen.0.lock().unwrap().clone();
        assert!(
            drawn.contains(&format!("[{}] 100%  0/0 rows", "#".repeat(30))),
            "{drawn:?}"
        );
    }
}
