//! Identity headers: whatever a token's claims hold, each header value is a
//! legal visible-ASCII header value that decodes back to the claim exactly,
//! and list items (roles, scopes) never split or merge.
#![no_main]

use authz_proxy::headers::{IdentityValues, set_identity};
use authz_proxy::identity::{Identity, PrincipalKind};
use authz_proxy::policy::IdentityHeaders;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;

fn decode(v: &HeaderValue) -> String {
    let text = v.to_str().expect("visible ASCII");
    percent_decode_str(text)
        .decode_utf8()
        .expect("UTF-8")
        .into_owned()
}

fn list(v: &HeaderValue, separator: char) -> Vec<String> {
    let text = v.to_str().expect("visible ASCII");
    if text.is_empty() {
        return Vec::new();
    }
    text.split(separator)
        .map(|item| {
            percent_decode_str(item)
                .decode_utf8()
                .expect("UTF-8")
                .into_owned()
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Fields separated by NUL: oid, name, email, then roles, then scopes
    // (items separated by \x01). Claims never hold empty list items.
    let mut fields = text.split('\0');
    let mut next = || fields.next().unwrap_or("").to_owned();
    let (object_id, name, email, roles, scopes) = (next(), next(), next(), next(), next());
    let items = |s: &str| -> Vec<String> {
        s.split('\u{1}')
            .filter(|i| !i.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let who = Identity {
        object_id: object_id.clone(),
        tenant_id: "tid".into(),
        kind: PrincipalKind::User,
        roles: items(&roles),
        // `scp` is split on spaces, so a scope never holds one.
        scopes: items(&scopes.replace(' ', "")),
        name: Some(name.clone()),
        email: Some(email.clone()),
        app_id: None,
        guest: false,
        audiences: Vec::new(),
        default_audience: true,
        auth_contexts: Vec::new(),
        handles_claims_challenges: false,
        groups: Vec::new(),
        groups_overage: false,
        expires_at: 0,
    };
    let names = IdentityHeaders::default();
    let mut map = HeaderMap::new();
    set_identity(&mut map, &names, &IdentityValues::render(&who));
    assert_eq!(decode(&map[&names.user_id]), object_id);
    assert_eq!(decode(&map[&names.name]), name);
    assert_eq!(decode(&map[&names.email]), email);
    assert_eq!(list(&map[&names.roles], ','), who.roles);
    assert_eq!(list(&map[&names.scopes], ' '), who.scopes);
});
