//! Incremental UTF-8 validation, so a text message fails the moment an
//! invalid byte arrives rather than when its last fragment does (Autobahn 6.4.x).

/// Validates UTF-8 fed in arbitrary pieces.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: u8,
}

/// The number of bytes a character starting with `b` occupies (2..=4 for a
/// valid multi-byte lead byte).
fn char_width(b: u8) -> usize {
    match b {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

impl Utf8Validator {
    /// Feeds the next piece. `Err(())` as soon as the bytes so far cannot be
    /// the start of valid UTF-8.
    #[allow(clippy::result_unit_err)]
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), ()> {
        if self.pending_len > 0 {
            let have = usize::from(self.pending_len);
            let need = char_width(self.pending[0]) - have;
            let take = need.min(data.len());
            let mut tmp = self.pending;
            tmp[have..have + take].copy_from_slice(&data[..take]);
            let tmp = &tmp[..have + take];
            match std::str::from_utf8(tmp) {
                Ok(_) => {}
                Err(e) if e.error_len().is_none() => {
                    self.pending[..tmp.len()].copy_from_slice(tmp);
                    self.pending_len = tmp.len() as u8;
                    return Ok(());
                }
                Err(_) => return Err(()),
            }
            self.pending_len = 0;
            data = &data[take..];
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(()),
        }
    }

    /// Whether the input so far ends on a character boundary.
    pub fn is_complete(&self) -> bool {
        self.pending_len == 0
    }

    /// Forgets everything fed so far.
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(bytes: &[u8], at: &[usize]) -> Result<bool, ()> {
        let mut v = Utf8Validator::default();
        let mut prev = 0;
        for &i in at.iter().chain(std::iter::once(&bytes.len())) {
            v.feed(&bytes[prev..i])?;
            prev = i;
        }
        Ok(v.is_complete())
    }

    #[test]
    fn every_split_of_valid_text_is_accepted() {
        let s = "κόσμε a€𝄞 ok".as_bytes();
        for i in 0..=s.len() {
            for j in i..=s.len() {
                assert_eq!(feed_split(s, &[i, j]), Ok(true), "split {i} {j}");
            }
        }
    }

    #[test]
    fn fails_on_the_first_bad_byte_even_mid_character() {
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(&[0xCE, 0xBA, 0xE1]), Ok(()));
        assert!(!v.is_complete());
        // 0xE1 must be followed by a continuation byte.
        assert_eq!(v.feed(&[0x41]), Err(()));
        // Code points above U+10FFFF fail at their second byte.
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(&[0xF4]), Ok(()));
        assert_eq!(v.feed(&[0x90]), Err(()));
        // Surrogates are not UTF-8.
        assert_eq!(feed_split(&[0xED, 0xA0, 0x80], &[1]), Err(()));
    }

    #[test]
    fn truncated_input_is_not_complete() {
        assert_eq!(feed_split(&[0x61, 0xF0, 0x9D], &[1]), Ok(false));
    }

    #[test]
    fn agrees_with_std_on_random_bytes() {
        let mut seed = 0x2545F4914F6CDD1Du64;
        for _ in 0..2000 {
            let mut buf = Vec::new();
            for _ in 0..(seed % 12) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let b = seed as u8;
                buf.push(if b & 1 == 0 {
                    b & 0x7F
                } else {
                    0x80 | (b >> 2) | (b & 0x40) << 1
                });
            }
            let split = (seed as usize >> 8) % (buf.len() + 1);
            let expect = std::str::from_utf8(&buf).is_ok();
            assert_eq!(feed_split(&buf, &[split]) == Ok(true), expect, "{buf:x?} at {split}");
        }
    }
}
