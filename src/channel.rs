//! Channel ids: which WebSocket connection of a server a call is about.

use std::fmt;

/// Identifies one WebSocket connection on a server.
///
/// A small `Copy` value: a slot index plus the slot's generation. When the
/// connection ends, its slot may be reused, but with a new generation, so a
/// stale `Channel` can never address the newer connection; sending to it
/// returns [`SendStatus::Closed`](crate::SendStatus::Closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

impl Channel {
    /// The slot index (unique among open channels, reused after close).
    pub fn index(self) -> u32 {
        self.index
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ch{}.{}", self.index, self.gen)
    }
}
