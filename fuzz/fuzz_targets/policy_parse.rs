//! The policy parser and compiler: never panics on any text, and every
//! error it reports points at a line.
#![no_main]

use authz_proxy::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = Policy::parse(text, "fuzz.yaml") {
        assert!(!errors.errors.is_empty(), "an error without a message");
        for error in &errors.errors {
            assert!(error.line >= 1, "no line for {error} in {text:?}");
            assert!(!error.message.is_empty());
        }
    }
});
