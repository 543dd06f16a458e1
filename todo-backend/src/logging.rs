//! Log output, like the gateway's: `--log-format json|text` (`LOG_FORMAT`).
//!
//! JSON is one object per line with the event's fields at the top level
//! (`timestamp`, `level`, `target`, then the fields); lines logged while a
//! request runs carry `span.request_id`, the gateway's `X-Request-Id`. Text
//! is for a person at a terminal. Without the flag: text when stdout is a
//! terminal, JSON otherwise (a container, systemd, a pipe). `RUST_LOG`
//! filters as usual (default `info`).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// The two log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// warp's own per-request lines ("processing request", "finished
/// processing"): off unless `RUST_LOG` names this target, since the access
/// log says it all.
const WARP_TRACE: &str = "warp::filters::trace";

/// Installs the process-wide subscriber on stdout; `None` picks text on a
/// terminal and JSON otherwise.
pub fn init(format: Option<LogFormat>) {
    let terminal = std::io::stdout().is_terminal();
    let format = format.unwrap_or(if terminal {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let directives = std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_else(|_| "info".to_owned());
    let mut filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    if !directives.contains(WARP_TRACE)
        && let Ok(off) = format!("{WARP_TRACE}=off").parse()
    {
        filter = filter.add_directive(off);
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.with_ansi(terminal).init(),
    }
}
