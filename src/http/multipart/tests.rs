//! The parser fed as a socket would feed it: whole, split at every point,
//! byte by byte; each limit; malformed bodies; a large upload's memory.

use std::fs;

use super::*;
use crate::http::upload::FormFile;

const CT: &str = "multipart/form-data; boundary=----hvwsBoundary7MA4";

/// Two text fields and a file, as a browser sends them (with a preamble
/// and an epilogue, which are ignored).
const SAMPLE: &[u8] = b"This is the preamble.\r\n\
------hvwsBoundary7MA4\r\n\
Content-Disposition: form-data; name=\"user\"\r\n\
\r\n\
ada\r\n\
------hvwsBoundary7MA4\r\n\
Content-Disposition: form-data; name=\"note\"\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
line one\r\nline two -- not a ----hvwsBoundary7MA\r\n\r\n\
------hvwsBoundary7MA4\r\n\
Content-Disposition: form-data; name=\"doc\"; filename=\"report.txt\"\r\n\
Content-Type: text/plain\r\n\
\r\n\
\r\n--\r\n-----hvwsBoundary7MA4x\r\r\n\r\r\n\
------hvwsBoundary7MA4--\r\n\
epilogue, ignored";

const NOTE: &str = "line one\r\nline two -- not a ----hvwsBoundary7MA\r\n";
const DOC: &[u8] = b"\r\n--\r\n-----hvwsBoundary7MA4x\r\r\n\r";

fn small_limits() -> FormLimits {
    FormLimits {
        max_parts: 3,
        max_field_size: 64,
        max_file_size: 64,
        max_total_size: 1024,
        memory_threshold: 64,
        temp_dir: None,
    }
}

#[track_caller]
fn parse<'a>(ct: &str, limits: &FormLimits, pieces: impl IntoIterator<Item = &'a [u8]>) -> Result<Form, FormError> {
    let mut parser = MultipartParser::new(ct, limits)?;
    for piece in pieces {
        parser.feed(piece)?;
    }
    parser.finish()
}

#[track_caller]
fn parse_whole(ct: &str, body: &[u8]) -> Result<Form, FormError> {
    parse(ct, &FormLimits::default(), [body])
}

#[track_caller]
fn malformed(ct: &str, body: &[u8]) -> &'static str {
    match parse_whole(ct, body) {
        Err(FormError::Malformed(why)) => why,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
    }
}

#[track_caller]
fn assert_sample(form: &Form) {
    assert_eq!(
        form.fields(),
        [
            ("user".to_owned(), "ada".to_owned()),
            ("note".to_owned(), NOTE.to_owned())
        ]
    );
    assert_eq!(form.files().len(), 1);
    let doc = form.file("doc").expect("the file");
    assert_eq!(
        (doc.field_name(), doc.file_name(), doc.content_type(), doc.len()),
        ("doc", Some("report.txt"), "text/plain", DOC.len() as u64)
    );
    assert_eq!(&doc.bytes().unwrap()[..], DOC);
}

