//! Submitted forms: the [`Form`] a urlencoded or multipart body parses
//! into, the urlencoded parser, and the request's accessors for the form
//! the dispatcher attached. Limits and errors are `super::limits`, the
//! multipart parser is `super::multipart`, uploaded files are
//! `super::upload`.

use std::path::{Path, PathBuf};

use crate::proto::http::{HttpRequest, RequestBuilder};

use super::limits::{FormError, FormLimits};
use super::multipart::MultipartParser;
use super::upload::{FormFile, UploadError};

/// A submitted form: its text fields in the order they came (a name may
/// repeat, as checkboxes do) and its uploaded files.
///
/// A multipart file input left empty (a part with `filename=""` and no
/// content, which browsers send when no file was chosen) is not kept, so
/// [`Form::file`] answers `None` for it.
///
/// ```
/// let form = hvws::Form::from_urlencoded(b"name=Ada+Lovelace&tag=math&tag=poetry")?;
/// assert_eq!(form.field("name"), Some("Ada Lovelace"));
/// assert_eq!(form.field_values("tag").collect::<Vec<_>>(), ["math", "poetry"]);
/// assert_eq!(form.field_count(), 3);
/// assert!(form.files().is_empty());
/// # Ok::<(), hvws::FormError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Form {
    fields: Vec<(String, String)>,
    files: Vec<FormFile>,
}

impl Form {
    /// Parses an `application/x-www-form-urlencoded` body with the default
    /// [`FormLimits`]: `&`-separated `name=value` pairs, `+` for a space,
    /// `%XX` escapes (a `%` not followed by two hex digits stays as it is).
    /// Names and values must be UTF-8 once decoded.
    ///
    /// ```
    /// let form = hvws::Form::from_urlencoded(b"q=caf%C3%A9+au+lait&empty=&flag")?;
    /// assert_eq!(form.field("q"), Some("café au lait"));
    /// assert_eq!(form.field("empty"), Some(""));
    /// assert_eq!(form.field("flag"), Some(""));
    /// # Ok::<(), hvws::FormError>(())
    /// ```
    pub fn from_urlencoded(body: &[u8]) -> Result<Form, FormError> {
        Form::from_urlencoded_with(body, &FormLimits::default())
    }

