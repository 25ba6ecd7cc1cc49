//! The Coinbase side of the wire: the fake venue and the capture generator.

use crate::venue::FakeVenue;

/// A fake Coinbase session.
pub struct CoinbaseFake {
    natives: Vec<String>,
}

impl CoinbaseFake {
    /// A fake serving these instruments (venue names).
    pub fn new(natives: &[String]) -> Self {
        Self {
            natives: natives.to_vec(),
        }
    }
}

impl FakeVenue for CoinbaseFake {
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

/// The synthetic capture (`feeds/coinbase/capture.jsonl`).
pub fn generate() -> String {
    String::new()
}
