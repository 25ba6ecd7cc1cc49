//! The client request parser (`tickwire_model::protocol::parse_request`) on
//! arbitrary text frames: it must answer every input, and an error's
//! encoded frame must be one valid JSON object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_model::protocol::parse_request;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = parse_request(data) {
        let frame = e.encode();
        let value: serde_json::Value =
            serde_json::from_slice(&frame).expect("an error frame is JSON");
        assert!(value.is_object(), "an error frame is an object");
    }
});