    /// [`Form::from_urlencoded`] with `limits`: `max_total_size` for the
    /// body, `max_parts` for the pairs, `max_field_size` for each decoded
    /// value.
    ///
    /// ```
    /// use hvws::{Form, FormError, FormLimits};
    /// let limits = FormLimits { max_parts: 2, ..FormLimits::default() };
    /// let err = Form::from_urlencoded_with(b"a=1&b=2&c=3", &limits).unwrap_err();
    /// assert!(matches!(err, FormError::TooManyParts { limit: 2 }));
    /// ```
    pub fn from_urlencoded_with(body: &[u8], limits: &FormLimits) -> Result<Form, FormError> {
        if body.len() as u64 > limits.max_total_size {
            return Err(FormError::BodyTooLarge {
                limit: limits.max_total_size,
            });
        }
        let mut form = Form::default();
        for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            if form.part_count() == limits.max_parts {
                return Err(FormError::TooManyParts {
                    limit: limits.max_parts,
                });
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &b""[..]),
            };
            let name = String::from_utf8(form_decode(name)).map_err(|e| FormError::NotUtf8 {
                name: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            })?;
            let value = form_decode(value);
            if value.len() > limits.max_field_size {
                return Err(FormError::FieldTooLarge {
                    name,
                    limit: limits.max_field_size,
                });
            }
            let value = String::from_utf8(value).map_err(|_| FormError::NotUtf8 { name: name.clone() })?;
            form.fields.push((name, value));
        }
        Ok(form)
    }

    /// The first value of text field `name`.
    ///
    /// ```
    /// let form = hvws::Form::from_urlencoded(b"a=1&a=2")?;
    /// assert_eq!((form.field("a"), form.field("b")), (Some("1"), None));
    /// # Ok::<(), hvws::FormError>(())
    /// ```
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of text field `name`, in order.
    ///
    /// ```
    /// let form = hvws::Form::from_urlencoded(b"a=1&b=x&a=2")?;
    /// assert_eq!(form.field_values("a").collect::<Vec<_>>(), ["1", "2"]);
    /// # Ok::<(), hvws::FormError>(())
    /// ```
    pub fn field_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every text field as (name, value), in the order they came.
    ///
    /// ```
    /// let form = hvws::Form::from_urlencoded(b"b=2&a=1")?;
    /// assert_eq!(form.fields(), [("b".to_owned(), "2".to_owned()), ("a".to_owned(), "1".to_owned())]);
    /// # Ok::<(), hvws::FormError>(())
    /// ```
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// The number of text fields, repeated names counted each time.
    ///
    /// ```
    /// assert_eq!(hvws::Form::from_urlencoded(b"a=1&a=2&&b=")?.field_count(), 3);
    /// # Ok::<(), hvws::FormError>(())
    /// ```
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// The first file uploaded in field `name`.
    ///
    /// ```
    /// use hvws::{FormLimits, MultipartParser};
    /// let mut parser = MultipartParser::new("multipart/form-data; boundary=XyZ", &FormLimits::default())?;
    /// parser.feed(b"--XyZ\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"me.png\"\r\n\
    ///               Content-Type: image/png\r\n\r\n\x89PNG\r\n--XyZ--\r\n")?;
    /// let form = parser.finish()?;
    /// let avatar = form.file("avatar").expect("uploaded");
    /// assert_eq!((avatar.file_name(), avatar.content_type(), avatar.len()), (Some("me.png"), "image/png", 4));
    /// assert!(form.file("other").is_none());
    /// # Ok::<(), hvws::FormError>(())
    /// ```
    pub fn file(&self, name: &str) -> Option<&FormFile> {
        self.files.iter().find(|f| f.field_name() == name)
    }

    /// Every uploaded file, in the order they came.
    ///
    /// ```
    /// assert!(hvws::Form::default().files().is_empty());
    /// ```
    pub fn files(&self) -> &[FormFile] {
        &self.files
    }

    /// Fields and files so far, for [`FormLimits::max_parts`].
    pub(crate) fn part_count(&self) -> usize {
        self.fields.len() + self.files.len()
    }

    pub(crate) fn push_field(&mut self, name: String, value: String) {
        self.fields.push((name, value));
    }

    pub(crate) fn push_file(&mut self, file: FormFile) {
        self.files.push(file);
    }
}

/// Decodes one urlencoded name or value to bytes: `+` is a space, `%XX` a
/// byte, anything else itself. `proto::http::query_pairs` decodes the same
/// way but replaces bad UTF-8, where a form must refuse it.
fn form_decode(raw: &[u8]) -> Vec<u8> {
    crate::proto::http::percent_decode_bytes(raw, true)
}

/// The two kinds of form body, by `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FormKind {
    UrlEncoded,
    Multipart,
}

impl FormKind {
    /// The kind of form a `Content-Type` value announces, if any.
    pub(crate) fn of(content_type: &str) -> Option<FormKind> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            Some(FormKind::UrlEncoded)
        } else if media.eq_ignore_ascii_case("multipart/form-data") {
            Some(FormKind::Multipart)
        } else {
            None
        }
    }
}

impl HttpRequest {
    /// The form sent in the body, parsed before the handler ran: for a
    /// `multipart/form-data` or `application/x-www-form-urlencoded`
    /// request. `None` for other requests, and for a
    /// [`RequestBuilder`] request without [`RequestBuilder::form`].
    ///
    /// ```
    /// use hvws::{Form, HttpRequest, Method};
    /// let req = HttpRequest::builder(Method::Post, "/login")
    ///     .form(Form::from_urlencoded(b"user=ada&pass=x")?)
    ///     .build();
    /// assert_eq!(req.form().map(|f| f.field_count()), Some(2));
    /// assert!(HttpRequest::builder(Method::Get, "/").build().form().is_none());
    /// # Ok::<(), hvws::FormError>(())
    /// ```
    pub fn form(&self) -> Option<&Form> {
        self.form.get::<Form>()
    }

