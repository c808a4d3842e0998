//! The header values a multipart parser reads: the request's
//! `Content-Type` (for the boundary) and each part's
//! `Content-Disposition` and `Content-Type`.

use percent_encoding::percent_decode;

use super::{MAX_PART_HEADERS, MAX_PART_HEADER_BYTES};
use crate::http::form::FormKind;
use crate::http::limits::FormError;

/// The boundary of a `multipart/form-data` content type.
pub(super) fn boundary(content_type: &str) -> Result<Vec<u8>, FormError> {
    if FormKind::of(content_type) != Some(FormKind::Multipart) {
        return Err(FormError::UnsupportedContentType(content_type.to_owned()));
    }
    let (_, params) = split_params(content_type.as_bytes()).map_err(FormError::BadBoundary)?;
    let boundary = param(&params, b"boundary").ok_or(FormError::BadBoundary("no boundary parameter"))?;
    if boundary.is_empty() {
        return Err(FormError::BadBoundary("the boundary is empty"));
    }
    if boundary.len() > 70 {
        return Err(FormError::BadBoundary("the boundary is longer than 70 characters"));
    }
    // RFC 2046's bchars are a subset of visible ASCII; any visible ASCII is
    // accepted (a stray `!` harms nothing), nothing that could end a line.
    if !boundary.iter().all(|&b| (b' '..=b'~').contains(&b)) || boundary.ends_with(b" ") {
        return Err(FormError::BadBoundary(
            "the boundary holds a character RFC 2046 does not allow",
        ));
    }
    Ok(boundary.to_vec())
}

/// What a part's headers say about it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct PartHeaders {
    /// The form field's name.
    pub(super) name: String,
    /// Whether the part is a file: its disposition has a `filename`, even
    /// an empty one.
    pub(super) is_file: bool,
    /// The file name, `None` when empty (or for a field).
    pub(super) file_name: Option<String>,
    /// The part's `Content-Type`, if it had one.
    pub(super) content_type: Option<String>,
}

/// Parses a part's header block: its header lines and the blank line
/// after them.
pub(super) fn parse_part(block: &[u8]) -> Result<PartHeaders, FormError> {
    debug_assert!(block.len() <= MAX_PART_HEADER_BYTES);
    let mut storage = [httparse::EMPTY_HEADER; MAX_PART_HEADERS];
    let headers = match httparse::parse_headers(block, &mut storage) {
        Ok(httparse::Status::Complete((len, headers))) if len == block.len() => headers,
        // httparse also ends a block at a bare "\n\n"; the blank line we
        // found is the one that counts.
        Ok(_) => return Err(FormError::Malformed("a part's headers end before their blank line")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(FormError::TooManyPartHeaders {
                limit: MAX_PART_HEADERS,
            })
        }
        Err(_) => return Err(FormError::Malformed("a part header is not a valid header line")),
    };
    let first = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let disposition = first("content-disposition").ok_or(FormError::Malformed("a part has no Content-Disposition"))?;
    let (kind, params) = split_params(disposition).map_err(FormError::Malformed)?;
    if !kind.eq_ignore_ascii_case(b"form-data") {
        return Err(FormError::Malformed("a part's Content-Disposition is not form-data"));
    }
    let name = param(&params, b"name").ok_or(FormError::Malformed("a part has no name"))?;
    let name = String::from_utf8(name.to_vec()).map_err(|e| FormError::NotUtf8 {
        name: String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })?;
    // RFC 7578 says senders do not use `filename*`; some do, and when it
    // decodes it is the better name.
    let extended = param(&params, b"filename*");
    let plain = param(&params, b"filename");
    let file_name = extended
        .and_then(decode_ext_value)
        .or_else(|| plain.map(|n| html_unescape(&String::from_utf8_lossy(n))))
        .filter(|n| !n.is_empty());
    let content_type = first("content-type")
        .map(|v| String::from_utf8_lossy(v).trim().to_owned())
        .filter(|v| !v.is_empty());
    Ok(PartHeaders {
        name,
        is_file: extended.is_some() || plain.is_some(),
        file_name,
        content_type,
    })
}

