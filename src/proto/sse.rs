//! Server-Sent Events (the WHATWG HTML "event stream" format): one event
//! as the lines a browser's `EventSource` reads.

use std::fmt;

/// One Server-Sent Event: `data` (split into one `data:` line per line),
/// and optionally its `event` type, `id` and `retry` delay; or a comment
/// (a heartbeat that keeps proxies from timing the stream out).
///
/// ```
/// use hvws::SseEvent;
/// let e = SseEvent::new("line one\nline two").event("tick").id("7");
/// assert_eq!(e.to_string(), "event: tick\nid: 7\ndata: line one\ndata: line two\n\n");
/// assert_eq!(SseEvent::comment("heartbeat").to_string(), ": heartbeat\n\n");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    data: Option<String>,
    comment: Option<String>,
}

/// Keeps a field on one line: a CR or LF in it would end the field early
/// and let its rest be read as another field.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

impl SseEvent {
    /// An event carrying `data` (of the default type, `message`).
    pub fn new(data: impl Into<String>) -> SseEvent {
        SseEvent {
            data: Some(data.into()),
            ..SseEvent::default()
        }
    }

    /// A comment line: ignored by `EventSource`, but it keeps the
    /// connection (and the proxies on its way) from going idle.
    pub fn comment(text: &str) -> SseEvent {
        SseEvent {
            comment: Some(one_line(text)),
            ..SseEvent::default()
        }
    }

    /// Sets the event type (`event:`); `EventSource` dispatches it to the
    /// listeners of that type. Line breaks become spaces.
    pub fn event(mut self, event: &str) -> SseEvent {
        self.event = Some(one_line(event));
        self
    }

    /// Sets the event id (`id:`): the browser sends the last one back in
    /// `Last-Event-ID` when it reconnects. Line breaks and NULs (which make
    /// a browser ignore the id) become spaces.
    pub fn id(mut self, id: &str) -> SseEvent {
        self.id = Some(one_line(id).replace('\0', " "));
        self
    }

    /// Sets how long the browser waits before reconnecting (`retry:`).
    pub fn retry(mut self, millis: u64) -> SseEvent {
        self.retry = Some(millis);
        self
    }

    /// Appends the event's wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        if let Some(c) = &self.comment {
            let _ = writeln!(out, ": {c}");
        }
        if let Some(e) = &self.event {
            let _ = writeln!(out, "event: {e}");
        }
        if let Some(id) = &self.id {
            let _ = writeln!(out, "id: {id}");
        }
        if let Some(ms) = self.retry {
            let _ = writeln!(out, "retry: {ms}");
        }
        if let Some(data) = &self.data {
            // Every line ending the format knows (CRLF, CR, LF) starts a
            // new `data:` line; the browser joins them back with LF.
            let data = data.replace("\r\n", "\n").replace('\r', "\n");
            for line in data.split('\n') {
                let _ = writeln!(out, "data: {line}");
            }
        }
        out.push(b'\n');
    }
}

impl fmt::Display for SseEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.encode(&mut out);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_on_the_wire() {
        let e = SseEvent::new("a\r\nb\rc\n").event("up\ndate").id("1\0").retry(3000);
        assert_eq!(
            e.to_string(),
            "event: up date\nid: 1 \nretry: 3000\ndata: a\ndata: b\ndata: c\ndata: \n\n"
        );
        assert_eq!(SseEvent::new("").to_string(), "data: \n\n");
        assert_eq!(SseEvent::comment("x\ny").to_string(), ": x y\n\n");
    }
}
