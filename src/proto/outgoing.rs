//! The sending side's rules for raw frames, shared by server and client:
//! which opcode a frame goes out with, and whether a fragmented message is
//! open (other messages must then wait behind its final fragment).

use super::error::SendError;
use super::frame::{Opcode, MAX_CONTROL_PAYLOAD};

/// The one rule of a whole-message send (a broadcast, a publish, a send
/// through a handle): it is text or binary; anything else is refused with
/// `InvalidOpcode`.
pub fn check_message(opcode: Opcode) -> Result<(), SendError> {
    match opcode {
        Opcode::Text | Opcode::Binary => Ok(()),
        _ => Err(SendError::InvalidOpcode(opcode)),
    }
}

/// What a raw send turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawFrame {
    /// A ping or pong: it goes out at once, even between fragments.
    Control,
    /// A data frame, with the opcode it carries on the wire.
    Data(Opcode),
}

/// The fragmented data message being sent, if any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fragmenter {
    open: Option<Opcode>,
}

impl Fragmenter {
    /// Checks a raw send without recording it. Later fragments may give
    /// `Continuation` or the message's own opcode; another data opcode
    /// while a message is open, `Continuation` with none open, `Close`, a
    /// non-final or oversized control frame are refused.
    pub fn check(&self, opcode: Opcode, len: usize, fin: bool) -> Result<RawFrame, SendError> {
        match (opcode, self.open) {
            (Opcode::Close, _) => Err(SendError::InvalidOpcode(opcode)),
            (Opcode::Ping | Opcode::Pong, _) if len > MAX_CONTROL_PAYLOAD => Err(SendError::ControlFrameTooLarge(len)),
            (Opcode::Ping | Opcode::Pong, _) if !fin => Err(SendError::InvalidOpcode(opcode)),
            (Opcode::Ping | Opcode::Pong, _) => Ok(RawFrame::Control),
            (Opcode::Continuation, None) => Err(SendError::InvalidOpcode(opcode)),
            (op, None) => Ok(RawFrame::Data(op)),
            (op, Some(open)) if op == open || op == Opcode::Continuation => Ok(RawFrame::Data(Opcode::Continuation)),
            (op, Some(_)) => Err(SendError::InvalidOpcode(op)),
        }
    }

    /// The checks that hold whatever was sent before: no `Close`, control
    /// frames final and at most 125 bytes. (Whether a `Continuation` fits
    /// is only known on the connection.)
    pub fn check_alone(opcode: Opcode, len: usize, fin: bool) -> Result<(), SendError> {
        match opcode {
            Opcode::Continuation | Opcode::Text | Opcode::Binary => Ok(()),
            _ => Fragmenter::default().check(opcode, len, fin).map(|_| ()),
        }
    }

    /// Records a data frame that went out; true when it ended a fragmented
    /// message, so whole messages held behind it may follow.
    pub fn sent(&mut self, wire: Opcode, fin: bool) -> bool {
        let ended = fin && self.open.is_some();
        if fin {
            self.open = None;
        } else if wire != Opcode::Continuation {
            self.open = Some(wire);
        }
        ended
    }

    /// Whether a fragmented message is being sent.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_sequences() {
        let mut f = Fragmenter::default();
        assert_eq!(
            f.check(Opcode::Continuation, 1, true),
            Err(SendError::InvalidOpcode(Opcode::Continuation))
        );
        assert_eq!(f.check(Opcode::Text, 3, false), Ok(RawFrame::Data(Opcode::Text)));
        assert!(!f.sent(Opcode::Text, false));
        assert!(f.is_open());
        assert_eq!(
            f.check(Opcode::Binary, 1, true),
            Err(SendError::InvalidOpcode(Opcode::Binary))
        );
        assert_eq!(f.check(Opcode::Ping, 1, true), Ok(RawFrame::Control));
        assert_eq!(
            f.check(Opcode::Text, 1, false),
            Ok(RawFrame::Data(Opcode::Continuation))
        );
        assert!(!f.sent(Opcode::Continuation, false));
        assert_eq!(
            f.check(Opcode::Continuation, 1, true),
            Ok(RawFrame::Data(Opcode::Continuation))
        );
        assert!(
            f.sent(Opcode::Continuation, true),
            "the final fragment ends the message"
        );
        assert!(!f.is_open());
        assert!(!f.sent(Opcode::Binary, true), "a whole message ends nothing");
    }

    #[test]
    fn control_frame_rules() {
        let f = Fragmenter::default();
        assert_eq!(
            f.check(Opcode::Close, 0, true),
            Err(SendError::InvalidOpcode(Opcode::Close))
        );
        assert_eq!(
            f.check(Opcode::Ping, 126, true),
            Err(SendError::ControlFrameTooLarge(126))
        );
        assert_eq!(
            f.check(Opcode::Pong, 0, false),
            Err(SendError::InvalidOpcode(Opcode::Pong))
        );
    }
}
