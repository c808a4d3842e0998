//! A request head's target and headers kept in one string with a table of
//! offsets, so that parsing a head allocates once (the string) instead of
//! twice per header. The owned `(String, String)` pairs that
//! [`HttpRequest::headers`](super::http::HttpRequest::headers) returns are
//! built on its first call and kept.
//!
//! Header names are stored lower-cased (as `headers()` has always returned
//! them); lookups compare case-insensitively, so a caller may ask in any
//! case.

use std::fmt;
use std::sync::OnceLock;

/// How many offsets fit without a heap table: the target's end and a name
/// and a value for each of 15 headers (a browser's request has about 14).
const INLINE: usize = 31;

/// `text` is the target, then each header's lower-cased name and its
/// value, back to back; `ends` says where each piece ends.
#[derive(Clone, Default)]
pub(crate) struct HeadText {
    text: String,
    ends: Ends,
    /// [`HeadText::owned`]'s pairs, made when first asked for.
    owned: Lazy,
}

/// The end offsets of a head's pieces: inline while there are few and the
/// text is under 64 KiB (every head with the default 8 KiB limit and up to
/// 15 headers), else on the heap.
#[derive(Clone)]
enum Ends {
    Inline { len: u8, ends: [u16; INLINE] },
    Heap(Vec<u32>),
}

impl Default for Ends {
    fn default() -> Ends {
        Ends::Inline {
            len: 0,
            ends: [0; INLINE],
        }
    }
}

impl Ends {
    #[inline]
    fn push(&mut self, end: usize) {
        if let Ends::Inline { len, ends } = self {
            if let (Some(slot), Ok(end)) = (ends.get_mut(usize::from(*len)), u16::try_from(end)) {
                *slot = end;
                *len += 1;
                return;
            }
        }
        self.push_heap(end);
    }

    /// [`Ends::push`] past the inline table's room or range.
    #[cold]
    fn push_heap(&mut self, end: usize) {
        match self {
            Ends::Inline { len, ends } => {
                let mut heap: Vec<u32> = ends[..usize::from(*len)].iter().map(|&e| u32::from(e)).collect();
                heap.push(end_u32(end));
                *self = Ends::Heap(heap);
            }
            Ends::Heap(heap) => heap.push(end_u32(end)),
        }
    }

    #[inline]
    fn len(&self) -> usize {
        match self {
            Ends::Inline { len, .. } => usize::from(*len),
            Ends::Heap(heap) => heap.len(),
        }
    }

    #[inline]
    fn get(&self, i: usize) -> usize {
        match self {
            Ends::Inline { ends, .. } => usize::from(ends[i]),
            Ends::Heap(heap) => heap[i] as usize,
        }
    }
}

/// Heads are capped far below 4 GiB (`max_request_head`), and so are the
/// heads a program builds; one that were not would be a bug worth a panic
/// rather than a mis-sliced header.
fn end_u32(end: usize) -> u32 {
    u32::try_from(end).expect("a request head under 4 GiB")
}

/// Owned (name, value) pairs made from a borrowed form on first use and
/// kept: what `headers()` returns for requests and responses, which store
/// their headers more cheaply. Reset it whenever the headers change.
///
/// Boxed, so an empty one is two words: requests and responses are moved
/// several times on their way, and most never build it.
#[derive(Clone, Default)]
#[allow(clippy::box_collection)]
pub(crate) struct Lazy(OnceLock<Box<Vec<(String, String)>>>);

impl Lazy {
    /// The pairs, made by `make` on the first call.
    pub(crate) fn get<'a, I>(&self, make: impl FnOnce() -> I) -> &[(String, String)]
    where
        I: Iterator<Item = (&'a str, &'a str)>,
    {
        self.0
            .get_or_init(|| Box::new(make().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()))
    }

    /// Forgets the pairs (the headers changed).
    #[inline]
    pub(crate) fn reset(&mut self) {
        if self.0.get().is_some() {
            self.0 = OnceLock::new();
        }
    }

    /// Whether the pairs were made (for tests).
    #[cfg(test)]
    pub(crate) fn is_made(&self) -> bool {
        self.0.get().is_some()
    }
}

impl HeadText {
    /// A head with `target` and no headers.
    pub(crate) fn new(target: &str) -> HeadText {
        let mut head = HeadText {
            text: target.to_owned(),
            ..HeadText::default()
        };
        head.ends.push(target.len());
        head
    }

