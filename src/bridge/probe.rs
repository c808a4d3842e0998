//! A started bridge with a sink that records, for tests outside the crate
//! (`tests/redis_bridge.rs`) while the hub that will drive the bridge is
//! not there. Hidden from the docs: not part of the API.
//!
//! The crate-internal interface (`BridgeSink`, `Remote`, `BridgeLink`,
//! `RedisBridge::start`) stays crate-internal; this wraps it whole, so the
//! integration tests run the very code the hub will.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::{BridgeLink, BridgeSink, BridgeState, BridgeStats, RedisBridge, Remote};
use crate::channel::Channel;
use crate::proto::frame::Opcode;

/// What the recording sink saw, in order.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeEvent {
    /// One `deliver` call: (topic, opcode, data) per message.
    Delivered(Vec<(String, Opcode, Vec<u8>)>),
    /// One `state_changed` call.
    State(BridgeState),
}

/// A running bridge whose sink records into [`BridgeProbe::events`].
#[doc(hidden)]
#[derive(Debug)]
pub struct BridgeProbe {
    link: BridgeLink,
    events: Receiver<ProbeEvent>,
}

struct Recorder(Sender<ProbeEvent>);

impl BridgeSink for Recorder {
    fn deliver(&self, batch: Vec<Remote>) {
        let batch = batch
            .into_iter()
            .map(|r| (r.topic.to_string(), r.opcode, r.data.to_vec()))
            .collect();
        let _ = self.0.send(ProbeEvent::Delivered(batch));
    }

    fn state_changed(&self, state: BridgeState) {
        let _ = self.0.send(ProbeEvent::State(state));
    }
}

impl RedisBridge {
    /// Starts the bridge with a recording sink (tests only).
    #[doc(hidden)]
    pub fn start_probe(self) -> BridgeProbe {
        let (tx, events) = crossbeam_channel::unbounded();
        let link = self.start(Arc::new(Recorder(tx)));
        BridgeProbe { link, events }
    }
}

impl BridgeProbe {
    /// `BridgeLink::publish`.
    pub fn publish(&self, topic: &str, opcode: Opcode, data: &[u8], except: Option<Channel>) {
        self.link.publish(topic, opcode, data, except);
    }

    /// `BridgeLink::state`.
    pub fn state(&self) -> BridgeState {
        self.link.state()
    }

    /// `BridgeLink::stats`.
    pub fn stats(&self) -> BridgeStats {
        self.link.stats()
    }

    /// `BridgeLink::stop`.
    pub fn stop(&self) {
        self.link.stop();
    }

    /// What the sink was given, in order.
    pub fn events(&self) -> &Receiver<ProbeEvent> {
        &self.events
    }
}
