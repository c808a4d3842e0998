//! The `multipart/form-data` parser (RFC 7578 on RFC 2046's multipart
//! syntax), push-style: the body is fed in whatever pieces it arrives in
//! and never touches a socket, so the connection core can hand it each
//! read and the tests can split it anywhere.
//!
//! Memory stays bounded whatever the body's size: the parser buffers at
//! most one 64 KiB slice of input plus an unfinished part header block
//! (8 KiB at most) or a possible start of the boundary; a file's bytes are
//! written out as they arrive (to memory up to
//! [`FormLimits::memory_threshold`], then to a temporary file). The
//! boundary is found with `memchr`'s `memmem`, and each byte is searched
//! at most twice (the tail kept back in case a boundary starts there is
//! searched again with the next piece), so parsing is linear.

use std::fmt;

use memchr::memmem;

use super::form::Form;
use super::limits::{FormError, FormLimits};
use super::upload::FileWriter;

mod headers;
#[cfg(test)]
mod tests;

/// The largest header block of one part, in bytes.
pub(crate) const MAX_PART_HEADER_BYTES: usize = 8 << 10;

/// The most headers one part may have.
pub(crate) const MAX_PART_HEADERS: usize = 16;

/// Input is parsed in slices of at most this many bytes, so the buffer
/// stays small however large the pieces the caller feeds.
const SLICE: usize = 64 << 10;

/// Parses a `multipart/form-data` body as it arrives into a [`Form`].
///
/// Call [`feed`](MultipartParser::feed) with each piece of the body, in
/// order (any split works, down to single bytes), then
/// [`finish`](MultipartParser::finish) when the body has ended. After an
/// error, drop the parser and answer with [`FormError::status`]: its
/// temporary files are removed with it.
///
/// Parts without a `filename` are text fields (UTF-8, up to
/// [`FormLimits::max_field_size`]); parts with one are files. The preamble
/// before the first boundary and the epilogue after the last are ignored.
///
/// ```
/// use hvws::{FormLimits, MultipartParser};
/// let mut parser = MultipartParser::new("multipart/form-data; boundary=\"frontier\"", &FormLimits::default())?;
/// let body = b"--frontier\r\n\
///     Content-Disposition: form-data; name=\"title\"\r\n\r\n\
///     Holiday\r\n\
///     --frontier\r\n\
///     Content-Disposition: form-data; name=\"photo\"; filename=\"beach.jpg\"\r\n\
///     Content-Type: image/jpeg\r\n\r\n\
///     \xff\xd8\xff\r\n\
///     --frontier--\r\n";
/// for piece in body.chunks(7) {
///     parser.feed(piece)?; // as the socket delivers it
/// }
/// let form = parser.finish()?;
/// assert_eq!(form.field("title"), Some("Holiday"));
/// assert_eq!(form.file("photo").unwrap().len(), 3);
/// # Ok::<(), hvws::FormError>(())
/// ```
pub struct MultipartParser {
    limits: FormLimits,
    /// `\r\n--` and the boundary: what ends a part's data.
    delimiter: Vec<u8>,
    finder: memmem::Finder<'static>,
    /// Input not parsed yet.
    buf: Vec<u8>,
    /// Bytes fed so far.
    total: u64,
    /// Parts begun so far.
    parts: usize,
    state: State,
    form: Form,
}

#[derive(Debug)]
enum State {
    /// Before the first delimiter: skipped.
    Preamble,
    /// Right after a delimiter: `--` ends the body, CRLF (after optional
    /// spaces) begins a part.
    Delimiter,
    /// In a part's header block, which starts with the delimiter line's
    /// CRLF; the search for the blank line resumes at `scan`.
    Headers { scan: usize },
    /// In a text field's value.
    Field { name: String, value: Vec<u8> },
    /// In a file's data.
    File(FileWriter),
    /// After the close delimiter: skipped.
    Epilogue,
    /// An error was returned.
    Failed,
}

