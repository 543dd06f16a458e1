//! Human durations in the configuration and on the command line: `90s`, `10m`,
//! `1h`, `2d`, or a bare number of seconds.

use std::time::Duration;

/// Parses `90s`, `10m`, `1h`, `2d` or `3600`; the error is a short message
/// quoting the input.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration '{text}' (expected e.g. 90s, 10m, 1h, 2d)"))?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| format!("invalid duration '{text}' (expected e.g. 90s, 10m, 1h, 2d)"))?;
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_seconds_parse() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn garbage_is_rejected_with_the_value_quoted() {
        let err = parse_duration("1 hour").unwrap_err();
        assert!(err.contains("'1 hour'"), "{err}");
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("").is_err());
    }
}
