//! The chunked transfer coding of request bodies (RFC 9112 §7.1), decoded
//! as bytes arrive, in place: the decoder says which bytes of what it was
//! shown are framing and which are data, and never copies.
//!
//! Chunk extensions and trailer fields are read and ignored (RFC 9112
//! §7.1.1 and §7.1.2 let a recipient ignore them), within limits so that
//! a peer cannot make a size line or the trailer section endless.

/// Longest chunk-size line, extensions included.
pub const MAX_SIZE_LINE: usize = 1024;
/// Longest trailer section.
pub const MAX_TRAILERS: usize = 8 << 10;

/// Why a chunked body is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkedError {
    /// A chunk size that is not hex digits, or over 64 bits.
    #[error("invalid chunk size")]
    InvalidSize,
    /// A size line (with its extensions) over [`MAX_SIZE_LINE`] bytes.
    #[error("chunk size line over {MAX_SIZE_LINE} bytes")]
    SizeLineTooLong,
    /// The CRLF after a chunk's data is missing.
    #[error("chunk data not followed by CRLF")]
    MissingCrlf,
    /// A trailer section over [`MAX_TRAILERS`] bytes.
    #[error("trailer section over {MAX_TRAILERS} bytes")]
    TrailersTooLong,
}

/// What [`ChunkedDecoder::step`] found at the start of the bytes shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// `skip` bytes of framing, then `len` bytes of data: consume
    /// `skip + len`.
    Data {
        /// Framing bytes before the data.
        skip: usize,
        /// Data bytes.
        len: usize,
    },
    /// All `consumed` bytes were framing; more are needed.
    More {
        /// Bytes to consume.
        consumed: usize,
    },
    /// The body ended after `consumed` bytes (the last chunk and trailers).
    Done {
        /// Bytes to consume.
        consumed: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading hex digits; `digits` so far.
    Size {
        digits: u8,
    },
    /// After the digits: extensions (ignored) up to CR LF.
    Extension,
    /// Reading a chunk's data.
    Data,
    /// The CR after a chunk's data.
    DataCr,
    /// The LF after a chunk's data.
    DataLf,
    /// In the trailer section; `at_line_start` when the line so far is
    /// empty (so CR LF there ends the body).
    Trailer {
        at_line_start: bool,
    },
    Done,
}

