//! A file's validators (ETag, Last-Modified) and what a request's
//! conditional and range headers make of them (RFC 9110 §8.8, §13, §14).
//! Pure functions over header values: no file system here, so every rule
//! is tested on strings.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::proto::http::{HttpRequest, Method};

/// The last second `httpdate` can write (9999-12-31T23:59:59Z); it panics
/// past it, and before the epoch.
const LAST_HTTP_DATE: u64 = 253_402_300_799;

/// What identifies one version of a file: sent as `ETag` and
/// `Last-Modified`, compared with the request's conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Validators {
    /// The strong entity tag with its quotes: `"<len hex>-<mtime nanos hex>"`.
    pub(super) etag: String,
    /// The modification time in whole seconds since the epoch, `None` when
    /// the platform has none or it cannot be written as an HTTP-date.
    pub(super) modified: Option<u64>,
}

impl Validators {
    /// The validators of a file of `len` bytes last modified at `mtime`.
    ///
    /// The tag is strong although it is derived from metadata, not content:
    /// a file rewritten with the same length within the same nanosecond
    /// would keep its tag, which file systems with nanosecond timestamps
    /// make unlikely enough (nginx and Go's `http.ServeContent` users make
    /// the same trade to avoid hashing every file).
    pub(super) fn new(len: u64, mtime: Option<SystemTime>) -> Validators {
        let since_epoch = mtime.and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        let etag = match since_epoch {
            Some(d) => format!("\"{len:x}-{:x}\"", d.as_nanos()),
            None => format!("\"{len:x}\""),
        };
        let modified = since_epoch.map(|d| d.as_secs()).filter(|&s| s <= LAST_HTTP_DATE);
        Validators { etag, modified }
    }

    /// The `Last-Modified` value (an IMF-fixdate), if there is one.
    pub(super) fn last_modified(&self) -> Option<String> {
        self.modified
            .map(|s| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s)))
    }
}

/// What the preconditions of a request say (RFC 9110 §13.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Precondition {
    /// Go on: serve the file (or the range).
    Proceed,
    /// 304: the client's copy is current.
    NotModified,
    /// 412: `If-Match` or `If-Unmodified-Since` failed.
    Failed,
}

/// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match` and
/// `If-Modified-Since` in the order RFC 9110 §13.2.2 gives: each of the
/// second pair is ignored when the first of its pair is present.
pub(super) fn preconditions(req: &HttpRequest, v: &Validators) -> Precondition {
    if let Some(value) = list_header(req, "if-match") {
        // `*` matches any current representation, and the file exists.
        if !(is_star(&value) || entity_tags(&value).iter().any(|t| strong_eq(*t, &v.etag))) {
            return Precondition::Failed;
        }
    } else if let (Some(date), Some(modified)) = (req.header("if-unmodified-since").and_then(parse_date), v.modified) {
        if modified > date {
            return Precondition::Failed;
        }
    }
    let get_or_head = matches!(req.method(), Method::Get | Method::Head);
    if let Some(value) = list_header(req, "if-none-match") {
        // Present, it decides alone: If-Modified-Since is not looked at,
        // since a tag says more than a one-second timestamp.
        let matched = is_star(&value) || entity_tags(&value).iter().any(|t| weak_eq(*t, &v.etag));
        if matched && get_or_head {
            return Precondition::NotModified;
        }
    } else if let (true, Some(date), Some(modified)) = (
        get_or_head,
        req.header("if-modified-since").and_then(parse_date),
        v.modified,
    ) {
        if modified <= date {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// What a request's `Range` asks of a file of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RangeAnswer {
    /// 200 with the whole file: no Range, one we ignore, or an `If-Range`
    /// that no longer holds.
    Full,
    /// 206 with `len` bytes from `start`.
    Partial {
        /// First byte.
        start: u64,
        /// Bytes from `start`, at least 1.
        len: u64,
    },
    /// 416: no byte of the range is in the file.
    Unsatisfiable,
}

/// The `Range` answer for `req` (RFC 9110 §14.2): ranges are defined for
/// GET only, so HEAD and every other method get the whole file; `If-Range`
/// must hold for the range to count.
pub(super) fn range(req: &HttpRequest, v: &Validators, size: u64) -> RangeAnswer {
    if *req.method() != Method::Get {
        return RangeAnswer::Full;
    }
    let Some(value) = list_header(req, "range") else {
        return RangeAnswer::Full;
    };
    match req.header("if-range") {
        Some(cond) if !if_range_holds(cond, v) => RangeAnswer::Full,
        _ => parse_range(&value, size),
    }
}

/// Reads one `Range` value against a file of `size` bytes.
///
/// One range only: a request for several gets the whole file, because a
/// `multipart/byteranges` answer is something browsers and players never
/// ask for and RFC 9110 §14.2 lets a server ignore `Range` altogether. A
/// value that does not parse, or another unit than `bytes`, is ignored the
/// same way.
pub(super) fn parse_range(value: &str, size: u64) -> RangeAnswer {
    let Some((unit, set)) = value.split_once('=') else {
        return RangeAnswer::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeAnswer::Full;
    }
    // A list may hold empty elements (RFC 9110 §5.6.1); they do not count.
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return RangeAnswer::Full;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeAnswer::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let answer = if first.is_empty() {
        // `-n`: the last n bytes (all of them if the file is shorter).
        let Some(n) = number(last) else {
            return RangeAnswer::Full;
        };
        let n = n.min(size);
        (n > 0).then(|| (size - n, n))
    } else {
        let Some(first) = number(first) else {
            return RangeAnswer::Full;
        };
        let last = if last.is_empty() {
            u64::MAX
        } else {
            match number(last) {
                Some(last) if last >= first => last,
                _ => return RangeAnswer::Full,
            }
        };
        // A last byte past the end means "to the end".
        (first < size).then(|| (first, last.min(size - 1) - first + 1))
    };
    match answer {
        Some((start, len)) => RangeAnswer::Partial { start, len },
        None => RangeAnswer::Unsatisfiable,
    }
}

/// Whether an `If-Range` value still describes the file (RFC 9110
/// §13.1.5): a strong tag equal to ours, or exactly our Last-Modified. A
/// weak tag or a date that does not parse never holds, so the client gets
/// the whole file rather than a piece of another version.
pub(super) fn if_range_holds(value: &str, v: &Validators) -> bool {
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return match entity_tags(value).as_slice() {
            [tag] => strong_eq(*tag, &v.etag),
            _ => false,
        };
    }
    matches!((parse_date(value), v.modified), (Some(date), Some(modified)) if date == modified)
}

/// One entity tag from a request: whether it was marked weak, and its
/// opaque part with the quotes.
type Tag<'a> = (bool, &'a str);

