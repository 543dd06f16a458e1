//! The offline subcommands: `check`, `explain` and `test`. None of them does
//! network IO: they read the policy (and the files named on the command
//! line), compile it with the same pure code as the gateway, and decide
//! requests with the gateway's own stages (`decide.rs`).
//!
//! Each returns an [`Output`] instead of printing, so `main.rs` stays thin
//! and tests can compare texts.

pub mod cases;
pub mod check;
pub mod decide;
pub mod explain;

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use crate::policy::PolicyErrors;

/// What a subcommand prints, and its exit code.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// 0 success, 1 failure (errors, failed cases, warnings with `--strict`).
    pub code: u8,
}

impl Output {
    fn out(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.stdout, "{}", line.as_ref());
    }

    fn err(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.stderr, "{}", line.as_ref());
    }

    /// Every policy error on stderr, exit code 1.
    fn policy_errors(errors: &PolicyErrors) -> Output {
        let mut output = Output {
            code: 1,
            ..Output::default()
        };
        output.err(errors.to_string());
        output
    }

    /// One `error: …` on stderr, exit code 1.
    fn failed(message: impl AsRef<str>) -> Output {
        let mut output = Output {
            code: 1,
            ..Output::default()
        };
        output.err(format!("error: {}", message.as_ref()));
        output
    }

    /// Prints and turns into the process's exit code.
    pub fn emit(self) -> ExitCode {
        print!("{}", self.stdout);
        eprint!("{}", self.stderr);
        ExitCode::from(self.code)
    }
}

/// A file's text, or `file: cannot read: …`.
fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

/// Seconds since the epoch (tokens' `exp` is compared with it).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