/// Undoes the only escapes browsers apply to a file name (the HTML
/// standard's multipart/form-data encoding: `"` as `%22`, CR as `%0D`, LF
/// as `%0A`), so `a"b.txt` arrives as sent. Other `%XX` sequences stay as
/// they are: a browser never makes them, so they are the name's own text.
fn html_unescape(name: &str) -> String {
    name.replace("%22", "\"").replace("%0D", "\r").replace("%0A", "\n")
}

type Params<'v> = Vec<(&'v [u8], Vec<u8>)>;

/// Splits a header value `type; a=b; c="d"` into its type and parameters
/// (names as sent, values unquoted). Tolerant as browsers need: a
/// parameter without `=` is skipped, an unquoted value runs to the next
/// `;` (spaces included), and in a quoted string only `\"` and `\\` are
/// escapes, so a Windows path keeps its backslashes.
fn split_params(value: &[u8]) -> Result<(&[u8], Params<'_>), &'static str> {
    let mut i = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    let kind = value[..i].trim_ascii();
    let mut params = Vec::new();
    // Here `i` is at a ';' or at the end.
    while i < value.len() {
        i += 1;
        let start = i;
        while i < value.len() && value[i] != b'=' && value[i] != b';' {
            i += 1;
        }
        let name = value[start..i].trim_ascii();
        if i == value.len() || value[i] == b';' {
            continue;
        }
        i += 1;
        while i < value.len() && matches!(value[i], b' ' | b'\t') {
            i += 1;
        }
        if value.get(i) == Some(&b'"') {
            i += 1;
            let mut unquoted = Vec::new();
            loop {
                match value.get(i) {
                    None => return Err("a quoted string in a header has no closing quote"),
                    Some(b'"') => break,
                    Some(b'\\') if matches!(value.get(i + 1), Some(b'"' | b'\\')) => {
                        unquoted.push(value[i + 1]);
                        i += 2;
                    }
                    Some(&b) => {
                        unquoted.push(b);
                        i += 1;
                    }
                }
            }
            // Whatever follows the closing quote up to the next ';' is noise.
            while i < value.len() && value[i] != b';' {
                i += 1;
            }
            params.push((name, unquoted));
        } else {
            let start = i;
            while i < value.len() && value[i] != b';' {
                i += 1;
            }
            params.push((name, value[start..i].trim_ascii().to_vec()));
        }
    }
    Ok((kind, params))
}

/// The first parameter named `name` (ASCII case-insensitive).
fn param<'p>(params: &'p Params<'_>, name: &[u8]) -> Option<&'p [u8]> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// Decodes an RFC 8187 `charset'language'percent-encoded` value (UTF-8 or
/// ISO-8859-1); `None` for another charset or bytes that are not UTF-8.
fn decode_ext_value(value: &[u8]) -> Option<String> {
    let mut fields = value.splitn(3, |&b| b == b'\'');
    let (charset, _language, encoded) = (fields.next()?, fields.next()?, fields.next()?);
    let bytes: Vec<u8> = percent_decode(encoded).collect();
    if charset.eq_ignore_ascii_case(b"utf-8") {
        String::from_utf8(bytes).ok()
    } else if charset.eq_ignore_ascii_case(b"iso-8859-1") {
        Some(bytes.iter().map(|&b| char::from(b)).collect())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn part(block: &str) -> Result<PartHeaders, FormError> {
        parse_part(block.as_bytes())
    }

    #[track_caller]
    fn file_name_of(disposition: &str) -> Option<String> {
        part(&format!("Content-Disposition: {disposition}\r\n\r\n"))
            .unwrap()
            .file_name
    }

    #[track_caller]
    fn boundary_of(content_type: &str) -> Result<String, String> {
        boundary(content_type)
            .map(|b| String::from_utf8(b).unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn boundary_quoted_or_not() {
        assert_eq!(boundary_of("multipart/form-data; boundary=abc"), Ok("abc".into()));
        assert_eq!(
            boundary_of("multipart/form-data; boundary=\"a b:c\""),
            Ok("a b:c".into())
        );
        assert_eq!(
            boundary_of("Multipart/Form-Data;BOUNDARY=x;charset=utf-8"),
            Ok("x".into())
        );
        assert_eq!(
            boundary_of("multipart/form-data; charset=utf-8; boundary=  y  "),
            Ok("y".into())
        );
        assert_eq!(
            boundary_of(&format!("multipart/form-data; boundary={}", "7".repeat(70))),
            Ok("7".repeat(70))
        );
    }

    #[test]
    fn bad_boundaries() {
        let bad = |ct: &str| boundary_of(ct).unwrap_err();
        assert_eq!(
            bad("multipart/form-data"),
            "bad multipart boundary: no boundary parameter"
        );
        assert_eq!(
            bad("multipart/form-data; boundary"),
            "bad multipart boundary: no boundary parameter"
        );
        assert_eq!(
            bad("multipart/form-data; boundary="),
            "bad multipart boundary: the boundary is empty"
        );
        assert_eq!(
            bad("multipart/form-data; boundary=\"\""),
            "bad multipart boundary: the boundary is empty"
        );
        assert_eq!(
            bad(&format!("multipart/form-data; boundary={}", "7".repeat(71))),
            "bad multipart boundary: the boundary is longer than 70 characters"
        );
        for ct in [
            "multipart/form-data; boundary=\"a\tb\"",
            "multipart/form-data; boundary=\"ab \"",
            "multipart/form-data; boundary=é",
        ] {
            assert_eq!(
                bad(ct),
                "bad multipart boundary: the boundary holds a character RFC 2046 does not allow",
                "{ct}"
            );
        }
        assert_eq!(
            bad("multipart/form-data; boundary=\"open"),
            "bad multipart boundary: a quoted string in a header has no closing quote"
        );
        assert_eq!(
            bad("multipart/mixed; boundary=x"),
            "\"multipart/mixed; boundary=x\" is not a form content type"
        );
    }

    #[test]
    fn a_field_and_a_file() {
        assert_eq!(
            part("Content-Disposition: form-data; name=\"title\"\r\n\r\n").unwrap(),
            PartHeaders {
                name: "title".into(),
                is_file: false,
                file_name: None,
                content_type: None
            }
        );
        assert_eq!(
            part("content-type:  image/png \r\nCONTENT-DISPOSITION: Form-Data; Name=pic; FileName=\"a.png\"\r\nX-Other: 1\r\n\r\n").unwrap(),
            PartHeaders {
                name: "pic".into(),
                is_file: true,
                file_name: Some("a.png".into()),
                content_type: Some("image/png".into())
            }
        );
        let empty = part("Content-Disposition: form-data; name=\"f\"; filename=\"\"\r\n\r\n").unwrap();
        assert_eq!((empty.is_file, empty.file_name), (true, None));
    }

    #[test]
    fn file_names_as_browsers_and_others_send_them() {
        assert_eq!(
            file_name_of(r#"form-data; name="f"; filename="say \"hi\".txt""#).as_deref(),
            Some("say \"hi\".txt")
        );
        assert_eq!(
            file_name_of(r#"form-data; name="f"; filename="a\\b""#).as_deref(),
            Some(r"a\b")
        );
        assert_eq!(
            file_name_of(r#"form-data; name="f"; filename="C:\docs\x.txt""#).as_deref(),
            Some(r"C:\docs\x.txt")
        );
        assert_eq!(
            file_name_of(r#"form-data; name="f"; filename="semi;colon.txt""#).as_deref(),
            Some("semi;colon.txt")
        );
        assert_eq!(
            file_name_of("form-data; name=f; filename=my file.txt ").as_deref(),
            Some("my file.txt")
        );
        assert_eq!(
            file_name_of("form-data; name=f; filename=\"%22quoted%22 %2F%41.txt\"").as_deref(),
            Some("\"quoted\" %2F%41.txt"),
            "a browser's escapes undone, others left"
        );
        assert_eq!(
            file_name_of("form-data; name=\"f\"; filename=\"na\u{ef}ve.txt\"").as_deref(),
            Some("naïve.txt")
        );
        assert_eq!(
            file_name_of("form-data; name=f; filename=\"fallback.txt\"; filename*=UTF-8''na%C3%AFve%20%E2%82%AC.txt")
                .as_deref(),
            Some("naïve €.txt")
        );
        assert_eq!(
            file_name_of("form-data; name=f; filename*=iso-8859-1'en'caf%E9.txt").as_deref(),
            Some("café.txt")
        );
        assert_eq!(
            file_name_of("form-data; name=f; filename=\"ok.txt\"; filename*=UTF-8''%FF").as_deref(),
            Some("ok.txt")
        );
        assert_eq!(
            file_name_of("form-data; name=f; filename=\"ok.txt\"; filename*=koi8-r''x").as_deref(),
            Some("ok.txt")
        );
        assert_eq!(
            file_name_of("form-data; name=f; filename=\"first\"; filename=\"second\"").as_deref(),
            Some("first")
        );
        assert_eq!(
            file_name_of("form-data; name=f; filename=\"a\" junk; x").as_deref(),
            Some("a")
        );
    }

    #[test]
    fn parts_without_what_a_form_part_needs() {
        let malformed = |block: &str| match part(block) {
            Err(FormError::Malformed(why)) => why,
            other => panic!("{block:?}: {other:?}"),
        };
        assert_eq!(malformed("\r\n"), "a part has no Content-Disposition");
        assert_eq!(
            malformed("Content-Type: text/plain\r\n\r\n"),
            "a part has no Content-Disposition"
        );
        assert_eq!(
            malformed("Content-Disposition: attachment; name=\"a\"\r\n\r\n"),
            "a part's Content-Disposition is not form-data"
        );
        assert_eq!(
            malformed("Content-Disposition: form-data; filename=\"a\"\r\n\r\n"),
            "a part has no name"
        );
        assert_eq!(
            malformed("Content-Disposition: form-data; name\r\n\r\n"),
            "a part has no name"
        );
        assert_eq!(
            malformed("Content-Disposition: form-data; name=\"a\r\n\r\n"),
            "a quoted string in a header has no closing quote"
        );
        assert_eq!(
            malformed("no colon here\r\n\r\n"),
            "a part header is not a valid header line"
        );
        assert_eq!(
            malformed("A: b\n\nC: d\r\n\r\n"),
            "a part's headers end before their blank line"
        );
        assert_eq!(
            part("Content-Disposition: form-data; name=\"é\"\r\n\r\n").unwrap().name,
            "é"
        );
    }

    #[test]
    fn a_name_that_is_not_utf8() {
        let err = parse_part(b"Content-Disposition: form-data; name=\"a\xffb\"\r\n\r\n").unwrap_err();
        assert!(
            matches!(&err, FormError::NotUtf8 { name } if name == "a\u{fffd}b"),
            "{err:?}"
        );
    }

    #[test]
    fn header_count_is_capped() {
        let mut block = String::from("Content-Disposition: form-data; name=a\r\n");
        for i in 0..MAX_PART_HEADERS - 1 {
            block.push_str(&format!("X-{i}: v\r\n"));
        }
        assert!(
            part(&format!("{block}\r\n")).is_ok(),
            "{MAX_PART_HEADERS} headers are fine"
        );
        let err = part(&format!("{block}X-Last: v\r\n\r\n")).unwrap_err();
        assert!(
            matches!(
                err,
                FormError::TooManyPartHeaders {
                    limit: MAX_PART_HEADERS
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.status(), 413);
    }
}
