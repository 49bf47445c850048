//! Standard output for a command whose reader may stop reading: `conclave sim ... | head`
//! closes the pipe early, and `println!` would then panic. Writing here instead treats a closed
//! pipe as the reader's choice to stop: the process exits at once, quietly.

use std::fmt;
use std::io::{self, Write};

/// The exit status after the reader closed standard output: 128 + SIGPIPE, what a shell reports
/// for a program stopped by a closed pipe. Not 0, since the output the command meant to give
/// was cut short (a script that reads the status learns the verdict was not delivered).
pub const EXIT_CLOSED_PIPE: i32 = 128 + 13;

/// Writes `args` to standard output. A closed pipe ends the process with
/// [`EXIT_CLOSED_PIPE`]; any other write error ends it with status 1 and a message.
pub fn write(args: fmt::Arguments<'_>, newline: bool) {
    let mut out = io::stdout().lock();
    let mut written = out.write_fmt(args);
    if newline {
        written = written.and_then(|()| out.write_all(b"\n"));
    }
    if let Err(error) = written {
        exit_on_write_error(&error);
    }
}

/// Flushes standard output, with the same treatment of errors as [`write`]. `main` calls it
/// before exiting, since `std::process::exit` does not flush.
pub fn flush() {
    if let Err(error) = io::stdout().lock().flush() {
        exit_on_write_error(&error);
    }
}

/// True if `error` comes from a write to a closed pipe, however deep in its chain of causes.
pub fn is_closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn exit_on_write_error(error: &io::Error) -> ! {
    if error.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(EXIT_CLOSED_PIPE);
    }
    eprintln!("conclave: cannot write to standard output: {error}");
    std::process::exit(1);
}

/// `print!` that exits quietly when the reader has gone (see the module doc).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*), false)
    };
}

/// `println!` that exits quietly when the reader has gone (see the module doc).
macro_rules! outln {
    () => {
        $crate::output::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*), true)
    };
}
