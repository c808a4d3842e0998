//! The HTTP-level fuzz entry points: the multipart form parser, the
//! client's response parser (`Exchange`) and the SSE reader.

/// The multipart form parser (`crate::http::multipart`, above `proto` but
/// fuzzed with the other parsers). The first byte picks the piece size the
/// body arrives in (its low 6 bits, 1-64) and whether files past 16 bytes
/// spill to disk (bit 6); the input's first line is the `Content-Type`, so
/// boundaries are fuzzed too, and the rest is the body.
///
/// The body is parsed whole and in pieces: both must give the same form or
/// the same error, the parser's buffers stay bounded, and a form keeps
/// its limits.
pub fn multipart(data: &[u8]) {
    use crate::FormLimits;
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let Some(eol) = rest.iter().position(|&b| b == b'\n') else {
        return;
    };
    let piece = usize::from(control & 0x3f) + 1;
    let content_type = String::from_utf8_lossy(&rest[..eol]);
    let body = &rest[eol + 1..];
    let limits = FormLimits {
        max_parts: 8,
        max_field_size: 256,
        max_file_size: 1024,
        max_total_size: 16 << 10,
        memory_threshold: if control & 0x40 != 0 { 16 } else { 1024 },
        temp_dir: None,
    };
    let whole = parse_multipart(&content_type, &limits, [body]);
    let pieces = parse_multipart(&content_type, &limits, body.chunks(piece));
    match (&whole, &pieces) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.fields(), b.fields(), "in pieces of {piece}");
            assert_eq!(a.files().len(), b.files().len(), "in pieces of {piece}");
            for (x, y) in a.files().iter().zip(b.files()) {
                let describe = |f: &crate::FormFile| {
                    let bytes = f.bytes().expect("readable").into_owned();
                    (
                        f.field_name().to_owned(),
                        f.file_name().map(str::to_owned),
                        f.content_type().to_owned(),
                        bytes,
                    )
                };
                assert_eq!(describe(x), describe(y), "in pieces of {piece}");
                assert!(x.len() <= limits.max_file_size);
                assert_eq!(x.len(), describe(x).3.len() as u64);
            }
            assert!(a.field_count() + a.files().len() <= limits.max_parts);
            assert!(a.fields().iter().all(|(_, v)| v.len() <= limits.max_field_size));
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "in pieces of {piece}"),
        _ => panic!("whole: {whole:?}; in pieces of {piece}: {pieces:?}"),
    }
}

fn parse_multipart<'a>(
    content_type: &str,
    limits: &crate::FormLimits,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Result<crate::Form, crate::FormError> {
    // One 64 KiB slice, a part's header block, a delimiter, a file's write
    // buffer or in-memory bytes.
    let bound = (64 << 10) + (8 << 10) + 80 + (8 << 10).max(limits.memory_threshold);
    let mut parser = crate::MultipartParser::new(content_type, limits)?;
    for piece in pieces {
        parser.feed(piece)?;
        assert!(
            parser.buffered_bytes() <= bound,
            "{} bytes buffered",
            parser.buffered_bytes()
        );
    }
    parser.finish()
}

/// Inputs for the `multipart` target (`fuzz/seeds/multipart/`): valid
/// forms with fields, files, quoted boundaries, a preamble and an
/// epilogue, in the target's format (see [`multipart`]).
pub fn multipart_seeds() -> Vec<(String, Vec<u8>)> {
    let forms: [(&str, u8, &str, &str); 5] = [
        (
            "fields-and-file",
            0,
            "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
            "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nada\r\n\
             ------WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nline 1\r\nline 2\r\n\
             ------WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\n\
             Content-Type: text/plain\r\n\r\nfile body\r\n------WebKitFormBoundary7MA4YWxkTrZu0gW--\r\n",
        ),
        (
            "quoted-boundary-preamble-epilogue",
            7,
            "multipart/form-data; charset=utf-8; boundary=\"a b:c\"",
            "preamble\r\n--a b:c  \r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--a b:c--\r\nepilogue",
        ),
        (
            "file-names",
            0x40 | 3,
            "multipart/form-data; boundary=b",
            "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"say \\\"hi\\\".txt\"\r\n\r\n\
             spilled past sixteen bytes\r\n--b\r\nContent-Disposition: form-data; name=g; \
             filename*=UTF-8''na%C3%AFve.txt\r\n\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"empty\"; \
             filename=\"\"\r\n\r\n\r\n--b--",
        ),
        (
            "near-boundaries",
            0,
            "multipart/form-data; boundary=bb",
            "--bb\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n-\r\n--b\r\n--bx\r\r\n--bb--",
        ),
        (
            "many-parts",
            1,
            "multipart/form-data; boundary=z",
            "--z\r\nContent-Disposition: form-data; name=1\r\n\r\n\r\n--z\r\nContent-Disposition: form-data; name=2\r\n\r\n\r\n\
             --z\r\nContent-Disposition: form-data; name=3\r\n\r\n\r\n--z\r\nContent-Disposition: form-data; name=4\r\n\r\n\r\n--z--",
        ),
    ];
    forms
        .into_iter()
        .map(|(name, control, content_type, body)| {
            let mut seed = vec![control];
            seed.extend_from_slice(content_type.as_bytes());
            seed.push(b'\n');
            seed.extend_from_slice(body.as_bytes());
            (format!("seed-{name}"), seed)
        })
        .collect()
}

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
