//! A server connection's one running timer: which it is, when it fires,
//! whether it moved since the owner last looked, and what it does when it
//! comes due.

use std::time::Instant;

use super::super::http::HttpResponse;
use super::super::timer::{Deadline, Timer};
use super::{Ended, Http, Limits, ServerConn, ServerEvent, State};

impl ServerConn {
    pub(super) fn set_deadline(&mut self, deadline: Option<Deadline>) {
        if self.timer() != deadline {
            self.deadline_timer = deadline.map(|d| d.timer);
            if let Some(d) = deadline {
                self.deadline_at = d.at;
            }
            self.deadline_moved = true;
        }
    }

    /// When [`ServerConn::handle_timeout`] is next needed.
    #[inline]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline_timer.map(|_| self.deadline_at)
    }

    /// The running timer, if any.
    #[inline]
    pub fn timer(&self) -> Option<Deadline> {
        self.deadline_timer.map(|t| Deadline::new(t, self.deadline_at))
    }

    /// The new deadline, if it changed since the last call: for a driver
    /// that keeps one schedule for many connections.
    #[inline]
    pub fn take_moved_timeout(&mut self) -> Option<Instant> {
        if std::mem::take(&mut self.deadline_moved) {
            self.poll_timeout()
        } else {
            None
        }
    }

    /// Deadlines that came due by `now`.
    pub fn handle_timeout(&mut self, now: Instant, limits: &Limits) -> Option<ServerEvent<'static>> {
        let deadline = self.timer().filter(|d| d.is_due(now))?;
        self.set_deadline(None);
        match (deadline.timer, &mut self.state) {
            (Timer::Request, State::Http(Http::Reading | Http::Body(_))) => {
                log::debug!("{}: request timeout", self.peer());
                self.respond_and_close(&HttpResponse::error(408), now, limits);
                None
            }
            (Timer::Keepalive, State::Ws(w)) => {
                let next = if w.ws.handle_keepalive(&mut self.out, now, limits) {
                    Deadline::new(Timer::CloseHandshake, now + limits.close_timeout)
                } else {
                    match w.ws.next_keepalive(now, limits) {
                        Some(at) => Deadline::new(Timer::Keepalive, at),
                        None => return None,
                    }
                };
                self.set_deadline(Some(next));
                None
            }
            (Timer::CloseHandshake, State::Ws(w)) => {
                let (close, error) = w.ws.close_timed_out();
                self.begin_closing(now, limits, false, true);
                Some(ServerEvent::Closed(Ended::boxed(close, Some(error))))
            }
            (Timer::Linger, State::Closing { done, .. }) => {
                *done = true;
                None
            }
            // A timer of an earlier phase (each phase sets its own).
            _ => None,
        }
    }
}