    /// The request target.
    pub(crate) fn target(&self) -> &str {
        &self.text[..self.ends.get(0)]
    }

    /// How many headers there are.
    pub(crate) fn len(&self) -> usize {
        self.ends.len().saturating_sub(1) / 2
    }

    /// Every header as (lower-cased name, value), borrowed, in order.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        (0..self.len()).map(move |i| {
            let start = self.ends.get(2 * i);
            let mid = self.ends.get(2 * i + 1);
            let end = self.ends.get(2 * i + 2);
            (&self.text[start..mid], &self.text[mid..end])
        })
    }

    /// The values of header `name` (any case), in order.
    pub(crate) fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        (0..self.len()).filter_map(move |i| self.value_if(i, name))
    }

    /// The first value of header `name` (any case).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        (0..self.len()).find_map(|i| self.value_if(i, name))
    }

    /// Header `i`'s value if its name is `name` (any case). The lengths
    /// are compared before any text is: a lookup passes most headers of a
    /// browser's request at that cost.
    #[inline]
    fn value_if(&self, i: usize, name: &str) -> Option<&str> {
        let start = self.ends.get(2 * i);
        let mid = self.ends.get(2 * i + 1);
        if mid - start != name.len() || !self.text[start..mid].eq_ignore_ascii_case(name) {
            return None;
        }
        Some(&self.text[mid..self.ends.get(2 * i + 2)])
    }

    /// Adds a header, lower-casing its name.
    pub(crate) fn push(&mut self, name: &str, value: &str) {
        self.owned.reset();
        self.text.extend(name.chars().map(|c| c.to_ascii_lowercase()));
        self.ends.push(self.text.len());
        self.text.push_str(value);
        self.ends.push(self.text.len());
    }

    /// Removes every value of header `name` (any case).
    pub(crate) fn remove(&mut self, name: &str) {
        if self.get(name).is_none() {
            return;
        }
        let mut kept = HeadText::new(self.target());
        for (k, v) in self.pairs().filter(|(k, _)| !k.eq_ignore_ascii_case(name)) {
            kept.push(k, v);
        }
        *self = kept;
    }

    /// The capacity of the text's buffer.
    pub(crate) fn capacity(&self) -> usize {
        self.text.capacity()
    }

    /// Empties the head and gives its buffer for another head to be built
    /// in.
    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(self).text.into_bytes();
        buf.clear();
        buf
    }

    /// Every header as owned (lower-cased name, value) pairs, made on the
    /// first call.
    pub(crate) fn owned(&self) -> &[(String, String)] {
        self.owned.get(|| self.pairs())
    }

    /// The bytes the head holds on the heap (text and offset table), for
    /// tests that pin sizes.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        let table = match &self.ends {
            Ends::Inline { .. } => 0,
            Ends::Heap(heap) => heap.capacity() * 4,
        };
        self.text.capacity() + table
    }
}

impl fmt::Debug for HeadText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeadText")
            .field("target", &self.target())
            .field("headers", &self.pairs().collect::<Vec<_>>())
            .finish()
    }
}

/// Builds a [`HeadText`] from a parsed head's raw pieces in one buffer,
/// checking UTF-8 once for the whole head at the end.
pub(crate) struct HeadBuilder {
    bytes: Vec<u8>,
    ends: Ends,
}

impl HeadBuilder {
    /// A builder for `target`, with room for `capacity` bytes of text (the
    /// head's length is enough: the pieces are the head minus its syntax),
    /// in `bytes` (an empty buffer to reuse, or a new one).
    pub(crate) fn new(target: &str, capacity: usize, mut bytes: Vec<u8>) -> HeadBuilder {
        bytes.clear();
        bytes.reserve(capacity.max(target.len()));
        bytes.extend_from_slice(target.as_bytes());
        let mut ends = Ends::default();
        ends.push(bytes.len());
        HeadBuilder { bytes, ends }
    }

    /// Adds a header: `name` (a token, ASCII) lower-cased, `value` as sent.
    pub(crate) fn push(&mut self, name: &str, value: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes[start..].make_ascii_lowercase();
        self.ends.push(self.bytes.len());
        self.bytes.extend_from_slice(value);
        self.ends.push(self.bytes.len());
    }