/// The entity tags of a list header (`"a", W/"b"`). A value that does not
/// parse as such a list gives no tags, so it matches nothing: no 304 for a
/// garbled `If-None-Match`, a 412 for a garbled `If-Match`.
fn entity_tags(value: &str) -> Vec<Tag<'_>> {
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return tags;
        }
        let weak = rest.starts_with("W/");
        if weak {
            rest = &rest[2..];
        }
        // The opaque tag is a quoted run without inner quotes; a comma may
        // be inside it, so the list is not split on commas first.
        let Some(end) = rest.strip_prefix('"').and_then(|r| r.find('"')) else {
            return Vec::new();
        };
        let (tag, after) = rest.split_at(end + 2);
        tags.push((weak, tag));
        rest = after.trim_start_matches([' ', '\t']);
        if !(rest.is_empty() || rest.starts_with(',')) {
            return Vec::new();
        }
    }
}

/// Strong comparison: neither tag weak, same opaque part.
fn strong_eq((weak, tag): Tag<'_>, ours: &str) -> bool {
    !weak && tag == ours
}

/// Weak comparison: same opaque part, weakness aside.
fn weak_eq((_, tag): Tag<'_>, ours: &str) -> bool {
    tag == ours
}

fn is_star(value: &str) -> bool {
    value.trim() == "*"
}

/// Every line of a header joined with `, `: a list header may be split
/// over several lines (RFC 9110 §5.3) and they mean one list.
fn list_header(req: &HttpRequest, name: &str) -> Option<String> {
    let mut values = req.header_values(name);
    let first = values.next()?;
    Some(values.fold(first.to_owned(), |all, v| all + ", " + v))
}