fn body_of(parts: &[(&str, &str)], boundary: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (headers, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n{data}\r\n").as_bytes());
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[test]
fn two_fields_and_a_file_fed_whole() {
    assert_sample(&parse_whole(CT, SAMPLE).unwrap());
}

#[test]
fn split_at_every_point() {
    for at in 0..=SAMPLE.len() {
        let (a, b) = SAMPLE.split_at(at);
        let form = parse(CT, &FormLimits::default(), [a, b]).unwrap_or_else(|e| panic!("split at {at}: {e}"));
        assert_sample(&form);
    }
}

#[test]
fn split_at_every_pair_of_points() {
    let body = body_of(
        &[
            ("Content-Disposition: form-data; name=a", "x\r\ny"),
            ("Content-Disposition: form-data; name=f; filename=f", "\r\n-\r"),
        ],
        "bb",
    );
    let ct = "multipart/form-data; boundary=bb";
    for i in 0..=body.len() {
        for j in i..=body.len() {
            let form = parse(ct, &small_limits(), [&body[..i], &body[i..j], &body[j..]])
                .unwrap_or_else(|e| panic!("split at {i}, {j}: {e}"));
            assert_eq!(form.field("a"), Some("x\r\ny"));
            assert_eq!(&form.file("f").unwrap().bytes().unwrap()[..], b"\r\n-\r");
        }
    }
}

#[test]
fn byte_by_byte() {
    assert_sample(&parse(CT, &FormLimits::default(), SAMPLE.chunks(1)).unwrap());
}

#[test]
fn quoted_and_unquoted_boundaries() {
    let body = body_of(&[("Content-Disposition: form-data; name=a", "1")], "a'()+_,-./:=? z");
    let form = parse_whole("multipart/form-data; boundary=\"a'()+_,-./:=? z\"", &body).unwrap();
    assert_eq!(form.field("a"), Some("1"));
    let body = body_of(&[("Content-Disposition: form-data; name=a", "2")], "simple");
    assert_eq!(
        parse_whole("multipart/form-data; boundary=simple", &body)
            .unwrap()
            .field("a"),
        Some("2")
    );
    assert_eq!(
        parse_whole("multipart/form-data; boundary=\"simple\"", &body)
            .unwrap()
            .field("a"),
        Some("2")
    );
    let err = MultipartParser::new("multipart/form-data; boundary=", &FormLimits::default()).unwrap_err();
    assert!(matches!(err, FormError::BadBoundary(_)), "{err:?}");
    assert_eq!(err.status(), 400);
    let err = MultipartParser::new("text/plain", &FormLimits::default()).unwrap_err();
    assert_eq!(err.status(), 415);
}

#[test]
fn crlf_handling_at_part_edges() {
    let ct = "multipart/form-data; boundary=b";
    // No preamble, no CRLF after the close delimiter, padding after a
    // boundary, an empty value, a value that is only CRLF.
    let body = b"--b \t\r\nContent-Disposition: form-data; name=empty\r\n\r\n\r\n--b\r\n\
        Content-Disposition: form-data; name=crlf\r\n\r\n\r\n\r\n--b\r\n\
        Content-Disposition: form-data; name=lf\r\n\r\n\n--b\n\r\n--b--";
    let form = parse_whole(ct, body).unwrap();
    assert_eq!(
        form.fields(),
        [
            ("empty".to_owned(), String::new()),
            ("crlf".to_owned(), "\r\n".to_owned()),
            ("lf".to_owned(), "\n--b\n".to_owned())
        ]
    );
    // A boundary without the CRLF before it is data, not a delimiter.
    let form = parse_whole(
        ct,
        b"--b\r\nContent-Disposition: form-data; name=x\r\n\r\nab--b\r\n--b--",
    )
    .unwrap();
    assert_eq!(form.field("x"), Some("ab--b"));
    // Preamble that ends in the start of a delimiter.
    let form = parse_whole(
        ct,
        b"\r\n-\r\n--\r\n--b\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b--",
    )
    .unwrap();
    assert_eq!(form.field("x"), Some("1"));
}

#[test]
fn a_file_over_the_threshold_goes_to_a_temp_file_removed_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let limits = FormLimits {
        memory_threshold: 8,
        temp_dir: Some(dir.path().to_owned()),
        ..FormLimits::default()
    };
    let body = body_of(
        &[
            ("Content-Disposition: form-data; name=small; filename=s.txt", "12345678"),
            ("Content-Disposition: form-data; name=big; filename=b.txt", "123456789"),
        ],
        "b",
    );
    let form = parse("multipart/form-data; boundary=b", &limits, body.chunks(5)).unwrap();
    assert_eq!(form.file("small").unwrap().path(), None, "at the threshold: memory");
    let path = form
        .file("big")
        .unwrap()
        .path()
        .expect("past it: a temp file")
        .to_owned();
    assert!(path.starts_with(dir.path()), "in limits.temp_dir");
    assert_eq!(fs::read(&path).unwrap(), b"123456789");
    drop(form);
    assert!(!path.exists(), "removed with the form");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_saved_upload_outlives_the_form() {
    let dir = tempfile::tempdir().unwrap();
    let limits = FormLimits {
        memory_threshold: 1,
        temp_dir: Some(dir.path().to_owned()),
        ..FormLimits::default()
    };
    let body = body_of(
        &[("Content-Disposition: form-data; name=f; filename=\"../a.bin\"", "data")],
        "b",
    );
    let form = parse("multipart/form-data; boundary=b", &limits, [&body[..]]).unwrap();
    let saved = form.file("f").unwrap().save_to(dir.path(), false).unwrap();
    drop(form);
    assert_eq!(fs::read(&saved).unwrap(), b"data");
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["a.bin"]);
}

#[test]
fn an_error_removes_the_temp_file_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let limits = FormLimits {
        memory_threshold: 1,
        max_file_size: 10,
        temp_dir: Some(dir.path().to_owned()),
        ..FormLimits::default()
    };
    let mut parser = MultipartParser::new("multipart/form-data; boundary=b", &limits).unwrap();
    parser
        .feed(b"--b\r\nContent-Disposition: form-data; name=f; filename=x\r\n\r\n12345")
        .unwrap();
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "spilled");
    let err = parser.feed(b"678901").unwrap_err();
    assert!(
        matches!(&err, FormError::FileTooLarge { name, limit: 10 } if name == "f"),
        "{err:?}"
    );
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "removed at the error");
    assert!(matches!(
        parser.feed(b"--b--"),
        Err(FormError::Malformed("fed again after an error"))
    ));
    assert!(matches!(
        parser.finish(),
        Err(FormError::Malformed("finished after an error"))
    ));
}

