//! Log output: `--log-format json|text` (`LOG_FORMAT`).
//!
//! JSON is one object per line with the event's fields at the top level
//! (`timestamp`, `level`, `target`, then the fields; lines logged while a
//! request runs carry `span.request_id`), for log shippers. Text is for a
//! person at a terminal. Without the flag: text when stdout is a terminal,
//! JSON otherwise — in a container, under systemd, piped into a file.
//! `RUST_LOG` filters as usual (default `info`; `access=off` silences the
//! access log).

use std::io::IsTerminal as _;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The two log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

impl LogFormat {
    /// Text on a terminal, JSON otherwise.
    pub fn detect() -> LogFormat {
        if std::io::stdout().is_terminal() {
            LogFormat::Text
        } else {
            LogFormat::Json
        }
    }
}

/// A subscriber writing `format` to `writer`, with an `EnvFilter` directive
/// string such as `info` (an invalid one falls back to `info`): what the
/// binary installs for stdout, and what tests install for a buffer.
pub fn subscriber<W>(
    format: LogFormat,
    filter: &str,
    writer: W,
    ansi: bool,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
    }
}

/// Installs the process-wide subscriber on stdout; `None` picks by
/// [`LogFormat::detect`]. Filter from `RUST_LOG`, default `info`.
pub fn init(format: Option<LogFormat>) {
    let format = format.unwrap_or_else(LogFormat::detect);
    let filter = std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_else(|_| "info".to_owned());
    let ansi = std::io::stdout().is_terminal();
    let _ = init_with(format, &filter, std::io::stdout, ansi);
}

/// Installs [`subscriber`] process-wide (and routes `log` records to it);
/// fails if a subscriber is already installed. Tests use it with a buffer.
pub fn init_with<W>(
    format: LogFormat,
    filter: &str,
    writer: W,
    ansi: bool,
) -> Result<(), tracing_subscriber::util::TryInitError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    subscriber(format, filter, writer, ansi).try_init()
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::config::Cli;

    #[test]
    fn log_format_flag_takes_json_or_text_only() {
        let parse = |v: &str| Cli::try_parse_from(["authz-proxy", "--log-format", v]);
        assert_eq!(
            parse("json").unwrap().serve.log_format,
            Some(LogFormat::Json)
        );
        assert_eq!(
            parse("text").unwrap().serve.log_format,
            Some(LogFormat::Text)
        );
        assert!(parse("xml").is_err());
    }
}
