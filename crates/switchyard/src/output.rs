//! Printing without panicking. `println!` panics when the write fails, which it does as
//! soon as the reader of a pipe goes away (`switchyard demo | head -3`): Rust ignores
//! SIGPIPE, so the write fails with EPIPE instead of ending the process. The commands print
//! through [`outln!`] and [`out!`] instead: a closed stdout ends the command quietly with
//! exit code 0 (what a Unix tool killed by SIGPIPE looks like to a shell pipeline), any
//! other write error ends it with exit code 1 and says why on stderr. Messages for stderr
//! go through [`errln!`], which drops them when stderr is closed: a server whose terminal
//! went away keeps serving.

use std::fmt;
use std::io::{self, Write as _};

/// The exit code when stdout cannot be written for another reason than a closed pipe.
const EXIT_WRITE_FAILED: i32 = 1;

/// Writes `args` to stdout and flushes it. When stdout is closed (the reader went away)
/// the process ends quietly with exit code 0; on any other write error it ends with exit
/// code 1 after a line on stderr. Only for the commands that print and end, never for
/// anything the running server does.
pub(crate) fn stdout(args: fmt::Arguments<'_>) {
    let written = {
        let mut out = io::stdout().lock();
        out.write_fmt(args).and_then(|()| out.flush())
    };
    if let Err(e) = written {
        std::process::exit(stop_code(&e));
    }
}

/// The exit code a failed write to stdout ends the process with (0 for a closed pipe,
/// which is not worth a word); says why on stderr otherwise.
pub(crate) fn stop_code(e: &io::Error) -> i32 {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return 0;
    }
    stderr(format_args!("switchyard: cannot write to stdout: {e}\n"));
    EXIT_WRITE_FAILED
}

/// Writes `args` to stderr, dropping it when stderr cannot be written (closed, full).
pub(crate) fn stderr(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.flush());
}

/// `println!` that never panics: see [`stdout`].
macro_rules! outln {
    () => {
        $crate::output::stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that never panics: see [`stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: see [`stderr`].
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}
