//! Uploaded files: [`FormFile`], written as its part arrives (in memory up
//! to [`FormLimits::memory_threshold`], then to a temporary file), read
//! back, and saved under a name that cannot leave the chosen directory.

use std::borrow::Cow;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::{NamedTempFile, TempPath};

use crate::proto::http::HttpResponse;

use super::file_name::sanitize_file_name;
use super::limits::{FormError, FormLimits};
use super::multipart::reserve_within;

/// A file uploaded in a multipart form.
///
/// Its bytes are in memory or, past [`FormLimits::memory_threshold`], in a
/// temporary file that is removed when the last clone of the [`Form`](crate::Form)
/// is dropped; [`FormFile::save_to`] keeps a copy. Clones share the data.
///
/// ```
/// use hvws::{FormLimits, MultipartParser};
/// let mut parser = MultipartParser::new("multipart/form-data; boundary=b", &FormLimits::default())?;
/// parser.feed(b"--b\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"notes.txt\"\r\n\r\nhi\r\n--b--")?;
/// let form = parser.finish()?;
/// let doc = &form.files()[0];
/// assert_eq!(doc.field_name(), "doc");
/// assert_eq!(doc.file_name(), Some("notes.txt"));
/// assert_eq!(doc.content_type(), "application/octet-stream");
/// assert_eq!(&doc.bytes()?[..], b"hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct FormFile {
    field: String,
    file_name: Option<String>,
    content_type: Option<String>,
    len: u64,
    data: Arc<Data>,
}

enum Data {
    Memory(Vec<u8>),
    /// Removed from disk when dropped.
    Temp(NamedTempFile),
}

/// Where the bytes are, not the bytes: a request's `Debug` in a log line
/// must not print a 64 KiB upload.
impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Memory(bytes) => write!(f, "Memory({} bytes)", bytes.len()),
            Data::Temp(temp) => f.debug_tuple("Temp").field(&temp.path()).finish(),
        }
    }
}

impl FormFile {
    /// The name of the form field the file was uploaded in.
    ///
    /// See [`FormFile`] for an example.
    pub fn field_name(&self) -> &str {
        &self.field
    }

    /// The file name the client sent, `None` if it sent an empty one.
    ///
    /// It is the client's text, only unquoted (`filename*` decoded, bytes
    /// that are not UTF-8 replaced by U+FFFD): it may hold a path, `..` or
    /// control characters. Show it escaped; never use it as a path, that is
    /// what [`FormFile::safe_file_name`] is for.
    ///
    /// See [`FormFile`] for an example.
    pub fn file_name(&self) -> Option<&str> {
        self.file_name.as_deref()
    }

    /// The name [`FormFile::save_to`] saves the file under: the sent name's
    /// last component after `/`, `\` or `:` (a Windows path, a drive
    /// letter), without leading dots (no hidden files) or trailing dots and
    /// spaces (which Windows drops), cut to 255 bytes keeping a short
    /// extension. [`UploadError::BadFileName`] if the client sent no name,
    /// if nothing is left, or if it holds control characters (a NUL would
    /// cut the name short in C code, a newline would forge log lines).
    ///
    /// ```
    /// # use hvws::{FormLimits, MultipartParser};
    /// # fn upload(name: &str) -> hvws::FormFile {
    /// #     let mut p = MultipartParser::new("multipart/form-data; boundary=b", &FormLimits::default()).unwrap();
    /// #     p.feed(format!("--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{name}\"\r\n\r\nx\r\n--b--").as_bytes()).unwrap();
    /// #     p.finish().unwrap().files()[0].clone()
    /// # }
    /// assert_eq!(upload("../../etc/passwd").safe_file_name()?, "passwd");
    /// assert_eq!(upload(r"C:\Users\me\photo.jpg").safe_file_name()?, "photo.jpg");
    /// assert_eq!(upload(".htaccess").safe_file_name()?, "htaccess");
    /// assert!(upload("..").safe_file_name().is_err());
    /// # Ok::<(), hvws::UploadError>(())
    /// ```
    pub fn safe_file_name(&self) -> Result<String, UploadError> {
        let sent = self.file_name.as_deref().unwrap_or("");
        sanitize_file_name(sent).map_err(|reason| UploadError::BadFileName {
            name: sent.to_owned(),
            reason,
        })
    }

