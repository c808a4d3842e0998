//! The request builder (dasHV HV-02): method, URL, query parameters,
//! headers, a body as text, bytes, JSON, an urlencoded form or multipart
//! with files, auth, timeouts, redirects and the response cap.

use std::path::PathBuf;
use std::time::Duration;

use data_encoding::BASE64;

use super::url::{encode_component, Url};
use crate::error::HttpClientError;
use crate::proto::http::Method;

/// One part of a multipart body.
#[derive(Clone, Debug)]
enum Part {
    Field {
        name: String,
        value: String,
    },
    File {
        name: String,
        path: PathBuf,
    },
    Bytes {
        name: String,
        file_name: String,
        content_type: String,
        data: Vec<u8>,
    },
}

#[derive(Clone, Debug, Default)]
enum Body {
    #[default]
    None,
    Bytes {
        data: Vec<u8>,
        content_type: Option<String>,
    },
    Form(Vec<(String, String)>),
    Multipart(Vec<Part>),
}

/// An HTTP request to send with [`HttpClient::request`](crate::HttpClient::request)
/// or [`HttpClient::send_blocking`](crate::HttpClient::send_blocking),
/// built as dasHV's HV-02 builds one. Nothing is checked until it is
/// sent: a bad URL or header is an error then, before anything goes out.
///
/// ```
/// use std::time::Duration;
/// use hvws::ClientRequest;
///
/// let search = ClientRequest::get("http://127.0.0.1:8080/search")
///     .set_param("q", "red fox")
///     .header("Accept", "application/json")
///     .bearer_auth("token123")
///     .timeout(Duration::from_secs(5));
/// let upload = ClientRequest::post("http://127.0.0.1:8080/upload")
///     .set_form_data("title", "screenshot")
///     .set_form_file("file", "shot.png");
/// let login = ClientRequest::post("http://127.0.0.1:8080/login")
///     .form(&[("user", "ada"), ("password", "x")])
///     .allow_redirect(false);
/// # let _ = (search, upload, login);
/// ```
#[derive(Clone, Debug)]
pub struct ClientRequest {
    pub(crate) method: Method,
    url: String,
    params: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    body: Body,
    pub(crate) connect_timeout: Option<Duration>,
    /// `None`: the client's default; `Some(None)`: no total timeout.
    pub(crate) timeout: Option<Option<Duration>>,
    pub(crate) follow_redirects: bool,
    pub(crate) max_redirects: Option<u32>,
    pub(crate) max_response_size: Option<u64>,
    pub(crate) keep_body: bool,
    /// A builder call that failed (JSON that does not serialize), reported
    /// when the request is sent.
    error: Option<String>,
}

