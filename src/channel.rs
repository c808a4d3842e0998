//! Channel ids: which WebSocket connection of a server a call is about.

use std::fmt;

/// Bits of [`Channel::id`] that hold the slot index: room for 16 M open
/// connections, far past what one reactor (or a process's files) holds;
/// `init` refuses a `max_connections` that could pass it.
pub(crate) const INDEX_BITS: u32 = 24;

/// Identifies one WebSocket connection on a server.
///
/// A small `Copy` value: a slot index plus the slot's generation. When the
/// connection ends, its slot may be reused, but with a new generation, so a
/// stale `Channel` can never address the newer connection; sending to it
/// returns [`SendStatus::Closed`](crate::SendStatus::Closed).
///
/// [`Channel::id`] is the same pair as one `u64`, for a game's player ids,
/// logs and JSON; with the `json` feature a `Channel` serializes as that
/// number.
///
/// ```
/// # use hvws::Channel;
/// # fn f(ch: Channel) {
/// let id: u64 = ch.id();
/// assert_eq!(Channel::from_id(id), Some(ch));
/// # }
/// ```
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

    /// A number for this channel that no other channel of the server has
    /// for the server's life: the generation above the low 24 bits, the
    /// slot index in them. Generations grow only with WebSockets (one per
    /// channel that used the slot), so ids stay small, and below 2^53, where
    /// JavaScript's numbers (and `JSON.parse` in a browser) are exact, until
    /// one slot has held 2^29 channels.
    pub fn id(self) -> u64 {
        (u64::from(self.gen) << INDEX_BITS) | u64::from(self.index)
    }

    /// The channel an [`id`](Channel::id) came from. `None` for a number no
    /// channel can have; a stale id gives a channel that sends report
    /// closed, as any stale channel.
    pub fn from_id(id: u64) -> Option<Channel> {
        let gen = u32::try_from(id >> INDEX_BITS).ok()?;
        Some(Channel {
            index: (id & ((1 << INDEX_BITS) - 1)) as u32,
            gen,
        })
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ch{}.{}", self.index, self.gen)
    }
}

#[cfg(feature = "json")]
impl serde::Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.id())
    }
}

#[cfg(feature = "json")]
impl<'de> serde::Deserialize<'de> for Channel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Channel, D::Error> {
        let id = <u64 as serde::Deserialize>::deserialize(deserializer)?;
        Channel::from_id(id).ok_or_else(|| serde::de::Error::custom(format!("{id} is not a channel id")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_differ_by_generation() {
        let a = Channel { index: 7, gen: 0 };
        let b = Channel { index: 7, gen: 1 };
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id(), 7);
        assert_eq!(b.id(), (1 << 24) | 7);
        assert_eq!(Channel::from_id(b.id()), Some(b));
        let last = Channel {
            index: (1 << 24) - 1,
            gen: u32::MAX,
        };
        assert_eq!(Channel::from_id(last.id()), Some(last));
        assert_eq!(Channel::from_id(1 << 56), None);
        // Exact in JavaScript (2^53) while a slot has held under 2^29.
        assert!(
            Channel {
                index: (1 << 24) - 1,
                gen: (1 << 29) - 1
            }
            .id()
                < 1 << 53
        );
    }

    #[cfg(feature = "json")]
    #[test]
    fn serde_as_the_id() {
        let ch = Channel { index: 3, gen: 2 };
        let text = serde_json::to_string(&ch).unwrap();
        assert_eq!(text, ch.id().to_string());
        assert_eq!(serde_json::from_str::<Channel>(&text).unwrap(), ch);
        assert!(serde_json::from_str::<Channel>("-1").is_err());
    }
}