impl fmt::Debug for MultipartParser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultipartParser")
            .field("boundary", &String::from_utf8_lossy(&self.delimiter[4..]))
            .field("state", &self.state)
            .field("total", &self.total)
            .field("parts", &self.parts)
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl MultipartParser {
    /// A parser for a body sent with `content_type`, the request's
    /// `Content-Type` value: `multipart/form-data` with a `boundary`
    /// parameter, quoted or not, of 1 to 70 characters (RFC 2046).
    ///
    /// [`FormError::UnsupportedContentType`] for another type,
    /// [`FormError::BadBoundary`] for a missing or invalid boundary.
    ///
    /// ```
    /// use hvws::{FormError, FormLimits, MultipartParser};
    /// let limits = FormLimits::default();
    /// assert!(MultipartParser::new("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk", &limits).is_ok());
    /// assert!(matches!(MultipartParser::new("multipart/form-data", &limits), Err(FormError::BadBoundary(_))));
    /// ```
    pub fn new(content_type: &str, limits: &FormLimits) -> Result<MultipartParser, FormError> {
        let boundary = headers::boundary(content_type)?;
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(&boundary);
        Ok(MultipartParser {
            limits: limits.clone(),
            finder: memmem::Finder::new(&delimiter).into_owned(),
            delimiter,
            // The first delimiter has no CRLF before it when there is no
            // preamble; this one lets a single search find every delimiter.
            buf: b"\r\n".to_vec(),
            total: 0,
            parts: 0,
            state: State::Preamble,
            form: Form::default(),
        })
    }

    /// Parses the next piece of the body.
    ///
    /// An error is final: a later `feed` or `finish` returns
    /// [`FormError::Malformed`]. Bytes past [`FormLimits::max_total_size`]
    /// are a [`FormError::BodyTooLarge`], even in the epilogue.
    ///
    /// See [`MultipartParser`] for an example.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), FormError> {
        if matches!(self.state, State::Failed) {
            return Err(FormError::Malformed("fed again after an error"));
        }
        let result = self.feed_within_limit(data);
        if result.is_err() {
            // Drops the part being written, and with it its temporary file.
            self.state = State::Failed;
            self.buf = Vec::new();
        }
        result
    }

    /// The form, once the whole body was fed; [`FormError::Malformed`] if
    /// it ended before the closing boundary (`--boundary--`).
    ///
    /// See [`MultipartParser`] for an example.
    pub fn finish(self) -> Result<Form, FormError> {
        match self.state {
            State::Epilogue => Ok(self.form),
            State::Failed => Err(FormError::Malformed("finished after an error")),
            _ => Err(FormError::Malformed("the body ended before the closing boundary")),
        }
    }

    /// Bytes the parser holds in memory for the body it has not finished
    /// with: its input buffer and the current part's buffer (not the
    /// finished fields and files).
    pub(crate) fn buffered_bytes(&self) -> usize {
        let part = match &self.state {
            State::Field { value, .. } => value.capacity(),
            State::File(writer) => writer.buffered_bytes(),
            _ => 0,
        };
        self.buf.capacity() + part
    }

    /// Parses what fits under `max_total_size`, then fails if that was not
    /// all: the same bytes give the same result however they were split.
    fn feed_within_limit(&mut self, data: &[u8]) -> Result<(), FormError> {
        let room = self.limits.max_total_size - self.total;
        let allowed = &data[..data.len().min(usize::try_from(room).unwrap_or(usize::MAX))];
        // Buffer room for one slice, an unfinished header block and the
        // delimiter line before it.
        let cap = SLICE + MAX_PART_HEADER_BYTES + self.delimiter.len() + 4;
        for slice in allowed.chunks(SLICE) {
            if matches!(self.state, State::Epilogue) {
                break;
            }
            reserve_within(&mut self.buf, slice.len(), cap);
            self.buf.extend_from_slice(slice);
            self.parse()?;
        }
        self.total += allowed.len() as u64;
        if allowed.len() < data.len() {
            return Err(FormError::BodyTooLarge {
                limit: self.limits.max_total_size,
            });
        }
        Ok(())
    }

    /// Parses as much of the buffer as it can, then drops what was parsed.
    fn parse(&mut self) -> Result<(), FormError> {
        let mut pos = 0;
        while self.step(&mut pos)? {}
        self.buf.drain(..pos);
        Ok(())
    }

    /// One step of parsing at `buf[*pos..]`, advancing `pos` past what it
    /// used; `false` when it needs more input.
    fn step(&mut self, pos: &mut usize) -> Result<bool, FormError> {
        let data = &self.buf[*pos..];
        match &mut self.state {
            State::Preamble => {
                let (skip, found) = span_to_delimiter(&self.finder, &self.delimiter, data);
                *pos += skip;
                if found {
                    *pos += self.delimiter.len();
                    self.state = State::Delimiter;
                }
                Ok(found)
            }
            State::Delimiter => {
                // RFC 2046's transport padding: spaces and tabs a gateway
                // may have added after the boundary.
                let padding = data.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
                *pos += padding;
                let rest = &data[padding..];
                if rest.len() < 2 {
                    return Ok(false);
                }
                if rest.starts_with(b"--") {
                    *pos += 2;
                    self.state = State::Epilogue;
                    return Ok(true);
                }
                if !rest.starts_with(b"\r\n") {
                    return Err(FormError::Malformed("a boundary is followed by neither CRLF nor --"));
                }
                if self.parts == self.limits.max_parts {
                    return Err(FormError::TooManyParts {
                        limit: self.limits.max_parts,
                    });
                }
                self.parts += 1;
                // The CRLF stays: the header block's end is then always
                // "\r\n\r\n", an empty block's included.
                self.state = State::Headers { scan: 0 };
                Ok(true)
            }
            State::Headers { scan } => {
                // The block after the CRLF may be MAX_PART_HEADER_BYTES
                // long, its blank line included; look no further, so the
                // decision is the same however the input was split.
                let window = &data[..data.len().min(MAX_PART_HEADER_BYTES + 2)];
                let Some(found) = memmem::find(&window[*scan..], b"\r\n\r\n") else {
                    if window.len() == MAX_PART_HEADER_BYTES + 2 {
                        return Err(FormError::PartHeadersTooLarge {
                            limit: MAX_PART_HEADER_BYTES,
                        });
                    }
                    *scan = window.len().saturating_sub(3);
                    return Ok(false);
                };
                let end = *scan + found;
                let part = headers::parse_part(&data[2..end + 4])?;
                *pos += end + 4;
                self.state = if part.is_file {
                    State::File(FileWriter::new(part.name, part.file_name, part.content_type))
                } else {
                    State::Field {
                        name: part.name,
                        value: Vec::new(),
                    }
                };
                Ok(true)
            }
            State::Field { name, value } => {
                let (len, found) = span_to_delimiter(&self.finder, &self.delimiter, data);
                if value.len() + len > self.limits.max_field_size {
                    return Err(FormError::FieldTooLarge {
                        name: name.clone(),
                        limit: self.limits.max_field_size,
                    });
                }
                reserve_within(value, len, self.limits.max_field_size);
                value.extend_from_slice(&data[..len]);
                *pos += len;
                if found {
                    self.end_part(pos)?;
                }
                Ok(found)
            }
            State::File(writer) => {
                let (len, found) = span_to_delimiter(&self.finder, &self.delimiter, data);
                writer.write(&data[..len], &self.limits)?;
                *pos += len;
                if found {
                    self.end_part(pos)?;
                }
                Ok(found)
            }
            State::Epilogue => {
                *pos = self.buf.len();
                Ok(false)
            }
            State::Failed => Err(FormError::Malformed("fed again after an error")),
        }
    }

    /// Adds the part whose data just ended to the form and steps over the
    /// delimiter at `buf[*pos..]`.
    fn end_part(&mut self, pos: &mut usize) -> Result<(), FormError> {
        *pos += self.delimiter.len();
        match std::mem::replace(&mut self.state, State::Delimiter) {
            State::Field { name, value } => match String::from_utf8(value) {
                Ok(value) => self.form.push_field(name, value),
                Err(_) => return Err(FormError::NotUtf8 { name }),
            },
            State::File(writer) => {
                if let Some(file) = writer.finish()? {
                    self.form.push_file(file);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// How many bytes of `data` come before the delimiter, and whether it was
/// found. When it was not, the bytes that may begin it (a suffix of `data`
/// that is a prefix of the delimiter) are not counted: they are kept for
/// the next piece.
fn span_to_delimiter(finder: &memmem::Finder<'_>, delimiter: &[u8], data: &[u8]) -> (usize, bool) {
    if let Some(at) = finder.find(data) {
        return (at, true);
    }
    // Every delimiter starts with '\r': check each '\r' in the last
    // delimiter-length bytes, the earliest first (the longest candidate).
    let tail_start = data.len().saturating_sub(delimiter.len() - 1);
    let kept = memchr::memchr_iter(b'\r', &data[tail_start..])
        .map(|i| tail_start + i)
        .find(|&i| delimiter.starts_with(&data[i..]))
        .map_or(0, |i| data.len() - i);
    (data.len() - kept, false)
}

/// Makes room for `extra` more bytes in `buf`, doubling as `Vec` does (so
/// byte-by-byte input stays linear) but not past `cap` when the need fits
/// under it, so a buffer's capacity stays within the limit that bounds its
/// length.
pub(crate) fn reserve_within(buf: &mut Vec<u8>, extra: usize, cap: usize) {
    let need = buf.len() + extra;
    if need > buf.capacity() {
        let doubled = buf.capacity() * 2;
        let target = if need <= cap {
            doubled.clamp(need, cap)
        } else {
            doubled.max(need)
        };
        buf.reserve_exact(target - buf.len());
    }
}