/// Decodes one chunked body.
///
/// ```
/// use hvws::proto::chunked::{Chunk, ChunkedDecoder};
/// let mut d = ChunkedDecoder::new();
/// let wire = b"5\r\nhello\r\n0\r\n\r\n";
/// assert_eq!(d.step(wire).unwrap(), Chunk::Data { skip: 3, len: 5 });
/// assert_eq!(d.step(&wire[8..]).unwrap(), Chunk::Done { consumed: 7 });
/// ```
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// Data left in the current chunk; the size being read in `Size`.
    remaining: u64,
    /// Bytes of the current size line, or of the trailer section.
    line: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            remaining: 0,
            line: 0,
        }
    }

    /// Whether the last chunk and the trailers were read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads from the start of `buf` up to the next data, or to its end.
    pub fn step(&mut self, buf: &[u8]) -> Result<Chunk, ChunkedError> {
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            match self.state {
                State::Size { digits } => {
                    self.line += 1;
                    if let Some(d) = (b as char).to_digit(16) {
                        if digits >= 16 {
                            return Err(ChunkedError::InvalidSize);
                        }
                        self.remaining = self.remaining << 4 | u64::from(d);
                        self.state = State::Size { digits: digits + 1 };
                    } else if digits == 0 {
                        return Err(ChunkedError::InvalidSize);
                    } else if b == b'\n' {
                        // A bare LF ends the line too (RFC 9112 §2.2 lets a
                        // recipient accept it).
                        self.end_size_line();
                    } else {
                        self.state = State::Extension;
                    }
                }
                State::Extension => {
                    self.line += 1;
                    if b == b'\n' {
                        self.end_size_line();
                    }
                }
                State::Data => {
                    let n = (buf.len() - i).min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok(Chunk::Data { skip: i, len: n });
                }
                State::DataCr => {
                    self.state = match b {
                        b'\r' => State::DataLf,
                        b'\n' => State::Size { digits: 0 },
                        _ => return Err(ChunkedError::MissingCrlf),
                    };
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkedError::MissingCrlf);
                    }
                    self.state = State::Size { digits: 0 };
                }
                State::Trailer { at_line_start } => {
                    self.line += 1;
                    if self.line > MAX_TRAILERS {
                        return Err(ChunkedError::TrailersTooLong);
                    }
                    self.state = match b {
                        b'\n' if at_line_start => {
                            self.state = State::Done;
                            return Ok(Chunk::Done { consumed: i + 1 });
                        }
                        b'\n' => State::Trailer { at_line_start: true },
                        b'\r' => State::Trailer { at_line_start },
                        _ => State::Trailer { at_line_start: false },
                    };
                }
                State::Done => return Ok(Chunk::Done { consumed: i }),
            }
            if matches!(self.state, State::Size { .. } | State::Extension) && self.line > MAX_SIZE_LINE {
                return Err(ChunkedError::SizeLineTooLong);
            }
            i += 1;
        }
        Ok(Chunk::More { consumed: i })
    }

    fn end_size_line(&mut self) {
        self.line = 0;
        self.state = if self.remaining == 0 {
            State::Trailer { at_line_start: true }
        } else {
            State::Data
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` shown in pieces of `piece` bytes; returns the data
    /// and whether the body ended, or the error.
    fn decode(wire: &[u8], piece: usize) -> Result<(Vec<u8>, bool), ChunkedError> {
        let mut d = ChunkedDecoder::new();
        let mut data = Vec::new();
        let mut shown = Vec::new();
        for part in wire.chunks(piece) {
            shown.extend_from_slice(part);
            loop {
                match d.step(&shown)? {
                    Chunk::Data { skip, len } => {
                        data.extend_from_slice(&shown[skip..skip + len]);
                        shown.drain(..skip + len);
                    }
                    Chunk::More { consumed } => {
                        shown.drain(..consumed);
                        break;
                    }
                    Chunk::Done { consumed } => {
                        shown.drain(..consumed);
                        assert!(shown.is_empty(), "bytes after the body stay unread");
                        return Ok((data, true));
                    }
                }
            }
        }
        Ok((data, false))
    }

    #[test]
    fn wikipedia_example_in_every_piece_size() {
        let wire = b"4\r\nWiki\r\n7\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\n\r\n";
        for piece in 1..=wire.len() {
            assert_eq!(
                decode(wire, piece).unwrap(),
                (b"Wikipedia in \r\nchunks.".to_vec(), true),
                "{piece}"
            );
        }
    }

    #[test]
    fn extensions_trailers_and_bare_lf_are_accepted() {
        let wire = b"5;name=value;x\r\nhello\r\n0\r\nX-Checksum: 1\r\nY: 2\r\n\r\n";
        assert_eq!(decode(wire, 3).unwrap(), (b"hello".to_vec(), true));
        assert_eq!(decode(b"3\nabc\n0\n\n", 1).unwrap(), (b"abc".to_vec(), true));
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        assert_eq!(decode(b"5\r\nhel", 2).unwrap(), (b"hel".to_vec(), false));
        assert_eq!(decode(b"0\r\n", 2).unwrap(), (Vec::new(), false));
    }

    #[test]
    fn bytes_after_the_last_chunk_are_left_for_the_next_request() {
        let mut d = ChunkedDecoder::new();
        let wire = b"0\r\n\r\nGET / HTTP/1.1\r\n";
        assert_eq!(d.step(wire).unwrap(), Chunk::Done { consumed: 5 });
        assert!(d.is_done());
        assert_eq!(d.step(&wire[5..]).unwrap(), Chunk::Done { consumed: 0 });
    }

    #[test]
    fn malformed_bodies_are_named() {
        assert_eq!(decode(b"x\r\n", 9).unwrap_err(), ChunkedError::InvalidSize);
        assert_eq!(decode(b"\r\n", 9).unwrap_err(), ChunkedError::InvalidSize);
        assert_eq!(
            decode(b"11111111111111111\r\n", 9).unwrap_err(),
            ChunkedError::InvalidSize
        );
        assert_eq!(decode(b"3\r\nabcX", 9).unwrap_err(), ChunkedError::MissingCrlf);
        assert_eq!(decode(b"3\r\nabc\rX", 9).unwrap_err(), ChunkedError::MissingCrlf);
        let long = format!("1;{}\r\n", "e".repeat(MAX_SIZE_LINE));
        assert_eq!(decode(long.as_bytes(), 64).unwrap_err(), ChunkedError::SizeLineTooLong);
        let trailers = format!("0\r\n{}", "X: y\r\n".repeat(MAX_TRAILERS / 6 + 1));
        assert_eq!(
            decode(trailers.as_bytes(), 512).unwrap_err(),
            ChunkedError::TrailersTooLong
        );
    }
}
