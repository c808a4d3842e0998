//! How big an idle WebSocket's state is, pinned.

use super::*;
use std::mem::size_of;

/// What every open WebSocket holds, measured on x86_64 Linux (default
/// features / with `deflate`, which adds its box pointer): `ServerConn`
/// 96 / 104 (inline in the connection table's slot; the peer address and
/// TLS details of the HTTP phase boxed apart and dropped at the upgrade,
/// a partial frame's bytes boxed while there are any),
/// `ServerWs` 136 / 144 (boxed at the upgrade, a 144 / 160-byte malloc
/// chunk: `WsConn` 80 / 88, its instants as 32-bit stamps, the decoder's
/// fragment assembly and the deferred frames boxed when first needed;
/// `ChannelInfo` 56, a short
/// target and an IPv4 peer inline, its rarer parts boxed apart, `None`
/// unless a channel has kept headers, a subprotocol, TLS or extensions). benches/README.md
/// ("Memory per connection with real handshakes") has the rest. These
/// bounds keep them from growing unnoticed; lower them when you cut.
#[test]
#[cfg(target_pointer_width = "64")]
fn an_idle_websocket_stays_this_small() {
    let deflate = if cfg!(feature = "deflate") { 8 } else { 0 };
    // With `deflate` the pending upgrade carries its agreement (a box
    // pointer), which makes the HTTP state 8 bytes larger.
    assert!(size_of::<Origin>() <= 40, "{}", size_of::<Origin>());
    assert!(size_of::<ServerConn>() <= 96 + deflate, "{}", size_of::<ServerConn>());
    assert!(size_of::<ChannelInfo>() <= 56, "{}", size_of::<ChannelInfo>());
    assert!(size_of::<WsConn>() <= 80 + deflate, "{}", size_of::<WsConn>());
    assert!(size_of::<ServerWs>() <= 136 + deflate, "{}", size_of::<ServerWs>());
}