    /// The part's `Content-Type`, `application/octet-stream` if it had
    /// none (RFC 7578 §4.4). It is what the client claims: check the bytes
    /// if it matters.
    ///
    /// See [`FormFile`] for an example.
    pub fn content_type(&self) -> &str {
        self.content_type.as_deref().unwrap_or("application/octet-stream")
    }

    /// The file's size in bytes.
    ///
    /// See [`Form::file`](crate::Form::file) for an example.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    ///
    /// See [`Form::file`](crate::Form::file) for an example.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The temporary file holding the data, for a file larger than
    /// [`FormLimits::memory_threshold`]; `None` for one in memory. It is
    /// removed with the form: save it with [`FormFile::save_to`], do not
    /// move it.
    ///
    /// ```
    /// use hvws::{FormLimits, MultipartParser};
    /// let limits = FormLimits { memory_threshold: 4, ..FormLimits::default() };
    /// let mut parser = MultipartParser::new("multipart/form-data; boundary=b", &limits)?;
    /// parser.feed(b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big.bin\"\r\n\r\n0123456789\r\n--b--")?;
    /// let form = parser.finish()?;
    /// let path = form.files()[0].path().expect("spilled to disk").to_owned();
    /// assert_eq!(std::fs::read(&path)?, b"0123456789");
    /// drop(form);
    /// assert!(!path.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> Option<&Path> {
        match &*self.data {
            Data::Memory(_) => None,
            Data::Temp(temp) => Some(temp.path()),
        }
    }

    /// The file's bytes: borrowed when in memory, read from the temporary
    /// file otherwise (mind [`FormFile::len`] before reading a large one;
    /// [`FormFile::reader`] streams).
    ///
    /// See [`FormFile`] for an example.
    pub fn bytes(&self) -> io::Result<Cow<'_, [u8]>> {
        match &*self.data {
            Data::Memory(bytes) => Ok(Cow::Borrowed(bytes)),
            Data::Temp(_) => {
                let mut bytes = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
                self.reader()?.read_to_end(&mut bytes)?;
                Ok(Cow::Owned(bytes))
            }
        }
    }

    /// A reader over the file's bytes from the start; each call gives a new
    /// one.
    ///
    /// ```
    /// # use hvws::{FormLimits, MultipartParser};
    /// # let mut p = MultipartParser::new("multipart/form-data; boundary=b", &FormLimits::default())?;
    /// # p.feed(b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nline 1\nline 2\r\n--b--")?;
    /// # let form = p.finish()?;
    /// use std::io::BufRead;
    /// let lines: Vec<String> = std::io::BufReader::new(form.files()[0].reader()?).lines().collect::<Result<_, _>>()?;
    /// assert_eq!(lines, ["line 1", "line 2"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reader(&self) -> io::Result<impl Read + '_> {
        Ok(match &*self.data {
            Data::Memory(bytes) => Reader::Memory(bytes),
            // A new handle with its own position, checked to be the same
            // file as the one written (not whatever is at the path now).
            Data::Temp(temp) => Reader::File(temp.reopen()?),
        })
    }

    /// Saves the file into directory `dir` under its
    /// [safe name](FormFile::safe_file_name) and returns the path.
    ///
    /// An existing file of that name is an [`UploadError::Exists`] unless
    /// `overwrite`, checked and written atomically: the file appears under
    /// its name complete or not at all. A file in a temporary file on the
    /// same file system as `dir` is hard-linked into place (no copy; the
    /// temporary name still goes with the form), otherwise copied. The
    /// saved file is readable by the server's user only (mode 0600 on Unix,
    /// as the temporary file was).
    ///
    /// ```
    /// # use hvws::{FormLimits, MultipartParser, UploadError};
    /// # let mut p = MultipartParser::new("multipart/form-data; boundary=b", &FormLimits::default())?;
    /// # p.feed(b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../report.pdf\"\r\n\r\n%PDF\r\n--b--")?;
    /// # let form = p.finish()?;
    /// let dir = tempfile::tempdir()?;
    /// let file = form.file("f").unwrap();
    /// let path = file.save_to(dir.path(), false)?;
    /// assert_eq!(path, dir.path().join("report.pdf"));
    /// assert!(matches!(file.save_to(dir.path(), false), Err(UploadError::Exists(_))));
    /// assert_eq!(file.save_to(dir.path(), true)?, path);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save_to(&self, dir: impl AsRef<Path>, overwrite: bool) -> Result<PathBuf, UploadError> {
        let path = dir.as_ref().join(self.safe_file_name()?);
        self.save_as(&path, overwrite)?;
        Ok(path)
    }

    /// Saves the file as `path`, a name the caller chose (it is used as
    /// given: do not build it from the client's file name, that is what
    /// [`FormFile::save_to`] is for). Otherwise as `save_to`.
    ///
    /// ```
    /// # use hvws::{FormLimits, MultipartParser};
    /// # let mut p = MultipartParser::new("multipart/form-data; boundary=b", &FormLimits::default())?;
    /// # p.feed(b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\ndata\r\n--b--")?;
    /// # let form = p.finish()?;
    /// let dir = tempfile::tempdir()?;
    /// form.files()[0].save_as(dir.path().join("user-7.bin"), false)?;
    /// assert_eq!(std::fs::read(dir.path().join("user-7.bin"))?, b"data");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save_as(&self, path: impl AsRef<Path>, overwrite: bool) -> Result<(), UploadError> {
        let path = path.as_ref();
        // Cheap early answer before copying a large file; the atomic
        // no-clobber rename below is what guarantees it.
        if !overwrite && path.symlink_metadata().is_ok() {
            return Err(UploadError::Exists(path.to_owned()));
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let staged = self.stage_in(dir)?;
        let persisted = if overwrite {
            staged.persist(path)
        } else {
            staged.persist_noclobber(path)
        };
        // On failure the error holds the staged path; dropping it removes
        // the staged file.
        persisted.map_err(|e| match e.error.kind() {
            io::ErrorKind::AlreadyExists if !overwrite => UploadError::Exists(path.to_owned()),
            _ => UploadError::Io(e.error),
        })
    }

    /// A hidden temporary file in `dir` with the data, to be renamed into
    /// place: a hard link to our temporary file when both are on one file
    /// system, else a copy.
    fn stage_in(&self, dir: &Path) -> io::Result<TempPath> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(".hvws-upload-");
        if let Data::Temp(temp) = &*self.data {
            match builder.make_in(dir, |staged| fs::hard_link(temp.path(), staged)) {
                Ok(linked) => return Ok(linked.into_temp_path()),
                // EXDEV across file systems, or a file system without hard
                // links: a copy works there.
                Err(e) => log::debug!("hard link of an upload into {} failed ({e}); copying", dir.display()),
            }
        }
        let mut staged = builder.tempfile_in(dir)?;
        io::copy(&mut self.reader()?, staged.as_file_mut())?;
        Ok(staged.into_temp_path())
    }
}

