//! Compact forms of what every open channel keeps for its whole life (its
//! [`ChannelInfo`](super::info::ChannelInfo)): the request target, inline
//! when short, and the peer's address, inline when IPv4. 10,000 idle
//! channels pay for each byte here 10,000 times, and a short target in a
//! `Box<str>` of its own costs a 32-byte malloc chunk besides its pointer.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};

/// Targets up to this many bytes are kept inline (`/echo`, `/ws?room=42`).
const INLINE: usize = 21;

/// A request target (path and query) and where its path ends.
#[derive(Clone)]
pub(crate) enum Target {
    /// A short one, in place: `bytes[..len]` is valid UTF-8 (copied from a
    /// `&str`).
    Inline { len: u8, path_len: u8, bytes: [u8; INLINE] },
    /// A longer one, in its own allocation.
    Heap { text: Box<str>, path_len: u32 },
}

impl Target {
    /// Keeps `target`, whose path is its first `path_len` bytes (capped at
    /// its length). The caller caps `target` under 4 GiB.
    pub fn new(target: &str, path_len: usize) -> Target {
        let path_len = path_len.min(target.len());
        if target.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..target.len()].copy_from_slice(target.as_bytes());
            Target::Inline {
                len: target.len() as u8,
                path_len: path_len as u8,
                bytes,
            }
        } else {
            Target::Heap {
                text: target.into(),
                path_len: u32::try_from(path_len).unwrap_or(u32::MAX),
            }
        }
    }

    /// The target as it was given.
    pub fn as_str(&self) -> &str {
        match self {
            // Copied from a `&str` whole, so never an error.
            Target::Inline { len, bytes, .. } => std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default(),
            Target::Heap { text, .. } => text,
        }
    }

    /// Where its path ends (the `?` of the query, or its end).
    pub fn path_len(&self) -> usize {
        match self {
            Target::Inline { path_len, .. } => usize::from(*path_len),
            Target::Heap { path_len, .. } => *path_len as usize,
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A peer's address: an IPv4 one inline (6 bytes), an IPv6 one (28 bytes
/// with its flow and scope) boxed, so the usual case takes 16 bytes
/// rather than `SocketAddr`'s 32.
#[derive(Clone)]
pub(crate) enum Peer {
    V4 { ip: [u8; 4], port: u16 },
    V6(Box<SocketAddrV6>),
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Peer {
        match addr {
            SocketAddr::V4(a) => Peer::V4 {
                ip: a.ip().octets(),
                port: a.port(),
            },
            SocketAddr::V6(a) => Peer::V6(Box::new(a)),
        }
    }

    pub fn get(&self) -> SocketAddr {
        match self {
            Peer::V4 { ip, port } => SocketAddr::new(IpAddr::V4(Ipv4Addr::from(*ip)), *port),
            Peer::V6(a) => SocketAddr::V6(**a),
        }
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.get(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_targets_stay_inline_and_long_ones_are_boxed() {
        for (target, path_len, inline) in [
            ("/", 1, true),
            ("/echo", 5, true),
            ("/ws?room=42", 3, true),
            ("/exactly-twenty-one-b", 21, true),
            ("/exactly-twenty-two-by", 22, false),
            ("/a/much/longer/path?with=a&query=string", 15, false),
            ("/é?ü", 3, true),
            ("", 0, true),
        ] {
            let t = Target::new(target, path_len);
            assert_eq!(t.as_str(), target);
            assert_eq!(t.path_len(), path_len);
            assert_eq!(matches!(t, Target::Inline { .. }), inline, "{target}");
            assert_eq!(format!("{t:?}"), format!("{target:?}"));
        }
        // A path length past the end is capped.
        assert_eq!(Target::new("/x", 9).path_len(), 2);
    }

    #[test]
    fn peers_round_trip_v4_inline_v6_boxed() {
        for addr in ["10.1.2.3:4567", "[::1]:80", "[fe80::1%3]:9001", "0.0.0.0:0"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let p = Peer::new(addr);
            assert_eq!(p.get(), addr);
            assert_eq!(matches!(p, Peer::V4 { .. }), addr.is_ipv4());
        }
        let v6 = SocketAddrV6::new("fe80::1".parse().unwrap(), 443, 7, 3);
        assert_eq!(Peer::new(SocketAddr::V6(v6)).get(), SocketAddr::V6(v6));
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn both_are_small() {
        assert_eq!(std::mem::size_of::<Target>(), 24);
        assert_eq!(std::mem::size_of::<Peer>(), 16);
    }
}
