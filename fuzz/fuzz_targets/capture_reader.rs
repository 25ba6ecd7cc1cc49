//! The capture reader (`tickwire_ingest::capture::Capture::parse`) on
//! arbitrary files: it must answer every input, and a capture it accepts
//! must read back the same after being written out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_ingest::capture::Capture;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(capture) = Capture::parse(text) {
        let written = capture.to_text();
        let again = Capture::parse(&written).expect("a written capture parses");
        assert_eq!(again, capture, "a capture reads back as written");
    }
});
