//! The TLS parameters of `DATABASE_URL` that tokio-postgres does not know.
//!
//! libpq users write `sslmode=verify-full` and `sslrootcert=/path` in their
//! connection strings; tokio-postgres 0.7 parses only `sslmode=disable`,
//! `prefer` and `require`, and refuses any parameter it does not know. So
//! [`split`] takes `sslmode` and `sslrootcert` out of the string (URL query
//! or `key=value` form, as tokio-postgres reads them) and hands the rest,
//! otherwise unchanged, to tokio-postgres.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// A connection string with its TLS parameters taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) struct Split {
    /// The string without `sslmode` and `sslrootcert`, for tokio-postgres.
    pub(in crate::store) rest: String,
    /// The last `sslmode` given, as written.
    pub(in crate::store) sslmode: Option<String>,
    /// The last `sslrootcert` given, as written.
    pub(in crate::store) sslrootcert: Option<String>,
}

/// The parameters this module takes out.
const TAKEN: [&str; 2] = ["sslmode", "sslrootcert"];

/// Splits `url` (`postgres://…?…` or `key=value …`); an error names what
/// cannot be read.
pub(in crate::store) fn split(url: &str) -> Result<Split, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_url(url)
    } else {
        split_key_values(url)
    }
}

fn split_url(url: &str) -> Result<Split, String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(Split {
            rest: url.to_owned(),
            sslmode: None,
            sslrootcert: None,
        });
    };
    let mut split = Split {
        rest: base.to_owned(),
        sslmode: None,
        sslrootcert: None,
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key)?;
        if TAKEN.contains(&key.as_ref()) {
            let value = decode(value)?.into_owned();
            split.take(&key, value);
        } else {
            kept.push(pair);
        }
    }
    if !kept.is_empty() {
        split.rest.push('?');
        split.rest.push_str(&kept.join("&"));
    }
    Ok(split)
}

fn decode(text: &str) -> Result<Cow<'_, str>, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map_err(|_| format!("{text:?} is not percent-encoded UTF-8"))
}

/// The `key=value` form as tokio-postgres (and libpq) reads it: values may
/// be `'quoted'`, and `\` escapes the next character in either form. Kept
/// parameters are copied as written.
fn split_key_values(text: &str) -> Result<Split, String> {
    let mut split = Split {
        rest: String::new(),
        sslmode: None,
        sslrootcert: None,
    };
    let mut chars = text.char_indices().peekable();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        while chars
            .next_if(|&(_, c)| !c.is_whitespace() && c != '=')
            .is_some()
        {}
        let key_end = chars.peek().map_or(text.len(), |&(i, _)| i);
        let key = &text[start..key_end];
        skip_ws(&mut chars);
        if chars.next_if(|&(_, c)| c == '=').is_none() {
            return Err(format!("expected `=` after {key:?}"));
        }
        skip_ws(&mut chars);
        let mut value = String::new();
        if chars.next_if(|&(_, c)| c == '\'').is_some() {
            loop {
                match chars.next() {
                    Some((_, '\'')) => break,
                    Some((_, '\\')) => value.extend(chars.next().map(|(_, c)| c)),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("the quoted value of {key:?} is not closed")),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next().map(|(_, c)| c));
                } else {
                    value.push(c);
                }
            }
        }
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        if TAKEN.contains(&key) {
            split.take(key, value);
        } else {
            if !split.rest.is_empty() {
                split.rest.push(' ');
            }
            split.rest.push_str(&text[start..end]);
        }
    }
    Ok(split)
}

impl Split {
    fn take(&mut self, key: &str, value: String) {
        match key {
            "sslmode" => self.sslmode = Some(value),
            _ => self.sslrootcert = Some(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_ok(url: &str) -> (String, Option<String>, Option<String>) {
        let split = split(url).unwrap();
        (split.rest, split.sslmode, split.sslrootcert)
    }

    #[test]
    fn a_url_loses_only_its_tls_parameters() {
        assert_eq!(
            split_ok(
                "postgres://u:p@db:5432/todo?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem"
            ),
            (
                "postgres://u:p@db:5432/todo?application_name=x".to_owned(),
                Some("verify-full".to_owned()),
                Some("/etc/ca.pem".to_owned())
            )
        );
        assert_eq!(
            split_ok("postgresql://db/todo?sslmode=require"),
            (
                "postgresql://db/todo".to_owned(),
                Some("require".to_owned()),
                None
            )
        );
        assert_eq!(
            split_ok("postgres://db/todo"),
            ("postgres://db/todo".to_owned(), None, None)
        );
    }

    #[test]
    fn key_values_lose_only_their_tls_parameters_quoted_or_not() {
        assert_eq!(
            split_ok(
                "host=db  sslmode = verify-ca password='a b\\'c' sslrootcert='/my certs/ca.pem' dbname=todo"
            ),
            (
                "host=db password='a b\\'c' dbname=todo".to_owned(),
                Some("verify-ca".to_owned()),
                Some("/my certs/ca.pem".to_owned())
            )
        );
        let rest = split_ok("host=db password='a b\\'c'").0;
        let config: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"a b'c"[..]));
    }

    #[test]
    fn unreadable_strings_are_errors() {
        assert!(split("host=db sslmode").unwrap_err().contains("sslmode"));
        assert!(split("sslrootcert='/x").unwrap_err().contains("not closed"));
        assert!(split("postgres://db/?sslmode=%FF").is_err());
    }
}
