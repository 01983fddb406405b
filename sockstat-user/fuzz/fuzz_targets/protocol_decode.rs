//! Arbitrary bytes -> the agent's query protocol, as the agent decodes a client's frame
//! (and a client the agent's answer): a length header, then a versioned postcard
//! message. It must return a message or an error, never panic or allocate past the
//! frame limit, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockstat::wire::protocol::{MAX_REQUEST, Request, Response, decode, read_frame};

fuzz_target!(|data: &[u8]| {
    let _ = read_frame::<Request>(&mut &data[..], MAX_REQUEST);
    let _ = decode::<Request>(data);
    let _ = decode::<Response>(data);
});
