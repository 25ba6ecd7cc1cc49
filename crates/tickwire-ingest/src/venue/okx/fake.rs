//! The Okx side of the wire: the fake venue and the capture generator.

use crate::venue::FakeVenue;

/// A fake Okx session.
pub struct OkxFake {
    natives: Vec<String>,
}

impl OkxFake {
    /// A fake serving these instruments (venue names).
    pub fn new(natives: &[String]) -> Self {
        Self {
            natives: natives.to_vec(),
        }
    }
}

impl FakeVenue for OkxFake {
    fn greeting(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn on_client(&mut self, _text: &str, _out: &mut Vec<String>) {
        let _ = &self.natives;
    }

    fn observe(&mut self, _frame: &str) -> bool {
        true
    }

    fn rest(&mut self, _path_and_query: &str) -> Option<String> {
        None
    }
}

/// The synthetic capture (`feeds/okx/capture.jsonl`).
pub fn generate() -> String {
    String::new()
}