enum Reader<'a> {
    Memory(&'a [u8]),
    File(File),
}

impl Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Reader::Memory(bytes) => bytes.read(buf),
            Reader::File(file) => file.read(buf),
        }
    }
}

/// Why an uploaded file could not be saved.
///
/// Answer with [`UploadError::status`] (or `HttpResponse::from(e)`).
///
/// ```
/// use hvws::{HttpRequest, HttpResponse, Method, UploadError};
/// let req = HttpRequest::builder(Method::Post, "/upload").build();
/// let err = req.save_form_file("avatar", "uploads").unwrap_err();
/// assert!(matches!(err, UploadError::NoFile { .. }));
/// assert_eq!(HttpResponse::from(err).body(), b"no file uploaded in form field \"avatar\"");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The request has no form, or no file in that field (400): the client
    /// did not choose a file. Ask for one.
    #[error("no file uploaded in form field {field:?}")]
    NoFile {
        /// The field asked for.
        field: String,
    },
    /// The client's file name leaves nothing safe to save under (400):
    /// save with [`FormFile::save_as`] under a name of your own instead.
    #[error("cannot save an upload named {name:?}: {reason}")]
    BadFileName {
        /// The name as sent.
        name: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// A file of that name exists and `overwrite` was false (409): pick
    /// another name, or overwrite if replacing is what the user asked for.
    #[error("{} exists already", .0.display())]
    Exists(PathBuf),
    /// Linking, copying or renaming failed (500): a missing or read-only
    /// directory, a full disk. Log it; the client cannot fix it.
    #[error("cannot save the upload: {0}")]
    Io(#[from] io::Error),
}

impl UploadError {
    /// The HTTP status to answer with: 400 for the client's mistakes, 409
    /// for [`UploadError::Exists`], 500 for [`UploadError::Io`].
    ///
    /// ```
    /// assert_eq!(hvws::UploadError::Exists("a.txt".into()).status(), 409);
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            UploadError::NoFile { .. } | UploadError::BadFileName { .. } => 400,
            UploadError::Exists(_) => 409,
            UploadError::Io(_) => 500,
        }
    }
}

