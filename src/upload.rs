//! Uploads: a request body streamed in (`multipart/form-data`), read
//! before its route runs.
// MERGE: the multipart parser replaces this buffer when it lands.

use crate::proto::http::{HttpRequest, HttpResponse};

/// A streamed request body being read.
#[derive(Debug)]
pub(crate) struct Upload {
    req: Box<HttpRequest>,
}

impl Upload {
    pub fn new(req: Box<HttpRequest>, _config: &crate::ServerConfig) -> Result<Upload, HttpResponse> {
        Ok(Upload { req })
    }

    pub fn feed(&mut self, data: &[u8]) -> Result<(), HttpResponse> {
        self.req.body.extend_from_slice(data);
        Ok(())
    }

    pub fn finish(self) -> Result<Box<HttpRequest>, HttpResponse> {
        Ok(self.req)
    }
}
