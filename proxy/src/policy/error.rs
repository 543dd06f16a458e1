//! Errors from loading a policy: every problem in the file, each with its place.
//!
//! A policy is rejected as a whole, and the author gets the complete list in
//! one go, one `file:line:col: message` per line, in file order — the format
//! compilers use, so editors and CI annotate the right line.

use std::fmt;

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file name as given to [`Policy::load`](super::Policy::load) or
    /// [`Policy::parse`](super::Policy::parse).
    pub file: String,
    /// 1-based; 0 when the problem has no place in the text (the file cannot be read).
    pub line: usize,
    /// 1-based, in characters; 0 when unknown.
    pub column: usize,
    /// Short and lowercase, quoting the offending value.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: {}", self.file, self.message),
            (line, 0) => write!(f, "{}:{line}: {}", self.file, self.message),
            (line, column) => write!(f, "{}:{line}:{column}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for PolicyError {}

/// Every problem found in a policy file, sorted by position. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors {
    pub errors: Vec<PolicyError>,
}

impl PolicyErrors {
    /// A list of one error.
    pub fn single(file: &str, line: usize, column: usize, message: String) -> Self {
        PolicyErrors {
            errors: vec![PolicyError {
                file: file.to_owned(),
                line,
                column,
                message,
            }],
        }
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}
