//! Path normalisation: never panics; the output is canonical (ASCII, no
//! `//`, no dot-segments, uppercase escapes of reserved bytes only) and a
//! fixed point; the route decided for it is the route decided for its
//! normal form.
#![no_main]

use std::sync::LazyLock;

use authz_proxy::path::normalize;
use authz_proxy::policy::Policy;
use http::Method;
use libfuzzer_sys::fuzz_target;

static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    Policy::parse(include_str!("../../policy.yaml"), "policy.yaml").expect("the demo policy")
});

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(once) = normalize(raw) else {
        return;
    };
    assert_eq!(
        normalize(&once).as_ref(),
        Ok(&once),
        "not a fixed point: {raw:?}"
    );
    assert!(
        once.starts_with('/') && once.is_ascii(),
        "{raw:?} -> {once:?}"
    );
    assert!(!once.contains("//"), "{raw:?} -> {once:?}");
    for segment in once.split('/') {
        assert!(segment != "." && segment != "..", "{raw:?} -> {once:?}");
    }
    for escape in once.split('%').skip(1) {
        let hex = escape.get(..2).expect("two hex digits");
        let value = u8::from_str_radix(hex, 16).expect("hex");
        assert_eq!(hex, hex.to_ascii_uppercase(), "{raw:?} -> {once:?}");
        assert!(
            !(value.is_ascii_alphanumeric() || b"-._~".contains(&value)),
            "unreserved byte left escaped: {raw:?} -> {once:?}"
        );
    }
    for method in [Method::GET, Method::DELETE] {
        assert_eq!(
            POLICY.route_for(&method, &once),
            POLICY.route_for(&method, &normalize(&once).unwrap()),
            "{raw:?}"
        );
    }
});
