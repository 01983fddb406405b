//! Arbitrary bytes -> `sockstat::diag::parse_inet_replies`, as a recorded `-D` dump or a
//! live sock_diag reply stream would reach it. It must return records or an error, never
//! panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&proto, rest)) = data.split_first() else {
        return;
    };
    let _ = sockstat::diag::parse_inet_replies(rest, proto);
});
