//! The few HTML pages dev-idp shows: the index, the "pick a user" sign-in
//! page, error pages, and the auto-submitting `form_post` response. Plain
//! HTML, no scripts except the one-line `form_post` submit; every value is
//! escaped.

/// The warning every page and the `serve` banner carry.
pub const NOT_FOR_PRODUCTION: &str = "dev-idp is a development identity provider: anyone who can reach it can sign in as anyone. Never trust it in production.";

/// Escapes text for element content and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
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

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}\
         .warn{{background:#fee;border:1px solid #c00;padding:.5em}}li{{margin:.4em 0}}</style></head>\n\
         <body><p class=\"warn\">{warn}</p>\n{body}</body></html>\n",
        title = escape(title),
        warn = escape(NOT_FOR_PRODUCTION),
    )
}

/// One user on the sign-in page.
#[derive(Debug)]
pub(crate) struct UserChoice {
    /// Display name.
    pub name: String,
    /// Sign-in name.
    pub username: String,
    /// Tenant display name.
    pub tenant: String,
    /// The authorize URL that signs this user in (`login_hint` set).
    pub href: String,
}

/// The sign-in page: one link per user.
pub(crate) fn sign_in_page(
    client: &str,
    tenant: &str,
    notice: Option<&str>,
    users: &[UserChoice],
) -> String {
    let mut body = format!(
        "<h1>Sign in to {}</h1>\n<p>Application <b>{}</b> asks you to sign in. Pick a user:</p>\n",
        escape(tenant),
        escape(client)
    );
    if let Some(notice) = notice {
        body.push_str(&format!("<p><b>{}</b></p>\n", escape(notice)));
    }
    body.push_str("<ul>\n");
    for u in users {
        body.push_str(&format!(
            "<li><a href=\"{}\">{}</a> &lt;{}&gt; ({})</li>\n",
            escape(&u.href),
            escape(&u.name),
            escape(&u.username),
            escape(&u.tenant)
        ));
    }
    body.push_str("</ul>\n");
    page("Sign in - dev-idp", &body)
}

/// An error shown instead of redirecting.
pub(crate) fn error_page(error: &str, description: &str) -> String {
    page(
        "Sign-in error - dev-idp",
        &format!(
            "<h1>Sorry, that did not work</h1>\n<p><code>{}</code></p>\n<p>{}</p>\n",
            escape(error),
            escape(description)
        ),
    )
}

/// `response_mode=form_post`: a form that posts the response to the client.
pub(crate) fn form_post_page(action: &str, fields: &[(&str, String)]) -> String {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    page(
        "Working... - dev-idp",
        &format!(
            "<form method=\"post\" action=\"{}\">{inputs}<noscript><button>Continue</button></noscript></form>\
             <script>document.forms[0].submit()</script>\n",
            escape(action)
        ),
    )
}

/// The index page at `/`: where the documents are.
pub(crate) fn index_page(base_url: &str, tenants: &[(String, String)]) -> String {
    let mut body =
        String::from("<h1>dev-idp</h1>\n<p>A local stand-in for Microsoft Entra ID.</p>\n<ul>\n");
    for (name, id) in tenants {
        let v2 = format!("{base_url}/{id}/v2.0/.well-known/openid-configuration");
        body.push_str(&format!(
            "<li>{} (<code>{}</code>): <a href=\"{}\">v2 discovery</a></li>\n",
            escape(name),
            escape(id),
            escape(&v2)
        ));
    }
    body.push_str("</ul>\n");
    page("dev-idp", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let page = error_page("<x>", "y");
        assert!(page.contains("&lt;x&gt;") && !page.contains("<x>"));
    }
}