#[test]
fn each_limit_has_its_variant_and_413() {
    let ct = "multipart/form-data; boundary=b";
    let field = |data: &str| ("Content-Disposition: form-data; name=t", data.to_owned());
    let file = |data: &str| ("Content-Disposition: form-data; name=f; filename=x", data.to_owned());
    let run = |parts: &[(&str, String)]| {
        let parts: Vec<(&str, &str)> = parts.iter().map(|(h, d)| (*h, d.as_str())).collect();
        parse(ct, &small_limits(), [&body_of(&parts, "b")[..]])
    };
    let at_limits = [field(&"v".repeat(64)), file(&"f".repeat(64)), field("")];
    assert_eq!(
        run(&at_limits).unwrap().field_count(),
        2,
        "each limit reached, none passed"
    );

    let errors = [
        run(&[field("1"), field("2"), field("3"), field("4")]).unwrap_err(),
        run(&[field(&"v".repeat(65))]).unwrap_err(),
        run(&[file(&"f".repeat(65))]).unwrap_err(),
        parse(ct, &small_limits(), [&[b' '; 1025][..]]).unwrap_err(),
        parse_whole(ct, format!("--b\r\nX: {}\r\n\r\n", "h".repeat(8 << 10)).as_bytes()).unwrap_err(),
        parse_whole(ct, format!("--b\r\n{}\r\n", "X: 1\r\n".repeat(17)).as_bytes()).unwrap_err(),
    ];
    assert!(
        matches!(errors[0], FormError::TooManyParts { limit: 3 }),
        "{:?}",
        errors[0]
    );
    assert!(
        matches!(&errors[1], FormError::FieldTooLarge { name, limit: 64 } if name == "t"),
        "{:?}",
        errors[1]
    );
    assert!(
        matches!(&errors[2], FormError::FileTooLarge { name, limit: 64 } if name == "f"),
        "{:?}",
        errors[2]
    );
    assert!(
        matches!(errors[3], FormError::BodyTooLarge { limit: 1024 }),
        "{:?}",
        errors[3]
    );
    assert!(
        matches!(errors[4], FormError::PartHeadersTooLarge { limit: 8192 }),
        "{:?}",
        errors[4]
    );
    assert!(
        matches!(errors[5], FormError::TooManyPartHeaders { limit: 16 }),
        "{:?}",
        errors[5]
    );
    for e in &errors {
        assert_eq!(e.status(), 413, "{e:?}");
    }
}

#[test]
fn the_header_block_limit_is_exact_and_split_independent() {
    let ct = "multipart/form-data; boundary=b";
    // A block of exactly 8 KiB, blank line included, passes; one more byte
    // does not; the same whichever way the body is split.
    let header = |pad: usize| {
        let line = "Content-Disposition: form-data; name=a\r\n";
        let filler = 8192 - line.len() - "X: \r\n".len() - 2 + pad;
        format!("--b\r\n{line}X: {}\r\n\r\nv\r\n--b--", "h".repeat(filler))
    };
    for pieces in [1 << 20, 4096, 7] {
        let ok = header(0);
        assert_eq!(
            parse(ct, &FormLimits::default(), ok.as_bytes().chunks(pieces))
                .unwrap()
                .field("a"),
            Some("v")
        );
        let too_big = header(1);
        let err = parse(ct, &FormLimits::default(), too_big.as_bytes().chunks(pieces)).unwrap_err();
        assert!(
            matches!(err, FormError::PartHeadersTooLarge { .. }),
            "{pieces}: {err:?}"
        );
    }
}