/// [`UploadError::status`] with the error's message as a text body; a 500
/// says only "Internal Server Error" and a 409 names the file only, not
/// the server's directory.
impl From<UploadError> for HttpResponse {
    fn from(e: UploadError) -> HttpResponse {
        let body = match &e {
            UploadError::Io(_) => return HttpResponse::error(500),
            UploadError::Exists(path) => {
                let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
                format!("{name:?} exists already")
            }
            _ => e.to_string(),
        };
        HttpResponse::text(body).with_status(e.status())
    }
}

/// A file part as it arrives: its bytes in memory until they pass
/// [`FormLimits::memory_threshold`], then in a temporary file.
#[derive(Debug)]
pub(crate) struct FileWriter {
    field: String,
    file_name: Option<String>,
    content_type: Option<String>,
    len: u64,
    sink: Sink,
}

#[derive(Debug)]
enum Sink {
    Memory(Vec<u8>),
    /// The buffer turns a client's tiny pieces into few writes.
    Temp(BufWriter<NamedTempFile>),
}

impl FileWriter {
    pub(crate) fn new(field: String, file_name: Option<String>, content_type: Option<String>) -> FileWriter {
        FileWriter {
            field,
            file_name,
            content_type,
            len: 0,
            sink: Sink::Memory(Vec::new()),
        }
    }

    /// Appends `data`, spilling to a temporary file once past the
    /// threshold.
    pub(crate) fn write(&mut self, data: &[u8], limits: &FormLimits) -> Result<(), FormError> {
        let len = self.len + data.len() as u64;
        if len > limits.max_file_size {
            return Err(FormError::FileTooLarge {
                name: self.field.clone(),
                limit: limits.max_file_size,
            });
        }
        match &mut self.sink {
            Sink::Memory(buf) if buf.len() + data.len() <= limits.memory_threshold => {
                reserve_within(buf, data.len(), limits.memory_threshold);
                buf.extend_from_slice(data);
            }
            Sink::Memory(buf) => {
                let temp = match &limits.temp_dir {
                    Some(dir) => tempfile::Builder::new().prefix("hvws-upload-").tempfile_in(dir)?,
                    None => tempfile::Builder::new().prefix("hvws-upload-").tempfile()?,
                };
                let mut out = BufWriter::new(temp);
                out.write_all(buf)?;
                out.write_all(data)?;
                self.sink = Sink::Temp(out);
            }
            Sink::Temp(out) => out.write_all(data)?,
        }
        self.len = len;
        Ok(())
    }

    /// Bytes held in memory: the data below the threshold, or the write
    /// buffer.
    pub(crate) fn buffered_bytes(&self) -> usize {
        match &self.sink {
            Sink::Memory(buf) => buf.capacity(),
            Sink::Temp(out) => out.capacity(),
        }
    }

    /// Whether the bytes went to a temporary file.
    #[cfg(test)]
    pub(crate) fn on_disk(&self) -> bool {
        matches!(self.sink, Sink::Temp(_))
    }

    /// The finished file; `None` for an unused file input (no name and no
    /// bytes), which browsers send when no file was chosen.
    pub(crate) fn finish(self) -> Result<Option<FormFile>, FormError> {
        let data = match self.sink {
            Sink::Memory(buf) if buf.is_empty() && self.file_name.is_none() => return Ok(None),
            Sink::Memory(buf) => Data::Memory(buf),
            Sink::Temp(out) => Data::Temp(out.into_inner().map_err(|e| e.into_error())?),
        };
        Ok(Some(FormFile {
            field: self.field,
            file_name: self.file_name,
            content_type: self.content_type,
            len: self.len,
            data: Arc::new(data),
        }))
    }
}

#[cfg(test)]
#[path = "upload_tests.rs"]
mod tests;