    /// The head. A value that is not UTF-8 (RFC 9110 §5.5 allows obs-text,
    /// bytes 0x80-0xFF, which clients rarely send) has each invalid
    /// sequence replaced by U+FFFD, as `String::from_utf8_lossy` does:
    /// headers are read as `&str`, and a lossy value is what hvws has
    /// always given.
    pub(crate) fn finish(self) -> HeadText {
        let HeadBuilder { bytes, ends } = self;
        match String::from_utf8(bytes) {
            Ok(text) => HeadText {
                text,
                ends,
                owned: Lazy::default(),
            },
            Err(e) => {
                let bytes = e.into_bytes();
                let piece = |i: usize| {
                    let start = if i == 0 { 0 } else { ends.get(i - 1) };
                    String::from_utf8_lossy(&bytes[start..ends.get(i)])
                };
                let mut head = HeadText::new(&piece(0));
                for i in (1..ends.len()).step_by(2) {
                    head.push(&piece(i), &piece(i + 1));
                }
                head
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(target: &str, headers: &[(&str, &[u8])]) -> HeadText {
        let mut b = HeadBuilder::new(target, 64, Vec::new());
        for (k, v) in headers {
            b.push(k, v);
        }
        b.finish()
    }

    #[test]
    fn case_insensitive_lookup_and_repeats_in_order() {
        let h = build(
            "/a?b",
            &[("Host", b"x"), ("Cookie", b"a=1"), ("X-Y", b""), ("cookie", b"b=2")],
        );
        assert_eq!(h.target(), "/a?b");
        assert_eq!(h.len(), 4);
        assert_eq!(h.get("HOST"), Some("x"));
        assert_eq!(h.get("x-y"), Some(""));
        assert_eq!(h.get("nope"), None);
        assert_eq!(h.values("COOKIE").collect::<Vec<_>>(), ["a=1", "b=2"]);
        let names: Vec<&str> = h.pairs().map(|(k, _)| k).collect();
        assert_eq!(names, ["host", "cookie", "x-y", "cookie"]);
    }

    #[test]
    fn a_value_that_is_not_utf8_is_lossy_and_the_rest_intact() {
        let h = build("/", &[("A", b"ok"), ("B", b"caf\xe9 \xff!"), ("C", "é".as_bytes())]);
        assert_eq!(h.get("a"), Some("ok"));
        assert_eq!(h.get("b"), Some("caf\u{fffd} \u{fffd}!"));
        assert_eq!(h.get("c"), Some("é"));
        assert_eq!(h.target(), "/");
    }

    #[test]
    fn owned_pairs_are_built_once_and_remade_after_a_change() {
        let mut h = build("/", &[("Host", b"x")]);
        let first = h.owned().as_ptr();
        assert_eq!(h.owned(), [("host".to_owned(), "x".to_owned())]);
        assert_eq!(h.owned().as_ptr(), first, "kept, not rebuilt");
        h.push("X-Id", "7");
        assert_eq!(h.owned().len(), 2);
        h.remove("HOST");
        assert_eq!(h.owned(), [("x-id".to_owned(), "7".to_owned())]);
        assert_eq!(h.target(), "/");
    }

    #[test]
    fn many_headers_and_long_heads_move_the_table_to_the_heap() {
        let mut b = HeadBuilder::new("/", 0, Vec::new());
        let names: Vec<String> = (0..64).map(|i| format!("H{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            b.push(n, i.to_string().as_bytes());
        }
        let h = b.finish();
        assert_eq!(h.len(), 64);
        assert_eq!(h.get("h63"), Some("63"));
        assert_eq!(h.pairs().nth(15), Some(("h15", "15")));
        let long = "v".repeat(70_000);
        let h = build("/", &[("A", b"1"), ("Big", long.as_bytes()), ("Z", b"2")]);
        assert_eq!((h.get("a"), h.get("z")), (Some("1"), Some("2")));
        assert_eq!(h.get("big").map(str::len), Some(70_000));
    }

    #[test]
    fn one_allocation_for_a_small_head() {
        // The text is the only heap block while the table is inline.
        let h = build("/hello", &[("Host", b"127.0.0.1:9001")]);
        assert_eq!(h.heap_bytes(), 64, "the builder's one buffer, no table");
        assert!(matches!(h.ends, Ends::Inline { len: 3, .. }));
    }
}
