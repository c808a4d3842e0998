//! What bounds parsing a form ([`FormLimits`]) and how parsing fails
//! ([`FormError`]), for urlencoded and multipart bodies alike.

use std::io;
use std::path::PathBuf;

use crate::proto::http::HttpResponse;

/// Bounds on what parsing one form may take: memory, disk and count.
/// Every limit has its own [`FormError`] variant, which answers 413.
///
/// In memory, a multipart form holds its text fields and its files up to
/// `memory_threshold` each, plus one piece of the body (at most 64 KiB)
/// while it is parsed: with the defaults, at most about
/// `max_parts × 64 KiB` = 6.4 MiB per request in the worst case, usually
/// far less. Files past the threshold go to disk, up to `max_file_size`
/// each and `max_total_size` for the body.
///
/// ```
/// use hvws::FormLimits;
/// let limits = FormLimits {
///     max_file_size: 8 << 20,
///     temp_dir: Some(std::env::temp_dir()),
///     ..FormLimits::default()
/// };
/// assert_eq!(limits.max_parts, 100);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormLimits {
    /// Fields and files in one form, at most. Default 100: more than any
    /// hand-made form has, few enough that a body of tiny parts cannot
    /// make a million allocations.
    pub max_parts: usize,
    /// Bytes in one text field's value, at most. Default 64 KiB: a long
    /// comment fits; text fields are held in memory.
    pub max_field_size: usize,
    /// Bytes in one uploaded file, at most. Default 64 MiB.
    pub max_file_size: u64,
    /// Bytes in the whole body (multipart: boundaries and part headers
    /// included), at most. Default 64 MiB. The server's own body limit
    /// applies too; this one is for the form.
    pub max_total_size: u64,
    /// Files up to this many bytes stay in memory; a larger one is written
    /// to a temporary file as it arrives (removed when the [`Form`](crate::Form) is
    /// dropped, unless saved). Default 64 KiB: avatars and small
    /// attachments cost no disk I/O, and a large upload costs at most this
    /// much memory.
    pub memory_threshold: usize,
    /// Where temporary files go; `None` is [`std::env::temp_dir`]. Put it on
    /// the file system you save uploads to, and
    /// [`FormFile::save_to`](crate::FormFile::save_to) links the file into place instead of copying
    /// it.
    pub temp_dir: Option<PathBuf>,
}

impl Default for FormLimits {
    fn default() -> Self {
        FormLimits {
            max_parts: 100,
            max_field_size: 64 << 10,
            max_file_size: 64 << 20,
            max_total_size: 64 << 20,
            memory_threshold: 64 << 10,
            temp_dir: None,
        }
    }
}

/// Why a form body could not be parsed. Answer with
/// [`FormError::status`] (or `HttpResponse::from(e)`): the client's
/// mistakes are 4xx, and only [`FormError::Io`] is the server's.
///
/// ```
/// let err = hvws::Form::from_urlencoded(b"name=%FF").unwrap_err();
/// assert_eq!(err.status(), 400);
/// let resp = hvws::HttpResponse::from(err);
/// assert_eq!(resp.body(), b"form field \"name\" is not UTF-8");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    /// The form has more fields and files than [`FormLimits::max_parts`]
    /// (413).
    #[error("the form has more than {limit} fields")]
    TooManyParts {
        /// The limit.
        limit: usize,
    },
    /// A text field is larger than [`FormLimits::max_field_size`] (413).
    #[error("form field {name:?} is larger than {limit} bytes")]
    FieldTooLarge {
        /// The field's name.
        name: String,
        /// The limit.
        limit: usize,
    },
    /// An uploaded file is larger than [`FormLimits::max_file_size`]
    /// (413).
    #[error("the file in form field {name:?} is larger than {limit} bytes")]
    FileTooLarge {
        /// The field's name.
        name: String,
        /// The limit.
        limit: u64,
    },
    /// The body is larger than [`FormLimits::max_total_size`] (413).
    #[error("the form is larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: u64,
    },
    /// A multipart part's header block is larger than 8 KiB (413): no
    /// browser sends one; it is a client trying to make the server buffer.
    #[error("a part's headers are larger than {limit} bytes")]
    PartHeadersTooLarge {
        /// The limit.
        limit: usize,
    },
    /// A multipart part has more than 16 headers (413): browsers send two.
    #[error("a part has more than {limit} headers")]
    TooManyPartHeaders {
        /// The limit.
        limit: usize,
    },
    /// The body is not `multipart/form-data` as RFC 7578 has it (400):
    /// the reason says what was wrong.
    #[error("malformed multipart body: {0}")]
    Malformed(&'static str),
    /// The `Content-Type` header's boundary is missing or not one RFC 2046
    /// allows (400).
    #[error("bad multipart boundary: {0}")]
    BadBoundary(&'static str),
    /// The content type is not a form (415): neither
    /// `application/x-www-form-urlencoded` nor `multipart/form-data`.
    #[error("{0:?} is not a form content type")]
    UnsupportedContentType(String),
    /// A field's name or a text field's value is not UTF-8 (400).
    #[error("form field {name:?} is not UTF-8")]
    NotUtf8 {
        /// The field's name (invalid bytes replaced by U+FFFD).
        name: String,
    },
    /// Writing an upload to its temporary file failed (500): a full or
    /// read-only [`FormLimits::temp_dir`], or too many open files. Log it;
    /// the client cannot fix it.
    #[error("cannot store an upload: {0}")]
    Io(#[from] io::Error),
}

impl FormError {
    /// The HTTP status to answer with: 413 for each limit, 415 for a
    /// content type that is not a form, 500 for [`FormError::Io`], 400 for
    /// the rest.
    pub fn status(&self) -> u16 {
        match self {
            FormError::TooManyParts { .. }
            | FormError::FieldTooLarge { .. }
            | FormError::FileTooLarge { .. }
            | FormError::BodyTooLarge { .. }
            | FormError::PartHeadersTooLarge { .. }
            | FormError::TooManyPartHeaders { .. } => 413,
            FormError::UnsupportedContentType(_) => 415,
            FormError::Io(_) => 500,
            FormError::Malformed(_) | FormError::BadBoundary(_) | FormError::NotUtf8 { .. } => 400,
        }
    }
}

/// The response for a form that could not be parsed: [`FormError::status`]
/// with the error's message as a text body, except that a 500 says only
/// "Internal Server Error" (the I/O details are for the log, not the
/// client).
impl From<FormError> for HttpResponse {
    fn from(e: FormError) -> HttpResponse {
        match e.status() {
            500 => HttpResponse::error(500),
            status => HttpResponse::text(e.to_string()).with_status(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_responses() {
        let resp = HttpResponse::from(FormError::FieldTooLarge {
            name: "bio".into(),
            limit: 10,
        });
        assert_eq!(resp.status(), 413);
        assert_eq!(resp.body(), b"form field \"bio\" is larger than 10 bytes");
        let resp = HttpResponse::from(FormError::Io(io::Error::other("disk /secret/path full")));
        assert_eq!((resp.status(), resp.body()), (500, &b"Internal Server Error"[..]));
        assert_eq!(FormError::Malformed("x").status(), 400);
        assert_eq!(FormError::BadBoundary("x").status(), 400);
    }
}