/// An HTTP-date (any of its three forms) in seconds since the epoch; a
/// value that is not one is ignored, as RFC 9110 §13.1.3-4 require.
fn parse_date(value: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(value.trim()).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// Digits only (no sign, no space): a position past `u64::MAX` is as good
/// as the end of any file.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2001-09-09T01:46:40Z plus half a second.
    fn v() -> Validators {
        Validators::new(1000, Some(UNIX_EPOCH + Duration::from_millis(1_000_000_000_500)))
    }

    const TAG: &str = "\"3e8-de0b6b3c5316500\"";
    const DATE: &str = "Sun, 09 Sep 2001 01:46:40 GMT";

    fn get(headers: &[(&str, &str)]) -> HttpRequest {
        with(Method::Get, headers)
    }

    fn with(method: Method, headers: &[(&str, &str)]) -> HttpRequest {
        headers
            .iter()
            .fold(HttpRequest::builder(method, "/f"), |b, (k, val)| b.header(k, val))
            .build()
    }

    #[track_caller]
    fn check(headers: &[(&str, &str)], want: Precondition) {
        assert_eq!(preconditions(&get(headers), &v()), want, "{headers:?}");
    }

    #[test]
    fn validators_come_from_length_and_mtime() {
        assert_eq!(v().etag, TAG);
        assert_eq!(v().last_modified().as_deref(), Some(DATE));
        assert_eq!(Validators::new(0, None).etag, "\"0\"");
        assert_eq!(Validators::new(0, None).last_modified(), None);
        // Before the epoch or past year 9999 there is no HTTP-date to send
        // (httpdate would panic), but the tag still changes with the time.
        let early = Validators::new(1, UNIX_EPOCH.checked_sub(Duration::from_secs(10)));
        assert_eq!((early.etag.as_str(), early.modified), ("\"1\"", None));
        let late = Validators::new(1, Some(UNIX_EPOCH + Duration::from_secs(LAST_HTTP_DATE + 1)));
        assert_eq!(late.modified, None);
        assert_eq!(
            late.etag,
            format!("\"1-{:x}\"", (LAST_HTTP_DATE + 1) as u128 * 1_000_000_000)
        );
    }

    #[test]
    fn if_none_match_lists_star_and_weak_tags() {
        check(&[("If-None-Match", TAG)], Precondition::NotModified);
        check(
            &[("If-None-Match", &format!("\"a\", {TAG}"))],
            Precondition::NotModified,
        );
        check(
            &[("If-None-Match", &format!("\"a,b\" ,\t{TAG} ,"))],
            Precondition::NotModified,
        );
        check(&[("If-None-Match", &format!("W/{TAG}"))], Precondition::NotModified);
        check(&[("If-None-Match", " * ")], Precondition::NotModified);
        check(&[("If-None-Match", "\"a\", W/\"b\"")], Precondition::Proceed);
        // A list split over two header lines is one list.
        check(
            &[("If-None-Match", "\"a\""), ("If-None-Match", TAG)],
            Precondition::NotModified,
        );
        // Unquoted or trailing garbage: matches nothing.
        check(&[("If-None-Match", &TAG[1..TAG.len() - 1])], Precondition::Proceed);
        check(&[("If-None-Match", &format!("{TAG} x"))], Precondition::Proceed);
        check(&[("If-None-Match", "\"unterminated")], Precondition::Proceed);
    }

    #[test]
    fn if_modified_since_compares_whole_seconds() {
        check(&[("If-Modified-Since", DATE)], Precondition::NotModified);
        check(
            &[("If-Modified-Since", "Sun, 09 Sep 2001 01:46:41 GMT")],
            Precondition::NotModified,
        );
        check(
            &[("If-Modified-Since", "Sun, 09 Sep 2001 01:46:39 GMT")],
            Precondition::Proceed,
        );
        // RFC 850 and asctime forms are HTTP-dates too.
        check(
            &[("If-Modified-Since", "Sunday, 09-Sep-01 01:46:40 GMT")],
            Precondition::NotModified,
        );
        check(
            &[("If-Modified-Since", "Sun Sep  9 01:46:40 2001")],
            Precondition::NotModified,
        );
        check(&[("If-Modified-Since", "yesterday")], Precondition::Proceed);
        check(&[("If-Modified-Since", "")], Precondition::Proceed);
        // Without a Last-Modified of ours there is nothing to compare.
        let no_mtime = Validators::new(1000, None);
        assert_eq!(
            preconditions(&get(&[("If-Modified-Since", DATE)]), &no_mtime),
            Precondition::Proceed
        );
    }

    #[test]
    fn if_none_match_overrides_if_modified_since() {
        check(
            &[("If-None-Match", "\"old\""), ("If-Modified-Since", DATE)],
            Precondition::Proceed,
        );
        check(
            &[
                ("If-None-Match", TAG),
                ("If-Modified-Since", "Sun, 09 Sep 2001 01:46:39 GMT"),
            ],
            Precondition::NotModified,
        );
    }

    #[test]
    fn not_modified_only_for_get_and_head() {
        let head = with(Method::Head, &[("If-None-Match", TAG)]);
        assert_eq!(preconditions(&head, &v()), Precondition::NotModified);
        let post = with(Method::Post, &[("If-None-Match", TAG), ("If-Modified-Since", DATE)]);
        assert_eq!(preconditions(&post, &v()), Precondition::Proceed);
    }

    #[test]
    fn if_match_and_if_unmodified_since_fail_with_412() {
        check(&[("If-Match", TAG)], Precondition::Proceed);
        check(&[("If-Match", "*")], Precondition::Proceed);
        check(&[("If-Match", &format!("\"x\", {TAG}"))], Precondition::Proceed);
        check(&[("If-Match", "\"x\"")], Precondition::Failed);
        // If-Match compares strongly: a weak tag never matches.
        check(&[("If-Match", &format!("W/{TAG}"))], Precondition::Failed);
        check(&[("If-Match", "garbage")], Precondition::Failed);
        check(&[("If-Unmodified-Since", DATE)], Precondition::Proceed);
        check(
            &[("If-Unmodified-Since", "Sun, 09 Sep 2001 01:46:39 GMT")],
            Precondition::Failed,
        );
        check(&[("If-Unmodified-Since", "not a date")], Precondition::Proceed);
        // If-Match present: If-Unmodified-Since is not looked at.
        check(
            &[
                ("If-Match", TAG),
                ("If-Unmodified-Since", "Sun, 09 Sep 2001 01:46:39 GMT"),
            ],
            Precondition::Proceed,
        );
        // A failed If-Match wins over a matching If-None-Match.
        check(&[("If-Match", "\"x\""), ("If-None-Match", TAG)], Precondition::Failed);
    }

    #[track_caller]
    fn partial(value: &str, size: u64, start: u64, len: u64) {
        assert_eq!(parse_range(value, size), RangeAnswer::Partial { start, len }, "{value}");
    }

    #[test]
    fn single_ranges() {
        partial("bytes=0-99", 1000, 0, 100);
        partial("bytes=100-", 1000, 100, 900);
        partial("bytes=-100", 1000, 900, 100);
        partial("bytes=999-999", 1000, 999, 1);
        partial("BYTES = 5 - 9", 1000, 5, 5);
        partial("bytes=0-99,", 1000, 0, 100);
        // Past the end: cut to the end; a suffix longer than the file: all.
        partial("bytes=900-5000", 1000, 900, 100);
        partial("bytes=0-99999999999999999999999", 1000, 0, 1000);
        partial("bytes=-5000", 1000, 0, 1000);
        partial("bytes=-99999999999999999999999", 1000, 0, 1000);
    }

    #[test]
    fn unsatisfiable_ranges() {
        for value in [
            "bytes=1000-",
            "bytes=1000-2000",
            "bytes=-0",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(parse_range(value, 1000), RangeAnswer::Unsatisfiable, "{value}");
        }
        for value in ["bytes=0-", "bytes=-1", "bytes=0-0"] {
            assert_eq!(parse_range(value, 0), RangeAnswer::Unsatisfiable, "{value}");
        }
    }

    #[test]
    fn ranges_we_ignore() {
        for value in [
            "bytes=0-1,5-6",
            "bytes=0-1, -5",
            "items=0-1",
            "bytes 0-1",
            "bytes=",
            "bytes=-",
            "bytes=5-4",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=0x10-",
            "bytes=1",
            "=0-1",
        ] {
            assert_eq!(parse_range(value, 1000), RangeAnswer::Full, "{value}");
        }
    }

    #[test]
    fn range_is_for_get_only_and_needs_if_range_to_hold() {
        let answer = |req: &HttpRequest| range(req, &v(), 1000);
        let part = RangeAnswer::Partial { start: 0, len: 10 };
        assert_eq!(answer(&get(&[("Range", "bytes=0-9")])), part);
        assert_eq!(
            answer(&with(Method::Head, &[("Range", "bytes=0-9")])),
            RangeAnswer::Full
        );
        assert_eq!(answer(&get(&[])), RangeAnswer::Full);
        assert_eq!(answer(&get(&[("Range", "bytes=0-9"), ("If-Range", TAG)])), part);
        assert_eq!(answer(&get(&[("Range", "bytes=0-9"), ("If-Range", DATE)])), part);
        for stale in [
            "\"other\"",
            &format!("W/{TAG}"),
            "Sun, 09 Sep 2001 01:46:41 GMT",
            "Sun, 09 Sep 2001 01:46:39 GMT",
            "not a date",
        ] {
            let req = get(&[("Range", "bytes=0-9"), ("If-Range", stale)]);
            assert_eq!(answer(&req), RangeAnswer::Full, "If-Range: {stale}");
        }
        // Two Range lines are two ranges: the whole file.
        let twice = get(&[("Range", "bytes=0-9"), ("Range", "bytes=20-29")]);
        assert_eq!(answer(&twice), RangeAnswer::Full);
    }
}
