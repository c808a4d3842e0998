//! The multipart form parser's fuzz entry point and its seeds
//! (`fuzz/fuzz_targets/multipart.rs`, replayed by `tests/fuzz_regressions.rs`).

/// The multipart form parser (`crate::http::multipart`). The first byte picks the piece size the
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
