//! Topics: which channels subscribe to what, for publish. No sockets and
//! no frames here; [`Core::publish`](crate::table::Core::publish) encodes
//! a publish once and queues it for the subscribers this table lists.
//!
//! Topic names are exact strings, no wildcards (why: `Context::subscribe`'s
//! docs).
//!
//! Subscribing and unsubscribing are O(1) plus the channel's own topic
//! count: a topic keeps its subscribers in a vector, each channel keeps its
//! topics with its place in each vector, so removal is a `swap_remove`.

use std::collections::HashMap;
use std::sync::Arc;

use slab::Slab;

use crate::channel::Channel;

/// A topic and its subscribers, in no particular order.
#[derive(Debug)]
struct Topic {
    name: Arc<str>,
    subs: Vec<Channel>,
}

/// What a channel subscribes to: each topic's id, and the channel's place
/// in that topic's `subs`.
type Membership = Vec<(u32, u32)>;

/// A topic gained its first subscriber (`true`) or lost its last one
/// (`false`); reported to the application after the call that did it.
pub(crate) type TopicChange = (Arc<str>, bool);

/// Every topic of one server (one reactor) and its subscribers.
#[derive(Debug, Default)]
pub(crate) struct Topics {
    ids: HashMap<Arc<str>, u32>,
    topics: Slab<Topic>,
    /// Per connection key: its topics. Only channels that subscribe have
    /// an entry, so a channel that never does costs nothing here.
    members: HashMap<u32, Membership>,
    /// Subscriptions over every topic.
    subscriptions: usize,
    /// Changes not yet reported to the application.
    pub changes: Vec<TopicChange>,
}

impl Topics {
    /// Subscribes `ch`; `false` if it already was.
    pub fn subscribe(&mut self, ch: Channel, topic: &str) -> bool {
        let id = match self.ids.get(topic) {
            Some(&id) => id,
            None => {
                let name: Arc<str> = Arc::from(topic);
                let id = self.topics.insert(Topic {
                    name: name.clone(),
                    subs: Vec::new(),
                }) as u32;
                self.ids.insert(name, id);
                id
            }
        };
        let member = self.members.entry(ch.index).or_default();
        if member.iter().any(|&(t, _)| t == id) {
            return false;
        }
        let t = &mut self.topics[id as usize];
        member.push((id, t.subs.len() as u32));
        t.subs.push(ch);
        self.subscriptions += 1;
        if t.subs.len() == 1 {
            self.changes.push((t.name.clone(), true));
        }
        true
    }

    /// Unsubscribes `ch`; `false` if it was not subscribed.
    pub fn unsubscribe(&mut self, ch: Channel, topic: &str) -> bool {
        let Some(&id) = self.ids.get(topic) else {
            return false;
        };
        let Some(member) = self.members.get_mut(&ch.index) else {
            return false;
        };
        let Some(i) = member.iter().position(|&(t, _)| t == id) else {
            return false;
        };
        // The slot's current channel only: a stale id (a closed channel
        // whose slot a newer one uses) must not unsubscribe the newer one.
        if self.topics[id as usize].subs[member[i].1 as usize] != ch {
            return false;
        }
        let (_, pos) = member.swap_remove(i);
        if member.is_empty() {
            self.members.remove(&ch.index);
        }
        self.leave(id, pos);
        true
    }

    /// Unsubscribes the connection in slot `index` from everything (its
    /// channel closed). Returns how many topics it left.
    pub fn unsubscribe_all(&mut self, index: u32) -> usize {
        let Some(member) = self.members.remove(&index) else {
            return 0;
        };
        for &(id, pos) in &member {
            self.leave(id, pos);
        }
        member.len()
    }

    /// Takes the subscriber at `pos` out of topic `id`, moving the last one
    /// into its place (and telling that one's membership where it went);
    /// drops the topic when it empties.
    fn leave(&mut self, id: u32, pos: u32) {
        let t = &mut self.topics[id as usize];
        t.subs.swap_remove(pos as usize);
        self.subscriptions -= 1;
        if let Some(moved) = t.subs.get(pos as usize) {
            let place = self
                .members
                .get_mut(&moved.index)
                .and_then(|m| m.iter_mut().find(|(t, _)| *t == id));
            if let Some(place) = place {
                place.1 = pos;
            }
        }
        if t.subs.is_empty() {
            let t = self.topics.remove(id as usize);
            self.ids.remove(&t.name);
            self.changes.push((t.name, false));
        }
    }

