//! The HTTP client's fuzz entry points: its response parser (`Exchange`)
//! and the SSE reader. (The multipart form parser, which lives above the
//! core, has its entry point in `crate::http::fuzzing`.)

/// What one [`Exchange`](crate::proto::http_client::Exchange) made of a response.
#[derive(Debug, PartialEq, Eq)]
struct ExchangeOutcome {
    head: Option<crate::proto::http_client::ResponseHead>,
    body: Vec<u8>,
    /// `Some(Ok(reusable))` after `Done`, `Some(Err)` after `Failed`.
    end: Option<Result<bool, crate::proto::http_client::ExchangeError>>,
}

/// The client's [`Exchange`](crate::proto::http_client::Exchange) fed arbitrary
/// server bytes, whole and in pieces, with small caps. The first byte picks
/// the piece size (its low 6 bits, 1-64), whether the request was a HEAD
/// (bit 6) and the head cap (bit 7: 256 bytes, else 4096); the body cap is
/// 2048. After the input comes the end of the connection.
///
/// Both ways must give the same head, the same end (done, and then whether
/// the connection is reusable, or the same error) and, when done, the same
/// body; a failed one's bodies are prefixes of one another. One head at
/// most, body pieces never empty and only after it, nothing after the end,
/// the body within its cap (and none for HEAD, 204, 304), the input always
/// used up.
pub fn http_response(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(control & 0x3f) + 1;
    let head_request = control & 0x40 != 0;
    let limits = crate::proto::http_client::ExchangeLimits {
        max_head: if control & 0x80 != 0 { 256 } else { 4096 },
        max_body: 2048,
    };
    let whole = run_exchange(head_request, limits, [rest]);
    let pieces = run_exchange(head_request, limits, rest.chunks(piece));
    match (&whole.end, &pieces.end) {
        (Some(Ok(_)), _) | (_, Some(Ok(_))) | (None, _) | (_, None) => {
            assert_eq!(whole, pieces, "in pieces of {piece}");
        }
        (Some(Err(a)), Some(Err(b))) => {
            assert_eq!((&whole.head, a), (&pieces.head, b), "in pieces of {piece}");
            let n = whole.body.len().min(pieces.body.len());
            assert_eq!(whole.body[..n], pieces.body[..n], "in pieces of {piece}");
        }
    }
}

fn run_exchange<'a>(
    head_request: bool,
    limits: crate::proto::http_client::ExchangeLimits,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> ExchangeOutcome {
    use crate::proto::http_client::{Exchange, ExchangeEvent, ExchangeTimers, RequestHead};
    let req = RequestHead {
        method: if head_request { "HEAD" } else { "GET" },
        target: "/",
        host: "fuzz",
        headers: &[],
        body: None,
    };
    let mut ex = Exchange::new(&req, limits, ExchangeTimers::default(), true).expect("a valid request");
    ex.transmit().clear();
    let mut out = ExchangeOutcome {
        head: None,
        body: Vec::new(),
        end: None,
    };
    let take = |ev: ExchangeEvent<'_>, ex: &Exchange, out: &mut ExchangeOutcome| {
        assert!(out.end.is_none(), "{ev:?} after the end");
        match ev {
            ExchangeEvent::Head(head) => {
                assert!(out.head.is_none(), "a second head");
                assert!(head.status() >= 200, "an interim head handed out");
                out.head = Some(head);
            }
            ExchangeEvent::Data(d) => {
                assert!(!d.is_empty(), "an empty body piece");
                let head = out.head.as_ref().expect("body before the head");
                assert!(
                    !head_request && !matches!(head.status(), 204 | 304),
                    "a body where none may be"
                );
                out.body.extend_from_slice(d);
                assert!(out.body.len() as u64 <= limits.max_body, "past the body cap");
            }
            ExchangeEvent::Done => {
                assert!(out.head.is_some(), "done without a head");
                out.end = Some(Ok(false));
            }
            ExchangeEvent::Failed(e) => out.end = Some(Err(e)),
        }
        assert!(ex.body_received() >= out.body.len() as u64);
    };
    for piece in pieces {
        let mut input = piece;
        while let Some(ev) = ex.poll_input(&mut input) {
            take(ev, &ex, &mut out);
        }
        assert!(input.is_empty(), "input left over");
    }
    if let Some(ev) = ex.handle_eof() {
        take(ev, &ex, &mut out);
    }
    assert!(ex.is_finished(), "the end of the connection ends the exchange");
    assert!(out.end.is_some(), "no end reported");
    if let Some(Ok(reusable)) = &mut out.end {
        *reusable = ex.is_reusable();
    }
    out
}

/// The SSE reader ([`SseReader`](crate::proto::sse_reader::SseReader)) fed
/// arbitrary bytes, whole and in pieces. The first byte picks the piece
/// size (its low 6 bits, 1-64) and the cap (bit 6: 64 bytes, else 4096).
/// Both ways must give the same events, the same error (feeding stops at
/// it) and the same last event id; no event's data is over the cap, and
/// its type is never empty.
pub fn sse_reader(data: &[u8]) {
    use crate::proto::sse_reader::SseReader;
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(control & 0x3f) + 1;
    let limit = if control & 0x40 != 0 { 64 } else { 4096 };
    let run = |pieces: &mut dyn Iterator<Item = &[u8]>| {
        let mut reader = SseReader::with_limit(limit);
        let mut events = Vec::new();
        let mut error = None;
        for p in pieces {
            let result = reader.feed(p);
            while let Some(e) = reader.poll_event() {
                assert!(e.data.len() <= limit, "event data over the cap");
                assert!(!e.event.is_empty(), "an empty event type");
                events.push(e);
            }
            if let Err(e) = result {
                error = Some(e);
                break;
            }
        }
        (events, error, reader.last_event_id().map(str::to_owned))
    };
    let whole = run(&mut std::iter::once(rest));
    let pieces = run(&mut rest.chunks(piece));
    assert_eq!(whole, pieces, "in pieces of {piece}");
}
