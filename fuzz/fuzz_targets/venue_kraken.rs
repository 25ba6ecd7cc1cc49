//! The kraken adapter's `on_text`/`on_rest` on arbitrary frames after a
//! normal subscribe (one frame per line; see `tickwire_fuzz::run_venue`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_ingest::feed::VenueKind;

fuzz_target!(|data: &[u8]| tickwire_fuzz::run_venue(VenueKind::Kraken, data));