    pub fn is_subscribed(&self, ch: Channel, topic: &str) -> bool {
        let (Some(id), Some(member)) = (self.ids.get(topic), self.members.get(&ch.index)) else {
            return false;
        };
        member
            .iter()
            .any(|&(t, pos)| t == *id && self.topics[t as usize].subs[pos as usize] == ch)
    }

    /// The topics `ch` subscribes to, in no particular order.
    pub fn topics_of(&self, ch: Channel) -> impl Iterator<Item = &str> + '_ {
        let member = self.members.get(&ch.index).map(Vec::as_slice).unwrap_or_default();
        member
            .iter()
            .filter(move |&&(t, pos)| self.topics[t as usize].subs[pos as usize] == ch)
            .map(|&(t, _)| &*self.topics[t as usize].name)
    }

    /// The subscribers of `topic` (none if nobody subscribes).
    pub fn subscribers(&self, topic: &str) -> &[Channel] {
        match self.ids.get(topic) {
            Some(&id) => &self.topics[id as usize].subs,
            None => &[],
        }
    }

    /// The topic's shared name, if anyone subscribes to it.
    pub fn name(&self, topic: &str) -> Option<&Arc<str>> {
        self.ids.get_key_value(topic).map(|(k, _)| k)
    }

    /// Topics with at least one subscriber.
    pub fn len(&self) -> usize {
        self.topics.len()
    }

    /// Subscriptions over every topic.
    pub fn subscriptions(&self) -> usize {
        self.subscriptions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(index: u32) -> Channel {
        Channel { index, gen: 0 }
    }

    #[test]
    fn first_and_last_subscriber_are_reported_once() {
        let mut t = Topics::default();
        assert!(t.subscribe(ch(1), "lobby"));
        assert!(!t.subscribe(ch(1), "lobby"));
        assert!(t.subscribe(ch(2), "lobby"));
        assert_eq!(t.changes, vec![(Arc::from("lobby"), true)]);
        assert!(t.unsubscribe(ch(1), "lobby"));
        assert!(!t.unsubscribe(ch(1), "lobby"));
        assert_eq!(t.changes.len(), 1);
        assert!(t.unsubscribe(ch(2), "lobby"));
        assert_eq!(t.changes[1], (Arc::from("lobby"), false));
        assert_eq!((t.len(), t.subscriptions()), (0, 0));
        assert!(t.subscribers("lobby").is_empty());
    }

    #[test]
    fn removal_keeps_every_place_right() {
        let mut t = Topics::default();
        for i in 0..6 {
            t.subscribe(ch(i), "a");
            t.subscribe(ch(i), "b");
        }
        // Out of the middle, the front and the back, in both topics.
        for (i, topic) in [(2, "a"), (0, "b"), (5, "a"), (3, "b")] {
            assert!(t.unsubscribe(ch(i), topic));
        }
        let mut a: Vec<u32> = t.subscribers("a").iter().map(|c| c.index).collect();
        a.sort();
        assert_eq!(a, [0, 1, 3, 4]);
        for i in 0..6 {
            let want_a = ![2, 5].contains(&i);
            let want_b = ![0, 3].contains(&i);
            assert_eq!(t.is_subscribed(ch(i), "a"), want_a, "{i} in a");
            assert_eq!(t.is_subscribed(ch(i), "b"), want_b, "{i} in b");
        }
        assert_eq!(t.unsubscribe_all(1), 2);
        assert_eq!(t.unsubscribe_all(1), 0);
        assert_eq!(t.subscriptions(), 6);
        for i in [0, 2, 3, 4, 5] {
            t.unsubscribe_all(i);
        }
        assert_eq!((t.len(), t.subscriptions()), (0, 0));
    }

    #[test]
    fn a_new_channel_in_an_old_slot_is_not_subscribed() {
        let mut t = Topics::default();
        t.subscribe(ch(7), "room");
        let newer = Channel { index: 7, gen: 1 };
        assert!(!t.is_subscribed(newer, "room"));
        assert_eq!(t.topics_of(newer).count(), 0);
        assert_eq!(t.topics_of(ch(7)).collect::<Vec<_>>(), ["room"]);
        // Nor can a stale id unsubscribe the slot's newer channel.
        let mut t = Topics::default();
        t.subscribe(newer, "room");
        assert!(!t.unsubscribe(ch(7), "room"));
        assert!(t.is_subscribed(newer, "room"));
    }
}
