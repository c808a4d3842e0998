//! Routes that are more than a handler: a folder of static files, one
//! file, Server-Sent Events streams, and the server's figures for
//! Prometheus. Each is registered through the
//! ordinary route table, so precedence, middleware and CORS apply to them
//! as to any route.

use std::path::PathBuf;

use super::static_files::{serve_dir_with, serve_file_with, StaticOptions};
use super::Routes;
use crate::context::Context;
use crate::exchange::ResponseId;
use crate::proto::http::{HttpRequest, HttpResponse};

impl<H> Routes<H> {
    /// Serves the files under `dir` at `prefix` (dasHV's `STATIC`):
    /// `GET`/`HEAD` `prefix/a/b.css` is `dir/a/b.css`, with its content
    /// type, validators and ranges, streamed from disk as the socket
    /// drains. Nothing outside `dir` is ever served (see
    /// [`serve_dir`](crate::serve_dir)); a directory gives its
    /// `index.html`.
    ///
    /// ```
    /// let mut routes: hvws::Routes<()> = hvws::Routes::default();
    /// routes.static_dir("/static", "./public");
    /// assert!(routes.check().is_ok());
    /// ```
    pub fn static_dir(&mut self, prefix: &str, dir: impl Into<PathBuf>) -> &mut Self {
        self.static_dir_with(prefix, dir, StaticOptions::default())
    }

    /// [`Routes::static_dir`] with options (`Cache-Control`, the index
    /// file, dotfiles).
    pub fn static_dir_with(&mut self, prefix: &str, dir: impl Into<PathBuf>, options: StaticOptions) -> &mut Self {
        let dir = dir.into();
        let base = prefix.trim_end_matches('/');
        let options = std::sync::Arc::new(options);
        let (d, o) = (dir.clone(), std::sync::Arc::clone(&options));
        self.get(&format!("{base}/*path"), move |_, _, req| {
            serve_dir_with(req, &d, req.param("path").unwrap_or(""), &o)
        });
        if !base.is_empty() {
            // `/static` itself: its index, reached by a 301 to `/static/`.
            self.get(base, move |_, _, req| serve_dir_with(req, &dir, "", &options));
        }
        self
    }

    /// Serves one file at `path` (dasHV's `SERVE_FILE`), with its content
    /// type, validators and ranges.
    ///
    /// ```
    /// let mut routes: hvws::Routes<()> = hvws::Routes::default();
    /// routes.file("/", "./public/index.html");
    /// ```
    pub fn file(&mut self, path: &str, file: impl Into<PathBuf>) -> &mut Self {
        let file = file.into();
        self.get(path, move |_, _, req| {
            serve_file_with(req, &file, &StaticOptions::default())
        })
    }

    /// Registers a Server-Sent Events stream on `pattern`, for every method
    /// (as dasHV's `SSE`). Before `handler` runs, the request is deferred
    /// and the stream's head sent (200, `text/event-stream`,
    /// `Cache-Control: no-cache`); `handler` gets the stream's id, to write
    /// events with [`Context::send_event`] on this tick and later ones (or
    /// through the [`ServerHandle`](crate::ServerHandle)) until
    /// [`Context::end`]. `Last-Event-ID` is the request's header.
    ///
    /// ```
    /// use hvws::{Routes, SseEvent};
    /// let mut routes: Routes<Vec<hvws::ResponseId>> = Routes::default();
    /// routes.sse("/feed", |feeds, ctx, req, id| {
    ///     let since = req.header("last-event-id").unwrap_or("0");
    ///     ctx.send_event(id, &SseEvent::new(format!("hello, resuming after {since}")));
    ///     feeds.push(id); // the game loop writes to them every frame
    /// });
    /// ```
    pub fn sse<F>(&mut self, pattern: &str, mut handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest, ResponseId) + Send + 'static,
    {
        self.any(pattern, move |h, ctx, req| {
            let Some(id) = ctx.defer() else {
                return HttpResponse::error(500);
            };
            ctx.start_stream(id, HttpResponse::event_stream());
            handler(h, ctx, req, id);
            HttpResponse::deferred()
        })
    }

    /// Serves the server's figures ([`Stats`](crate::Stats)) at `path` in
    /// the Prometheus text format, version 0.0.4, for a Prometheus server
    /// to scrape: `GET path` answers `200` with `text/plain; version=0.0.4;
    /// charset=utf-8` and every figure as an `hvws_...` metric. A server
    /// that joined a [`Hub`](crate::Hub) (a [`ServerGroup`](crate::ServerGroup)'s
    /// threads) answers with the whole hub's figures ([`Hub::stats`](crate::Hub::stats)),
    /// since a scrape lands on whichever thread the kernel picks. Like any
    /// route, it goes through the middleware (put it behind an
    /// authentication check if the port is public).
    ///
    /// ```
    /// let mut routes: hvws::Routes<()> = hvws::Routes::default();
    /// routes.metrics("/metrics");
    /// assert!(routes.check().is_ok());
    /// ```
    pub fn metrics(&mut self, path: &str) -> &mut Self {
        self.get(path, |_, ctx, _| {
            // A server of a group answers for the whole group.
            let stats = ctx.hub().map_or_else(|| ctx.stats(), |hub| hub.stats());
            HttpResponse::bytes(crate::stats::PROMETHEUS_CONTENT_TYPE, stats.to_prometheus())
        })
    }
}