#[test]
fn the_body_limit_counts_every_byte_however_split() {
    let ct = "multipart/form-data; boundary=b";
    let body = body_of(&[("Content-Disposition: form-data; name=a", "1")], "b");
    let limits = FormLimits {
        max_total_size: body.len() as u64,
        ..FormLimits::default()
    };
    assert!(parse(ct, &limits, body.chunks(3)).is_ok(), "exactly at the limit");
    let mut longer = body.clone();
    longer.push(b'x'); // in the epilogue, still counted
    for piece in [1, 3, longer.len()] {
        let err = parse(ct, &limits, longer.chunks(piece)).unwrap_err();
        assert!(matches!(err, FormError::BodyTooLarge { .. }), "{err:?}");
    }
}

#[test]
fn malformed_bodies() {
    let ct = "multipart/form-data; boundary=b";
    assert_eq!(
        malformed(ct, b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b"),
        "the body ended before the closing boundary"
    );
    assert_eq!(
        malformed(ct, b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1"),
        "the body ended before the closing boundary"
    );
    assert_eq!(malformed(ct, b""), "the body ended before the closing boundary");
    assert_eq!(
        malformed(ct, b"no boundary at all"),
        "the body ended before the closing boundary"
    );
    assert_eq!(
        malformed(ct, b"--b\r\n\r\nvalue\r\n--b--"),
        "a part has no Content-Disposition"
    );
    assert_eq!(
        malformed(ct, b"--b\r\nContent-Disposition: inline; name=a\r\n\r\n1\r\n--b--"),
        "a part's Content-Disposition is not form-data"
    );
    assert_eq!(
        malformed(ct, b"--b\r\nContent-Disposition: form-data\r\n\r\n1\r\n--b--"),
        "a part has no name"
    );
    assert_eq!(
        malformed(ct, b"--bx\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--"),
        "a boundary is followed by neither CRLF nor --"
    );
    assert_eq!(
        malformed(ct, b"--b\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--"),
        "a boundary is followed by neither CRLF nor --"
    );
}

#[test]
fn a_text_field_must_be_utf8() {
    let err = parse_whole(
        "multipart/form-data; boundary=b",
        b"--b\r\nContent-Disposition: form-data; name=bio\r\n\r\n\xc3\x28\r\n--b--",
    )
    .unwrap_err();
    assert!(matches!(&err, FormError::NotUtf8 { name } if name == "bio"), "{err:?}");
    assert_eq!(err.status(), 400);
    // The same bytes in a file are fine.
    let form = parse_whole(
        "multipart/form-data; boundary=b",
        b"--b\r\nContent-Disposition: form-data; name=bio; filename=b.bin\r\n\r\n\xc3\x28\r\n--b--",
    )
    .unwrap();
    assert_eq!(&form.file("bio").unwrap().bytes().unwrap()[..], b"\xc3\x28");
}

#[test]
fn an_unused_file_input_is_left_out() {
    let body = body_of(
        &[
            (
                "Content-Disposition: form-data; name=avatar; filename=\"\"\r\nContent-Type: application/octet-stream",
                "",
            ),
            ("Content-Disposition: form-data; name=a", "1"),
        ],
        "b",
    );
    let form = parse_whole("multipart/form-data; boundary=b", &body).unwrap();
    assert!(form.file("avatar").is_none());
    assert_eq!(form.field("avatar"), None, "not a text field either");
    assert_eq!(form.field("a"), Some("1"));
}

#[test]
fn repeated_names_are_kept_in_order() {
    let body = body_of(
        &[
            ("Content-Disposition: form-data; name=tag", "a"),
            ("Content-Disposition: form-data; name=pic; filename=1.png", "1"),
            ("Content-Disposition: form-data; name=tag", "b"),
            ("Content-Disposition: form-data; name=pic; filename=2.png", "2"),
        ],
        "b",
    );
    let form = parse_whole("multipart/form-data; boundary=b", &body).unwrap();
    assert_eq!(form.field_values("tag").collect::<Vec<_>>(), ["a", "b"]);
    let names: Vec<_> = form.files().iter().map(FormFile::file_name).collect();
    assert_eq!(names, [Some("1.png"), Some("2.png")]);
    assert_eq!(form.file("pic").unwrap().file_name(), Some("1.png"));
}

/// A 20 MiB upload fed in 64 KiB pieces, then whole: the parser holds at
/// most one slice of input plus a header block's worth, and the file's
/// bytes up to the memory threshold; once the file is on disk, only its
/// write buffer.
#[test]
fn a_large_upload_streams_to_disk_in_bounded_memory() {
    const SIZE: usize = 20 << 20;
    let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let mut body = b"--b\r\nContent-Disposition: form-data; name=f; filename=big.bin\r\n\r\n".to_vec();
    body.extend_from_slice(&data);
    body.extend_from_slice(b"\r\n--b--\r\n");
    let limits = FormLimits::default();
    let input = SLICE + MAX_PART_HEADER_BYTES + "\r\n--b".len() + 4;
    let (before_spill, after_spill) = (input + limits.memory_threshold, input + 8 * 1024);
    for piece in [64 << 10, body.len()] {
        let mut parser = MultipartParser::new("multipart/form-data; boundary=b", &limits).unwrap();
        let (mut most_before, mut most_after) = (0, 0);
        for chunk in body.chunks(piece) {
            parser.feed(chunk).unwrap();
            let spilled = matches!(&parser.state, State::File(w) if w.on_disk());
            let most = if spilled { &mut most_after } else { &mut most_before };
            *most = (*most).max(parser.buffered_bytes());
        }
        assert!(
            most_before <= before_spill,
            "piece {piece}: {most_before} > {before_spill}"
        );
        assert!(most_after <= after_spill, "piece {piece}: {most_after} > {after_spill}");
        if piece < body.len() {
            assert!(most_after > 0, "measured while the file was written to disk");
        }
        let form = parser.finish().unwrap();
        let file = form.file("f").unwrap();
        assert!(file.path().is_some(), "on disk");
        assert_eq!(file.len(), SIZE as u64);
        assert!(file.bytes().unwrap() == data, "the bytes written are the bytes sent");
    }
}

#[test]
fn only_a_possible_delimiter_start_is_held_back() {
    let mut parser = MultipartParser::new("multipart/form-data; boundary=b", &FormLimits::default()).unwrap();
    parser.feed(b"--b\r\nContent-Disposition: form-").unwrap();
    assert_eq!(
        parser.buf, b"\r\nContent-Disposition: form-",
        "an unfinished header block waits"
    );
    parser.feed(b"data; name=a\r\n\r\n12\r\n-").unwrap();
    assert_eq!(parser.buf, b"\r\n-", "may begin \\r\\n--b");
    assert!(
        matches!(&parser.state, State::Field { value, .. } if value == b"12"),
        "{parser:?}"
    );
    parser.feed(b"x").unwrap();
    assert_eq!(parser.buf, b"", "it did not");
    assert!(
        matches!(&parser.state, State::Field { value, .. } if value == b"12\r\n-x"),
        "{parser:?}"
    );
    parser.feed(b"\r\n--b-").unwrap();
    assert_eq!(parser.buf, b"-");
    assert!(matches!(parser.state, State::Delimiter), "{parser:?}");
    parser.feed(b"-").unwrap();
    assert_eq!(parser.finish().unwrap().field("a"), Some("12\r\n-x"));
}

#[test]
fn reserve_within_doubles_up_to_the_cap() {
    let mut v = Vec::new();
    for _ in 0..100 {
        reserve_within(&mut v, 1, 70);
        v.push(0);
    }
    assert_eq!(v.capacity(), 140, "past the cap it doubles again");
    let mut v = Vec::new();
    for _ in 0..70 {
        reserve_within(&mut v, 1, 70);
        v.push(0);
    }
    assert_eq!(v.capacity(), 70, "never past the cap while the need fits");
}