/// A request checked and made ready to go: the URL parsed, parameters,
/// auth and the body encoded.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl ClientRequest {
    /// A request with `method` to `url` (`http://host[:port]/path?query`,
    /// or `https://` with the `tls` feature; `user:password@` in it becomes
    /// Basic auth).
    pub fn new(method: Method, url: &str) -> ClientRequest {
        ClientRequest {
            method,
            url: url.to_owned(),
            params: Vec::new(),
            headers: Vec::new(),
            body: Body::None,
            connect_timeout: None,
            timeout: None,
            follow_redirects: true,
            max_redirects: None,
            max_response_size: None,
            keep_body: true,
            error: None,
        }
    }

    /// A GET request.
    pub fn get(url: &str) -> ClientRequest {
        ClientRequest::new(Method::Get, url)
    }

    /// A POST request.
    pub fn post(url: &str) -> ClientRequest {
        ClientRequest::new(Method::Post, url)
    }

    /// A PUT request.
    pub fn put(url: &str) -> ClientRequest {
        ClientRequest::new(Method::Put, url)
    }

    /// A PATCH request.
    pub fn patch(url: &str) -> ClientRequest {
        ClientRequest::new(Method::Patch, url)
    }

    /// A DELETE request.
    pub fn delete(url: &str) -> ClientRequest {
        ClientRequest::new(Method::Delete, url)
    }

    /// A HEAD request: the response has a head and no body.
    pub fn head(url: &str) -> ClientRequest {
        ClientRequest::new(Method::Head, url)
    }

    /// An OPTIONS request.
    pub fn options(url: &str) -> ClientRequest {
        ClientRequest::new(Method::Options, url)
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL as given (before parameters are added).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The first value of query parameter `name` added with
    /// [`ClientRequest::set_param`] (dasHV's `get_param`), as given, not
    /// encoded. Parameters written in the URL itself are not looked at.
    ///
    /// ```
    /// let req = hvws::ClientRequest::get("http://127.0.0.1:8080/ping").set_param("page", "1");
    /// assert_eq!((req.query_param("page"), req.query_param("limit")), (Some("1"), None));
    /// ```
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body given as text, bytes or JSON, as it will be sent. `None`
    /// without a body, and for a form or multipart body, which is only
    /// encoded when the request is sent.
    pub fn payload(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Bytes { data, .. } => Some(data),
            Body::None | Body::Form(_) | Body::Multipart(_) => None,
        }
    }

    /// The total timeout set with [`ClientRequest::timeout`]; `None` if
    /// none was set (the client's default applies) or if
    /// [`ClientRequest::no_timeout`] was.
    pub fn total_timeout(&self) -> Option<Duration> {
        self.timeout.flatten()
    }

    /// Adds a header; repeated names are all sent. `Host`,
    /// `Content-Length` and `Transfer-Encoding` are the client's own and
    /// ignored here.
    pub fn header(mut self, name: &str, value: &str) -> ClientRequest {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds query parameter `name=value` (percent-encoded) to the URL
    /// (dasHV's `set_param`).
    pub fn set_param(mut self, name: &str, value: &str) -> ClientRequest {
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The body as bytes, with `Content-Type: application/octet-stream`
    /// unless a `Content-Type` header is set.
    pub fn body_bytes(mut self, data: impl Into<Vec<u8>>) -> ClientRequest {
        self.body = Body::Bytes {
            data: data.into(),
            content_type: Some("application/octet-stream".into()),
        };
        self
    }

    /// The body as text, with `Content-Type: text/plain; charset=utf-8`
    /// unless a `Content-Type` header is set.
    pub fn body_text(mut self, text: impl Into<String>) -> ClientRequest {
        self.body = Body::Bytes {
            data: text.into().into_bytes(),
            content_type: Some("text/plain; charset=utf-8".into()),
        };
        self
    }

    /// The body as raw bytes with no `Content-Type` of its own (set one
    /// with [`ClientRequest::header`]).
    pub fn body(mut self, data: impl Into<Vec<u8>>) -> ClientRequest {
        self.body = Body::Bytes {
            data: data.into(),
            content_type: None,
        };
        self
    }

    /// The body as JSON, with `Content-Type: application/json`. A value
    /// that does not serialize is an
    /// [`InvalidRequest`](HttpClientError::InvalidRequest) when sent.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> ClientRequest {
        match serde_json::to_vec(value) {
            Ok(data) => {
                self.body = Body::Bytes {
                    data,
                    content_type: Some("application/json".into()),
                }
            }
            Err(e) => self.error = Some(format!("JSON body: {e}")),
        }
        self
    }

    /// The body as an urlencoded form
    /// (`application/x-www-form-urlencoded`), fields in order.
    pub fn form<K: AsRef<str>, V: AsRef<str>>(mut self, fields: &[(K, V)]) -> ClientRequest {
        self.body = Body::Form(
            fields
                .iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
                .collect(),
        );
        self
    }

    fn parts(&mut self) -> &mut Vec<Part> {
        if !matches!(self.body, Body::Multipart(_)) {
            self.body = Body::Multipart(Vec::new());
        }
        match &mut self.body {
            Body::Multipart(parts) => parts,
            _ => unreachable!("set above"),
        }
    }

    /// Adds a field to a `multipart/form-data` body (dasHV HV-05's
    /// `set_form_data`).
    pub fn set_form_data(mut self, name: &str, value: &str) -> ClientRequest {
        self.parts().push(Part::Field {
            name: name.to_owned(),
            value: value.to_owned(),
        });
        self
    }

    /// Adds the file at `path` to a `multipart/form-data` body (HV-05's
    /// `set_form_file`), under its file name, with a `Content-Type` from
    /// its extension. The file is read when the request is sent; one that
    /// cannot be read is an [`InvalidRequest`](HttpClientError::InvalidRequest).
    pub fn set_form_file(mut self, name: &str, path: impl Into<PathBuf>) -> ClientRequest {
        self.parts().push(Part::File {
            name: name.to_owned(),
            path: path.into(),
        });
        self
    }

    /// Adds a file made in memory to a `multipart/form-data` body.
    pub fn set_form_bytes(
        mut self,
        name: &str,
        file_name: &str,
        content_type: &str,
        data: impl Into<Vec<u8>>,
    ) -> ClientRequest {
        self.parts().push(Part::Bytes {
            name: name.to_owned(),
            file_name: file_name.to_owned(),
            content_type: content_type.to_owned(),
            data: data.into(),
        });
        self
    }

    /// `Authorization: Basic` with `user` and `password`.
    pub fn basic_auth(self, user: &str, password: &str) -> ClientRequest {
        let token = BASE64.encode(format!("{user}:{password}").as_bytes());
        self.header("Authorization", &format!("Basic {token}"))
    }

    /// `Authorization: Bearer token`.
    pub fn bearer_auth(self, token: &str) -> ClientRequest {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// Time allowed for TCP to connect (each connection the request needs,
    /// redirects included). Default: the client's
    /// ([`HttpClientConfig::connect_timeout`](crate::HttpClientConfig::connect_timeout)).
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientRequest {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Time allowed for the whole exchange, from `request()` to the last
    /// byte of the response, redirects and a retry included. Default: the
    /// client's ([`HttpClientConfig::timeout`](crate::HttpClientConfig::timeout)).
    pub fn timeout(mut self, timeout: Duration) -> ClientRequest {
        self.timeout = Some(Some(timeout));
        self
    }

    /// No total timeout: for a stream that lasts (Server-Sent Events).
    /// The blocking calls still bound themselves.
    pub fn no_timeout(mut self) -> ClientRequest {
        self.timeout = Some(None);
        self
    }

    /// Whether to follow redirects (301, 302, 303, 307, 308). Default true,
    /// at most [`ClientRequest::max_redirects`]; `false` hands the 3xx to
    /// the caller.
    pub fn allow_redirect(mut self, follow: bool) -> ClientRequest {
        self.follow_redirects = follow;
        self
    }

    /// Most redirects followed. Default: the client's (5).
    pub fn max_redirects(mut self, max: u32) -> ClientRequest {
        self.max_redirects = Some(max);
        self
    }

    /// Largest response body accepted; past it the request fails with
    /// [`TooLarge`](HttpClientError::TooLarge). Default: the client's
    /// (16 MiB).
    pub fn max_response_size(mut self, max: u64) -> ClientRequest {
        self.max_response_size = Some(max);
        self
    }

    /// Whether the complete response holds the body (default true).
    /// `false` for a body that is only read piece by piece through
    /// [`HvHttpClient::on_chunk`](crate::HvHttpClient::on_chunk): a long
    /// stream then holds no memory.
    pub fn keep_body(mut self, keep: bool) -> ClientRequest {
        self.keep_body = keep;
        self
    }

    /// Checks the request and encodes what it carries.
    pub(crate) fn prepare(&self) -> Result<Prepared, HttpClientError> {
        if let Some(e) = &self.error {
            return Err(HttpClientError::InvalidRequest(e.clone()));
        }
        let mut url = Url::parse(&self.url)?;
        for (k, v) in &self.params {
            url.add_param(k, v);
        }
        let mut headers = self.headers.clone();
        let has = |headers: &[(String, String)], name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        if let Some((user, pass)) = &url.userinfo {
            if !has(&headers, "authorization") {
                let token = BASE64.encode(format!("{user}:{pass}").as_bytes());
                headers.push(("Authorization".into(), format!("Basic {token}")));
            }
        }
        let (body, content_type) = match &self.body {
            Body::None => (None, None),
            Body::Bytes { data, content_type } => (Some(data.clone()), content_type.clone()),
            Body::Form(fields) => {
                let encoded: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
                    .collect();
                (
                    Some(encoded.join("&").into_bytes()),
                    Some("application/x-www-form-urlencoded".to_owned()),
                )
            }
            Body::Multipart(parts) => {
                let boundary = format!("hvws-{:032x}", rand::random::<u128>());
                let body = multipart(parts, &boundary)?;
                (Some(body), Some(format!("multipart/form-data; boundary={boundary}")))
            }
        };
        if let Some(ct) = content_type {
            if !has(&headers, "content-type") {
                headers.push(("Content-Type".into(), ct));
            }
        }
        if !has(&headers, "user-agent") {
            headers.push(("User-Agent".into(), concat!("hvws/", env!("CARGO_PKG_VERSION")).into()));
        }
        if !has(&headers, "accept") {
            headers.push(("Accept".into(), "*/*".into()));
        }
        let prepared = Prepared {
            method: self.method.clone(),
            url,
            headers,
            body,
        };
        // Refuse what would not encode (CR/LF in a header) now, not later.
        prepared.encode_check()?;
        Ok(prepared)
    }
}

impl Prepared {
    fn encode_check(&self) -> Result<(), HttpClientError> {
        crate::proto::http_client::encode(&crate::proto::http_client::RequestHead {
            method: self.method.as_str(),
            target: &self.url.target,
            host: &self.url.authority,
            headers: &self.headers,
            body: None,
        })
        .map(|_| ())
        .map_err(|e| HttpClientError::InvalidRequest(e.to_string()))
    }

    /// Whether sending it twice does no more than sending it once (RFC
    /// 9110 §9.2.2): only those are retried on a closed connection.
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self.method,
            Method::Get | Method::Head | Method::Put | Method::Delete | Method::Options
        )
    }
}

/// A `multipart/form-data` body (RFC 7578), names quoted as HTML does.
fn multipart(parts: &[Part], boundary: &str) -> Result<Vec<u8>, HttpClientError> {
    let quote = |s: &str| s.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A");
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Field { name, value } => {
                out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{}\"\r\n\r\n", quote(name)).as_bytes(),
                );
                out.extend_from_slice(value.as_bytes());
            }
            Part::File { name, path } => {
                let data = std::fs::read(path).map_err(|e| {
                    HttpClientError::InvalidRequest(format!("cannot read form file {}: {e}", path.display()))
                })?;
                let file_name = path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let content_type = mime_guess::from_path(path).first_or_octet_stream();
                out.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {content_type}\r\n\r\n",
                        quote(name),
                        quote(&file_name)
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(&data);
            }
            Part::Bytes {
                name,
                file_name,
                content_type,
                data,
            } => {
                out.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                        quote(name),
                        quote(file_name),
                        quote(content_type)
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(data);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(out)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
