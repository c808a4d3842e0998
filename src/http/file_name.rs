//! The name an uploaded file is saved under: the client's file name made
//! safe to join to a directory (`FormFile::safe_file_name` documents the
//! rules for users).

use std::borrow::Cow;

/// The longest file name `save_to` writes, in bytes: what ext4, XFS, APFS
/// and NTFS (in UTF-16 units) allow.
const MAX_FILE_NAME: usize = 255;

/// An extension longer than this is not kept when a long name is cut.
const MAX_KEPT_EXTENSION: usize = 16;

/// The base name to save a client's `sent` file name under, or why there
/// is none. See `FormFile::safe_file_name` for the rules.
pub(crate) fn sanitize_file_name(sent: &str) -> Result<String, &'static str> {
    if sent.is_empty() {
        return Err("no file name was sent");
    }
    let base = sent.rsplit(['/', '\\', ':']).next().unwrap_or("");
    // Bidirectional overrides make `gpj.exe` display as `exe.jpg`.
    if base
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
    {
        return Err("it holds control characters");
    }
    let name = base
        .trim()
        .trim_start_matches('.')
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_start();
    if name.is_empty() {
        return Err(if base.trim().is_empty() {
            "it ends with a path separator or is blank"
        } else {
            "it is only dots"
        });
    }
    Ok(cut_to_length(name, MAX_FILE_NAME).into_owned())
}

/// `name` cut to at most `max` bytes at a character boundary, keeping an
/// extension of up to [`MAX_KEPT_EXTENSION`] bytes so the file still opens
/// with the right program.
fn cut_to_length(name: &str, max: usize) -> Cow<'_, str> {
    if name.len() <= max {
        return Cow::Borrowed(name);
    }
    let ext = match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= MAX_KEPT_EXTENSION => &name[dot..],
        _ => "",
    };
    let mut end = max - ext.len();
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{ext}", &name[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_names_keep_only_the_base_name() {
        for (sent, safe) in [
            ("photo.jpg", "photo.jpg"),
            ("../../etc/passwd", "passwd"),
            ("/abs/path.txt", "path.txt"),
            (r"C:\x\y.txt", "y.txt"),
            ("C:y.txt", "y.txt"),
            (r"..\..\win.ini", "win.ini"),
            (".htaccess", "htaccess"),
            ("...dots", "dots"),
            ("  spaced name .txt  ", "spaced name .txt"),
            ("trailing. . .", "trailing"),
            ("naïve résumé.pdf", "naïve résumé.pdf"),
        ] {
            assert_eq!(sanitize_file_name(sent).as_deref(), Ok(safe), "{sent:?}");
        }
    }

    #[test]
    fn long_names_are_cut_at_a_char_boundary_keeping_the_extension() {
        let long = format!("{}.tar.gz", "é".repeat(200));
        let cut = sanitize_file_name(&long).unwrap();
        assert!(cut.len() <= 255 && cut.len() >= 253, "{}", cut.len());
        assert!(cut.ends_with("é.gz"), "{cut}");
        let no_ext = "x".repeat(300);
        assert_eq!(sanitize_file_name(&no_ext).unwrap(), "x".repeat(255));
        let long_ext = format!("a.{}", "e".repeat(300));
        assert_eq!(sanitize_file_name(&long_ext).unwrap().len(), 255);
        assert_eq!(cut_to_length("short.txt", 255), "short.txt");
    }
}
