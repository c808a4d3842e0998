//! One message to many: broadcasts (to every open channel, to those a
//! filter picks, to a list) and topic publishes. The frame is encoded once
//! (a large payload shared by reference) and queued on each receiver as a
//! send is, so it keeps its place among that channel's sends.

use bytes::Bytes;

use super::{after_send, open_slot, Core};
use crate::channel::Channel;
use crate::proto::frame::Opcode;
use crate::proto::outbox::SHARE_MIN;
use crate::proto::server::Broadcast;

impl Core {
    /// Encodes one frame and queues it for every open channel that `pick`
    /// selects. Returns how many it was queued for.
    pub fn broadcast_where(&mut self, opcode: Opcode, payload: &[u8], pick: impl FnMut(Channel) -> bool) -> usize {
        let b = Broadcast::new(opcode, payload, std::mem::take(&mut self.frame));
        self.broadcast_picked(b, pick)
    }

    /// [`Core::broadcast_where`] for a payload held as shared bytes: a large
    /// one is queued by reference, never copied.
    pub fn broadcast_shared_where(
        &mut self,
        opcode: Opcode,
        payload: Bytes,
        pick: impl FnMut(Channel) -> bool,
    ) -> usize {
        let b = Broadcast::shared(opcode, payload, std::mem::take(&mut self.frame));
        self.broadcast_picked(b, pick)
    }

    fn broadcast_picked(&mut self, b: Broadcast<'_>, mut pick: impl FnMut(Channel) -> bool) -> usize {
        let mut targets = std::mem::take(&mut self.targets);
        targets.clear();
        targets.extend(self.open_channels().filter(|&c| pick(c)));
        let n = self.broadcast_each(targets.iter().copied(), b);
        self.targets = targets;
        n
    }

    /// Encodes one frame and queues it for each listed channel that is open
    /// (skipping slow consumers). Returns how many it was queued for.
    pub fn broadcast_to(
        &mut self,
        channels: impl IntoIterator<Item = Channel>,
        opcode: Opcode,
        payload: &[u8],
    ) -> usize {
        let b = Broadcast::new(opcode, payload, std::mem::take(&mut self.frame));
        self.broadcast_each(channels, b)
    }

    /// A broadcast of a payload a command owns: a large one shared as it is
    /// (`Bytes::from(Vec)` takes the buffer over), a small one copied as
    /// any (turning a small `Vec` into `Bytes` could allocate).
    pub fn broadcast_owned_where(&mut self, opcode: Opcode, data: Vec<u8>, pick: impl FnMut(Channel) -> bool) -> usize {
        if data.len() >= SHARE_MIN {
            return self.broadcast_shared_where(opcode, Bytes::from(data), pick);
        }
        self.broadcast_where(opcode, &data, pick)
    }

    /// [`Core::broadcast_owned_where`] to the listed channels.
    pub fn broadcast_owned_to(&mut self, channels: Vec<Channel>, opcode: Opcode, data: Vec<u8>) -> usize {
        if data.len() >= SHARE_MIN {
            return self.broadcast_shared_to(channels, opcode, Bytes::from(data));
        }
        self.broadcast_to(channels, opcode, &data)
    }

    /// [`Core::broadcast_to`] for a payload held as shared bytes.
    pub fn broadcast_shared_to(
        &mut self,
        channels: impl IntoIterator<Item = Channel>,
        opcode: Opcode,
        payload: Bytes,
    ) -> usize {
        let b = Broadcast::shared(opcode, payload, std::mem::take(&mut self.frame));
        self.broadcast_each(channels, b)
    }

    /// Queues a broadcast for each listed channel that is open: the frame
    /// as encoded once, and a large payload by reference (one copy for all
    /// receivers, see `proto/outbox.rs`).
    fn broadcast_each(&mut self, channels: impl IntoIterator<Item = Channel>, mut b: Broadcast<'_>) -> usize {
        let len = b.len();
        let mut n = 0;
        for ch in channels {
            let Some((key, slot)) = open_slot(&mut self.conns, &mut self.pool, ch) else {
                continue;
            };
            let status = slot.conn.push_broadcast(&mut b, &self.limits);
            self.stats.sent(status, 1, len);
            n += usize::from(after_send(&mut self.dirty, &mut self.attention, key, slot, status).is_queued());
        }
        self.frame = b.into_buffer();
        n
    }

    /// Subscribes an open channel to `topic`; `false` if it already was or
    /// is not open.
    pub fn subscribe(&mut self, ch: Channel, topic: &str) -> bool {
        self.is_open(ch) && self.topics.subscribe(ch, topic)
    }

    /// Queues `payload` for every subscriber of `topic` on this reactor but
    /// `except`, the frame encoded once, and hands it to the hub (if any)
    /// for the other reactors and processes. Returns how many local
    /// subscribers it was queued for.
    pub fn publish(&mut self, topic: &str, opcode: Opcode, payload: &[u8], except: Option<Channel>) -> usize {
        self.stats.publishes += 1;
        let n = self.publish_local(topic, opcode, payload, except);
        if let Some(hub) = &mut self.hub {
            hub.queue(self.topics.name(topic), topic, opcode, payload);
        }
        n
    }

    /// Queues a publish for this reactor's subscribers only.
    pub fn publish_local(&mut self, topic: &str, opcode: Opcode, payload: &[u8], except: Option<Channel>) -> usize {
        if self.topics.subscribers(topic).is_empty() {
            return 0;
        }
        let b = Broadcast::new(opcode, payload, std::mem::take(&mut self.frame));
        self.publish_each(topic, b, except)
    }

    /// [`Core::publish`] for a payload held as shared bytes: this
    /// reactor's subscribers share it (a large one by reference), and so
    /// do the hub's other servers.
    pub fn publish_shared(&mut self, topic: &str, opcode: Opcode, payload: Bytes, except: Option<Channel>) -> usize {
        self.stats.publishes += 1;
        if let Some(hub) = &mut self.hub {
            hub.queue_bytes(self.topics.name(topic), topic, opcode, payload.clone());
        }
        self.publish_local_shared(topic, opcode, payload, except)
    }

    /// [`Core::publish_local`] for shared bytes (a hub batch's payload).
    pub fn publish_local_shared(
        &mut self,
        topic: &str,
        opcode: Opcode,
        payload: Bytes,
        except: Option<Channel>,
    ) -> usize {
        if self.topics.subscribers(topic).is_empty() {
            return 0;
        }
        let b = Broadcast::shared(opcode, payload, std::mem::take(&mut self.frame));
        self.publish_each(topic, b, except)
    }

    fn publish_each(&mut self, topic: &str, b: Broadcast<'_>, except: Option<Channel>) -> usize {
        let mut targets = std::mem::take(&mut self.targets);
        targets.clear();
        let subs = self.topics.subscribers(topic);
        targets.extend(subs.iter().copied().filter(|&c| Some(c) != except));
        let n = self.broadcast_each(targets.iter().copied(), b);
        self.targets = targets;
        n
    }
}
