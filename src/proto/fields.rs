//! A response's header fields: names and values that are constants in the
//! common case (`Content-Type: text/plain; charset=utf-8`) are kept as
//! `&'static str` rather than copied, and a constant first field lives
//! inline, so a typical response allocates nothing for its headers.

use std::borrow::Cow;
use std::fmt;

use super::head::Lazy;
use super::http1::is_header_safe;

/// One header field, (name, value), as given (not lower-cased).
pub(crate) type Field = (Cow<'static, str>, Cow<'static, str>);

/// A response's header fields, in order.
///
/// The first field, when both its name and value are constants (the
/// `Content-Type` of `HttpResponse::text`, `json`, `html`, `binary`), is
/// kept inline as two `&'static str`; the rest go to a `Vec`. So a typical
/// response allocates nothing for its headers, and `HttpResponse` stays
/// under 128 bytes (it is moved several times between the handler and
/// the encoder).
#[derive(Clone, Default)]
pub(crate) struct Fields {
    /// A constant first field; `None` if the first field is not one.
    first: Option<(&'static str, &'static str)>,
    more: Vec<Field>,
    /// Some field given at run time may hold a CR, LF or NUL (checked when
    /// pushed, so the encoder scans only when one does).
    unsafe_text: bool,
    /// `HttpResponse::headers()`'s owned pairs, made when first asked for.
    owned: Lazy,
}

impl Fields {
    /// Adds a field at the end.
    pub(crate) fn push(&mut self, name: Cow<'static, str>, value: Cow<'static, str>) {
        self.owned.reset();
        match (name, value) {
            (Cow::Borrowed(name), Cow::Borrowed(value)) if self.is_empty() => {
                // Constants are hvws's own and safe.
                debug_assert!(is_header_safe(name) && is_header_safe(value), "{name:?}: {value:?}");
                self.first = Some((name, value));
            }
            (name, value) => {
                // What came at run time is checked now, once.
                let unsafe_text = |s: &Cow<'static, str>| matches!(s, Cow::Owned(_)) && !is_header_safe(s);
                self.unsafe_text |= unsafe_text(&name) || unsafe_text(&value);
                self.more.push((name, value));
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.first.is_none() && self.more.is_empty()
    }

    /// Every field as (name, value), in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.first
            .iter()
            .map(|&(k, v)| (k, v))
            .chain(self.more.iter().map(|(k, v)| (&**k, &**v)))
    }

    /// The first value of `name` (any case).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// Removes every field named `name` (any case).
    pub(crate) fn remove(&mut self, name: &str) {
        if self.get(name).is_none() {
            return;
        }
        let old = std::mem::take(self);
        let first = old.first.map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)));
        for (k, v) in first.into_iter().chain(old.more) {
            if !k.eq_ignore_ascii_case(name) {
                self.push(k, v);
            }
        }
    }

    /// Whether some field may hold a CR, LF or NUL, which must not be sent.
    pub(crate) fn may_be_unsafe(&self) -> bool {
        self.unsafe_text
    }

    /// Every field as owned pairs, made on the first call.
    pub(crate) fn owned(&self) -> &[(String, String)] {
        self.owned.get(|| self.iter())
    }

    /// Whether the fields took a heap block (for tests that pin sizes).
    #[cfg(test)]
    pub(crate) fn spilled(&self) -> bool {
        self.more.capacity() > 0
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Fields {}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&'static str, &'static str)]) -> Fields {
        let mut f = Fields::default();
        for (k, v) in pairs {
            f.push(Cow::Borrowed(k), Cow::Borrowed(v));
        }
        f
    }

    #[test]
    fn order_lookup_and_removal_across_the_inline_edge() {
        let mut f = fields(&[("A", "1"), ("B", "2"), ("a", "3"), ("C", "4")]);
        assert!(f.spilled());
        assert_eq!(
            f.iter().collect::<Vec<_>>(),
            [("A", "1"), ("B", "2"), ("a", "3"), ("C", "4")]
        );
        assert_eq!(f.get("c"), Some("4"));
        f.remove("A");
        assert_eq!(f.iter().collect::<Vec<_>>(), [("B", "2"), ("C", "4")]);
        assert_eq!(f, fields(&[("B", "2"), ("C", "4")]));
        f.remove("nope");
        assert_eq!(f.owned().len(), 2);
        // A constant pushed after another field goes after it.
        let mut f = Fields::default();
        f.push(String::from("X").into(), String::from("1").into());
        f.push(Cow::Borrowed("Y"), Cow::Borrowed("2"));
        assert_eq!(f.iter().collect::<Vec<_>>(), [("X", "1"), ("Y", "2")]);
        assert!(f.first.is_none());
    }

    #[test]
    fn a_constant_first_field_is_inline_and_owned_pairs_follow_changes() {
        let mut f = fields(&[("Content-Type", "text/plain")]);
        assert!(!f.spilled(), "no heap block for a constant first field");
        assert!(!f.owned.is_made());
        assert_eq!(f.owned()[0], ("Content-Type".to_owned(), "text/plain".to_owned()));
        assert!(f.owned.is_made());
        f.push("Z".into(), String::from("w").into());
        assert_eq!(f.owned().len(), 2);
        f.remove("content-type");
        assert_eq!(f.iter().collect::<Vec<_>>(), [("Z", "w")]);
    }

    #[test]
    fn run_time_text_with_a_line_break_is_flagged() {
        let mut f = fields(&[("Content-Type", "text/plain")]);
        assert!(!f.may_be_unsafe());
        f.push(String::from("X").into(), String::from("a\r\nb").into());
        assert!(f.may_be_unsafe());
        f.remove("x");
        assert!(!f.may_be_unsafe(), "recomputed when the field goes");
    }
}
