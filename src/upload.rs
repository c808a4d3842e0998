//! The dispatcher's side of forms: a `multipart/form-data` body parsed
//! piece by piece as the core hands it out (files past the memory
//! threshold go to temporary files as they arrive), and a urlencoded body
//! parsed once whole; either way the form is on the request before its
//! route runs.

use crate::http::{FormKind, FormLimits};
use crate::proto::http::{HttpRequest, HttpResponse};
use crate::{Form, MultipartParser};

/// An upload being read: its request's head and the parser.
#[derive(Debug)]
pub(crate) struct Upload {
    req: Box<HttpRequest>,
    parser: MultipartParser,
}

/// An upload refused: its request and the answer to give (boxed: the
/// refusal is rare, and the `Result` stays small).
pub type Refused = (Box<HttpRequest>, Box<HttpResponse>);

impl Upload {
    /// Starts reading a streamed body; a `Content-Type` without a usable
    /// boundary is refused at once.
    pub fn new(req: Box<HttpRequest>, limits: &FormLimits) -> Result<Upload, Refused> {
        let content_type = req.header("content-type").unwrap_or("");
        match MultipartParser::new(content_type, limits) {
            Ok(parser) => Ok(Upload { req, parser }),
            Err(e) => Err((req, Box::new(HttpResponse::from(e)))),
        }
    }

    /// The upload's request head.
    pub fn request(&self) -> &HttpRequest {
        &self.req
    }

    /// The next piece of the body; an error ends the upload (its
    /// temporary files go with the parser) with the answer to give.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), HttpResponse> {
        self.parser.feed(data).map_err(HttpResponse::from)
    }

    /// The body is complete: the request, with its form.
    pub fn finish(self) -> Result<Box<HttpRequest>, Refused> {
        let mut req = self.req;
        match self.parser.finish() {
            Ok(form) => {
                req.form.set(form);
                Ok(req)
            }
            Err(e) => Err((req, Box::new(HttpResponse::from(e)))),
        }
    }
}

/// Attaches a urlencoded body's form to its request. A body that does not
/// parse is left to the route (`req.form()` is `None`, and
/// `req.parse_form` says why): a route that does not read forms should not
/// fail because of one.
pub(crate) fn attach_urlencoded(req: &mut HttpRequest, limits: &FormLimits) {
    if req.form.is_some() || req.body().is_empty() {
        return;
    }
    let Some(FormKind::UrlEncoded) = req.header("content-type").and_then(FormKind::of) else {
        return;
    };
    match Form::from_urlencoded_with(req.body(), limits) {
        Ok(form) => req.form.set(form),
        Err(e) => log::debug!("{}: urlencoded body not parsed: {e}", req.peer_addr()),
    }
}