    /// The first value of text field `name` of the [form](HttpRequest::form).
    ///
    /// ```
    /// use hvws::{Form, HttpRequest, Method};
    /// let req = HttpRequest::builder(Method::Post, "/login")
    ///     .form(Form::from_urlencoded(b"user=ada")?)
    ///     .build();
    /// assert_eq!((req.form_field("user"), req.form_field("pass")), (Some("ada"), None));
    /// # Ok::<(), hvws::FormError>(())
    /// ```
    pub fn form_field(&self, name: &str) -> Option<&str> {
        self.form()?.field(name)
    }

    /// Saves the file uploaded in form field `field` into directory `dir`
    /// under its sanitized name ([`FormFile::save_to`] without overwrite)
    /// and returns its path. [`UploadError::NoFile`] if there is no such
    /// file; [`UploadError::Exists`] if a file of that name is there.
    ///
    /// ```
    /// use hvws::{HttpRequest, HttpResponse, Method, UploadError};
    /// fn upload(req: &HttpRequest) -> HttpResponse {
    ///     match req.save_form_file("avatar", "uploads") {
    ///         Ok(path) => HttpResponse::text(format!("saved as {}", path.display())),
    ///         Err(e) => e.into(),
    ///     }
    /// }
    /// let resp = upload(&HttpRequest::builder(Method::Post, "/upload").build());
    /// assert_eq!(resp.status(), 400);
    /// ```
    pub fn save_form_file(&self, field: &str, dir: impl AsRef<Path>) -> Result<PathBuf, UploadError> {
        let file = self
            .form()
            .and_then(|f| f.file(field))
            .ok_or_else(|| UploadError::NoFile {
                field: field.to_owned(),
            })?;
        file.save_to(dir, false)
    }

    /// Parses this request's body as a form, by its `Content-Type`, with
    /// `limits`: what the dispatcher does before a handler runs, for bodies
    /// already in memory (tests, or a handler that wants other limits).
    ///
    /// ```
    /// use hvws::{FormLimits, HttpRequest, Method};
    /// let req = HttpRequest::builder(Method::Post, "/")
    ///     .header("Content-Type", "multipart/form-data; boundary=b")
    ///     .body("--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n42\r\n--b--")
    ///     .build();
    /// assert_eq!(req.parse_form(&FormLimits::default())?.field("x"), Some("42"));
    /// # Ok::<(), hvws::FormError>(())
    /// ```
    pub fn parse_form(&self, limits: &FormLimits) -> Result<Form, FormError> {
        let content_type = self.header("content-type").unwrap_or("");
        match FormKind::of(content_type) {
            Some(FormKind::UrlEncoded) => Form::from_urlencoded_with(&self.body, limits),
            Some(FormKind::Multipart) => {
                let mut parser = MultipartParser::new(content_type, limits)?;
                parser.feed(&self.body)?;
                parser.finish()
            }
            None => Err(FormError::UnsupportedContentType(content_type.to_owned())),
        }
    }
}

