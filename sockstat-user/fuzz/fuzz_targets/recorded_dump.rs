//! Arbitrary bytes -> the reader of a recorded TCP dump (`TCPDIAG_FILE`, what `-D FILE`
//! writes), which reads every dump in the file, as a file from elsewhere would reach it.
//! It must return records or an error naming the offset, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sockstat::diag::parse_inet_replies_with(data, 6, true);
});
