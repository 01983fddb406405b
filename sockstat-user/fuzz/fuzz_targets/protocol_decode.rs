//! Arbitrary bytes -> the agent's query protocol, as the agent decodes a client's frame
//! (and a client the agent's answer): a length header, then a versioned postcard
//! message, whose TCP rows (`wire::rows`) are then decoded as the client does. It must
//! return a message or an error, never panic or allocate past the frame limit, whatever
//! the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockstat::wire::protocol::{MAX_REQUEST, Request, Response, decode, read_frame};

fuzz_target!(|data: &[u8]| {
    let _ = read_frame::<Request>(&mut &data[..], MAX_REQUEST);
    let _ = decode::<Request>(data);
    if let Ok(Response::Rows(rows)) = decode::<Response>(data) {
        let _ = sockstat::wire::rows::decode(&rows.0);
    }
    let _ = sockstat::wire::rows::decode(data);
    if let Some(rows) = sockstat::wire::protocol::rows_in(data) {
        let _ = sockstat::wire::rows::decode(rows);
    }
});
