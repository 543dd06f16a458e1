//! The status page, `GET /` on the admin listener: what an operator opens
//! first. Server-rendered HTML with inline CSS — no JavaScript, nothing
//! fetched from elsewhere — showing the policy's routes with their hits, the
//! denials by reason, the most recent denials and the signing keys' health.
//!
//! Everything that comes from a request or the policy file is HTML-escaped;
//! nothing shown comes from a token beyond the caller's object id.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::BodyExt as _;

use crate::access::Decision;
use crate::body::ProxyBody;
use crate::gateway::Gateway;
use crate::policy::Access;

/// The `GET /` response.
pub fn response(gateway: &Gateway) -> Response<ProxyBody> {
    let html = render(gateway, SystemTime::now());
    let mut response = Response::new(
        http_body_util::Full::new(Bytes::from(html))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Inline styles only; no script, no frame, nothing from elsewhere.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24;background:#f6f8fa}\
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:0 0 8px}\
.meta{color:#57606a;margin:0 0 16px}\
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px 16px;margin:0 0 16px}\
.row{display:flex;gap:16px;flex-wrap:wrap}.row section{flex:1;min-width:320px}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}\
th{font-weight:600;color:#57606a}td.n{text-align:right;font-variant-numeric:tabular-nums}\
code{font:12px ui-monospace,monospace}.ok{color:#1a7f37}.bad{color:#cf222e}.muted{color:#57606a}";

/// The page at `now`.
pub fn render(gateway: &Gateway, now: SystemTime) -> String {
    let metrics = gateway.metrics();
    let active = gateway.policy();
    let stats = gateway.authenticator().stats();
    let (hash, loaded_at) = metrics.policy_hash();
    let (applied, rejected) = metrics.reloads();
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>authz-proxy status</title><style>{STYLE}</style></head><body>\
         <h1>authz-proxy</h1><p class=\"meta\">version {} · upstream <code>{}</code> · \
         policy <code title=\"{}\">{}</code> loaded {} · reloads {} applied, {} rejected · \
         {} open connections · page at {}</p>",
        escape(env!("CARGO_PKG_VERSION")),
        escape(gateway.upstream().authority.as_str()),
        escape(&hash),
        escape(hash.get(..12).unwrap_or(&hash)),
        loaded_at.map_or_else(|| "—".to_owned(), utc),
        applied,
        rejected,
        metrics.open_connections(),
        utc(now),
    );

    html.push_str(
        "<section><h2>Routes</h2><table><tr><th>route</th><th>methods</th><th>paths</th>\
         <th>access</th><th>allowed</th><th>denied</th><th>errors</th></tr>",
    );
    for route in active.policy.routes() {
        let access = match &route.access {
            Access::Anonymous => "anonymous".to_owned(),
            Access::Token { roles, scopes } => {
                let mut parts = vec!["token".to_owned()];
                if !scopes.is_empty() {
                    parts.push(format!("scopes: {}", scopes.join(", ")));
                }
                if !roles.is_empty() {
                    parts.push(format!("roles: {}", roles.join(", ")));
                }
                parts.join("; ")
            }
        };
        let _ = write!(
            html,
            "<tr><td><code>{}</code> <span class=\"muted\">line {}</span></td><td>{}</td>\
             <td><code>{}</code></td><td>{}</td><td class=\"n ok\">{}</td>\
             <td class=\"n bad\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&route.name),
            route.line,
            escape(&route.methods.to_allow_header()),
            escape(&route.paths.join(" ")),
            escape(&access),
            metrics.route_hits(&route.name, Decision::Allow),
            metrics.route_hits(&route.name, Decision::Deny),
            metrics.route_hits(&route.name, Decision::Error),
        );
    }
    html.push_str("</table></section><div class=\"row\">");

    html.push_str(
        "<section><h2>Denials by reason</h2><table><tr><th>reason</th><th>count</th></tr>",
    );
    let mut denials: Vec<_> = metrics
        .denials_by_reason()
        .into_iter()
        .filter(|&(_, n)| n > 0)
        .collect();
    denials.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    if denials.is_empty() {
        html.push_str("<tr><td class=\"muted\" colspan=\"2\">none yet</td></tr>");
    }
    for (reason, count) in &denials {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td class=\"n\">{count}</td></tr>",
            escape(reason)
        );
    }
    html.push_str("</table></section>");

    let age = |t: SystemTime| {
        now.duration_since(t)
            .map_or_else(|_| "just now".to_owned(), |d| format!("{} ago", span(d)))
    };
    let due = |t: SystemTime| {
        t.duration_since(now)
            .map_or_else(|_| "due now".to_owned(), |d| format!("in {}", span(d)))
    };
    let lookups = stats.cache_hits + stats.cache_misses;
    let _ = write!(
        html,
        "<section><h2>Signing keys</h2><table>\
         <tr><th>keys loaded</th><td class=\"{}\">{}</td></tr>\
         <tr><th>last refresh</th><td>{}</td></tr>\
         <tr><th>next refresh</th><td>{}</td></tr>\
         <tr><th>fetches</th><td>{} succeeded, {} failed</td></tr>\
         <tr><th>token cache</th><td>{} tokens; {} of {} lookups hit</td></tr>\
         </table></section></div>",
        if stats.keys > 0 { "ok" } else { "bad" },
        stats.keys,
        stats.last_refresh.map_or_else(
            || "never".to_owned(),
            |t| format!("{} ({})", utc(t), age(t))
        ),
        stats
            .next_refresh
            .map_or_else(|| "—".to_owned(), |t| format!("{} ({})", utc(t), due(t))),
        stats.fetches_succeeded,
        stats.fetches_failed,
        stats.cached_tokens,
        stats.cache_hits,
        lookups,
    );

    html.push_str(
        "<section><h2>Recent denials</h2><table><tr><th>time</th><th>method</th><th>path</th>\
         <th>route</th><th>reason</th><th>user id</th><th>request id</th></tr>",
    );
    let recent = metrics.recent_denials();
    if recent.is_empty() {
        html.push_str("<tr><td class=\"muted\" colspan=\"7\">none yet</td></tr>");
    }
    for d in &recent {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td>\
             <td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            utc(d.time),
            escape(&d.method),
            escape(&d.path),
            d.route.as_deref().map_or_else(|| "—".to_owned(), escape),
            escape(d.reason),
            d.user_id.as_deref().map_or_else(|| "—".to_owned(), escape),
            escape(&d.request_id),
        );
    }
    html.push_str("</table></section></body></html>\n");
    html
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-11-28 11:02:03Z`.
pub fn utc(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil from days (H. Hinnant), for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// `42s`, `5m 3s`, `2h 10m`.
fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, s / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x&y's")</script>"#),
            "&lt;script&gt;alert(&quot;x&amp;y&#39;s&quot;)&lt;/script&gt;"
        );
    }

    #[test]
    fn times_are_written_in_utc() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00Z");
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(1_795_863_723)),
            "2026-11-28 11:02:03Z"
        );
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29 00:00:00Z"
        );
    }

    #[test]
    fn spans_are_short() {
        assert_eq!(span(Duration::from_secs(42)), "42s");
        assert_eq!(span(Duration::from_secs(303)), "5m 3s");
        assert_eq!(span(Duration::from_secs(7800)), "2h 10m");
    }
}