impl RequestBuilder {
    /// Attaches `form`, as the dispatcher does for a form body, so
    /// [`HttpRequest::form`] and its helpers see it.
    ///
    /// ```
    /// use hvws::{Form, HttpRequest, Method};
    /// let req = HttpRequest::builder(Method::Post, "/").form(Form::from_urlencoded(b"a=1")?).build();
    /// assert_eq!(req.form_field("a"), Some("1"));
    /// # Ok::<(), hvws::FormError>(())
    /// ```
    pub fn form(mut self, form: Form) -> RequestBuilder {
        self.req.form.set(form);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::Method;

    #[track_caller]
    fn fields(body: &str) -> Vec<(String, String)> {
        Form::from_urlencoded(body.as_bytes()).expect("a valid form").fields
    }

    #[track_caller]
    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn urlencoded_pairs_in_order() {
        assert_eq!(
            fields("a=1&b=two+words&a=3"),
            pairs(&[("a", "1"), ("b", "two words"), ("a", "3")])
        );
        assert_eq!(fields(""), pairs(&[]));
        assert_eq!(fields("&&a=&&b&"), pairs(&[("a", ""), ("b", "")]));
        assert_eq!(fields("k=v=w"), pairs(&[("k", "v=w")]));
    }

    #[test]
    fn urlencoded_percent_decoding() {
        assert_eq!(
            fields("na%6De=%E2%82%AC+%2B1%26%3D&x=100%&y=%zz%4"),
            pairs(&[("name", "€ +1&="), ("x", "100%"), ("y", "%zz%4")])
        );
        assert_eq!(fields("%2b=%2B"), pairs(&[("+", "+")]));
    }

    #[test]
    fn urlencoded_invalid_utf8_is_an_error_naming_the_field() {
        let err = Form::from_urlencoded(b"ok=1&bad=%C3%28").unwrap_err();
        assert!(matches!(&err, FormError::NotUtf8 { name } if name == "bad"), "{err:?}");
        assert_eq!(err.status(), 400);
        let err = Form::from_urlencoded(b"%FF=1").unwrap_err();
        assert!(
            matches!(&err, FormError::NotUtf8 { name } if name == "\u{fffd}"),
            "{err:?}"
        );
    }

    #[test]
    fn urlencoded_limits() {
        let limits = FormLimits {
            max_parts: 2,
            max_field_size: 3,
            max_total_size: 20,
            ..FormLimits::default()
        };
        assert_eq!(
            Form::from_urlencoded_with(b"a=123&b=%41%42%43", &limits)
                .unwrap()
                .field_count(),
            2
        );
        let err = Form::from_urlencoded_with(b"a=1&b=2&c=3", &limits).unwrap_err();
        assert!(matches!(err, FormError::TooManyParts { limit: 2 }), "{err:?}");
        let err = Form::from_urlencoded_with(b"a=1234", &limits).unwrap_err();
        assert!(
            matches!(&err, FormError::FieldTooLarge { name, limit: 3 } if name == "a"),
            "{err:?}"
        );
        let err = Form::from_urlencoded_with(&[b'a'; 21], &limits).unwrap_err();
        assert!(matches!(err, FormError::BodyTooLarge { limit: 20 }), "{err:?}");
        for err in [
            FormError::TooManyParts { limit: 1 },
            FormError::FieldTooLarge {
                name: "a".into(),
                limit: 1,
            },
            FormError::BodyTooLarge { limit: 1 },
        ] {
            assert_eq!(err.status(), 413, "{err:?}");
        }
    }

    #[test]
    fn form_kind_from_content_type() {
        assert_eq!(
            FormKind::of("application/x-www-form-urlencoded"),
            Some(FormKind::UrlEncoded)
        );
        assert_eq!(
            FormKind::of("Application/X-WWW-Form-UrlEncoded; charset=UTF-8"),
            Some(FormKind::UrlEncoded)
        );
        assert_eq!(
            FormKind::of(" multipart/form-data ; boundary=x"),
            Some(FormKind::Multipart)
        );
        assert_eq!(FormKind::of("multipart/mixed; boundary=x"), None);
        assert_eq!(FormKind::of("text/plain"), None);
        assert_eq!(FormKind::of(""), None);
    }

    #[test]
    fn parse_form_by_content_type() {
        let req = HttpRequest::builder(Method::Post, "/")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("a=1")
            .build();
        assert_eq!(req.parse_form(&FormLimits::default()).unwrap().field("a"), Some("1"));
        let req = HttpRequest::builder(Method::Post, "/")
            .header("Content-Type", "application/json")
            .body("{}")
            .build();
        let err = req.parse_form(&FormLimits::default()).unwrap_err();
        assert!(matches!(&err, FormError::UnsupportedContentType(t) if t == "application/json"));
        assert_eq!(err.status(), 415);
        let bare = HttpRequest::builder(Method::Post, "/").build();
        assert!(matches!(
            bare.parse_form(&FormLimits::default()),
            Err(FormError::UnsupportedContentType(t)) if t.is_empty()
        ));
    }

    #[test]
    fn request_form_helpers() {
        let req = HttpRequest::builder(Method::Post, "/")
            .form(Form::from_urlencoded(b"a=1&a=2").unwrap())
            .build();
        assert_eq!(req.form_field("a"), Some("1"));
        assert_eq!(req.form_field("b"), None);
        let err = req.save_form_file("a", std::env::temp_dir()).unwrap_err();
        assert!(matches!(&err, UploadError::NoFile { field } if field == "a"), "{err:?}");
        let bare = HttpRequest::builder(Method::Post, "/").build();
        assert_eq!(bare.form_field("a"), None);
        assert!(matches!(
            bare.save_form_file("f", std::env::temp_dir()),
            Err(UploadError::NoFile { .. })
        ));
    }
}
