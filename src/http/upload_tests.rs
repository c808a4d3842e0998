//! Tests of `upload.rs`.
use super::*;

fn limits(threshold: usize) -> FormLimits {
    FormLimits {
        memory_threshold: threshold,
        max_file_size: 1 << 20,
        ..FormLimits::default()
    }
}

#[track_caller]
fn file(name: Option<&str>, data: &[u8], threshold: usize) -> FormFile {
    let mut w = FileWriter::new("upload".into(), name.map(str::to_owned), None);
    for piece in data.chunks(3) {
        w.write(piece, &limits(threshold)).unwrap();
    }
    w.finish().unwrap().expect("a file")
}

#[track_caller]
fn bad_name(sent: &str) -> &'static str {
    match file(Some(sent), b"x", 64).save_to(std::env::temp_dir(), false) {
        Err(UploadError::BadFileName { name, reason }) => {
            assert_eq!(name, sent);
            reason
        }
        other => panic!("{sent:?}: {other:?}"),
    }
}

#[test]
fn bad_names_are_refused_with_a_reason() {
    assert_eq!(bad_name("a\0b"), "it holds control characters");
    assert_eq!(bad_name("evil\n.txt"), "it holds control characters");
    assert_eq!(bad_name("esc\u{1b}[31m.txt"), "it holds control characters");
    assert_eq!(bad_name("c1\u{85}.txt"), "it holds control characters");
    assert_eq!(bad_name("invoice\u{202e}fdp.exe"), "it holds control characters");
    assert_eq!(bad_name(".."), "it is only dots");
    assert_eq!(bad_name("."), "it is only dots");
    assert_eq!(bad_name("a/.."), "it is only dots");
    assert_eq!(bad_name("dir/"), "it ends with a path separator or is blank");
    assert_eq!(bad_name("   "), "it ends with a path separator or is blank");
    let err = file(None, b"x", 64).save_to(std::env::temp_dir(), false).unwrap_err();
    assert!(
        matches!(&err, UploadError::BadFileName { name, reason: "no file name was sent" } if name.is_empty()),
        "{err:?}"
    );
    assert_eq!(err.status(), 400);
}

#[test]
fn small_files_stay_in_memory_large_ones_spill() {
    let small = file(Some("s.txt"), b"0123456789", 10);
    assert_eq!((small.path(), small.len()), (None, 10));
    assert!(matches!(small.bytes().unwrap(), Cow::Borrowed(b"0123456789")));
    let big = file(Some("b.txt"), b"0123456789A", 10);
    let path = big.path().expect("spilled").to_owned();
    assert_eq!(fs::read(&path).unwrap(), b"0123456789A");
    assert_eq!(&big.bytes().unwrap()[..], b"0123456789A");
    let mut read = String::new();
    big.reader().unwrap().read_to_string(&mut read).unwrap();
    assert_eq!(read, "0123456789A");
    let clone = big.clone();
    drop(big);
    assert!(path.exists(), "a clone keeps the temporary file");
    drop(clone);
    assert!(!path.exists(), "the last clone removes it");
}

#[test]
fn debug_shows_where_the_bytes_are_not_the_bytes() {
    let small = format!("{:?}", file(Some("a"), b"secret", 64));
    assert!(small.contains("Memory(6 bytes)") && !small.contains("115"), "{small}");
    let big = file(Some("a"), b"secret", 2);
    let path = big.path().unwrap().display().to_string();
    assert!(format!("{big:?}").contains(&path));
}

#[test]
fn the_writer_enforces_max_file_size() {
    let limits = FormLimits {
        max_file_size: 5,
        ..FormLimits::default()
    };
    let mut w = FileWriter::new("f".into(), Some("a".into()), None);
    w.write(b"12345", &limits).unwrap();
    let err = w.write(b"6", &limits).unwrap_err();
    assert!(
        matches!(&err, FormError::FileTooLarge { name, limit: 5 } if name == "f"),
        "{err:?}"
    );
}

#[test]
fn an_unused_file_input_is_no_file() {
    let w = FileWriter::new("f".into(), None, None);
    assert!(w.finish().unwrap().is_none());
    let empty_named = FileWriter::new("f".into(), Some("empty.txt".into()), None);
    assert_eq!(empty_named.finish().unwrap().expect("a file").len(), 0);
}

#[test]
fn save_to_never_overwrites_unless_asked() {
    for threshold in [64, 4] {
        let dir = tempfile::tempdir().unwrap();
        let first = file(Some("../../same.txt"), b"first", threshold);
        let path = first.save_to(dir.path(), false).unwrap();
        assert_eq!(path, dir.path().join("same.txt"));
        assert_eq!(fs::read(&path).unwrap(), b"first");

        let second = file(Some("same.txt"), b"second", threshold);
        let err = second.save_to(dir.path(), false).unwrap_err();
        assert!(matches!(&err, UploadError::Exists(p) if *p == path), "{err:?}");
        assert_eq!(err.status(), 409);
        assert_eq!(fs::read(&path).unwrap(), b"first", "untouched");

        assert_eq!(second.save_to(dir.path(), true).unwrap(), path);
        assert_eq!(fs::read(&path).unwrap(), b"second", "replaced");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["same.txt"], "no staging file left behind");
    }
}

#[test]
fn a_spilled_file_is_linked_and_outlives_the_form() {
    let dir = tempfile::tempdir().unwrap();
    let limits = FormLimits {
        memory_threshold: 2,
        temp_dir: Some(dir.path().to_owned()),
        ..FormLimits::default()
    };
    let mut w = FileWriter::new("f".into(), Some("kept.bin".into()), None);
    w.write(b"spilled bytes", &limits).unwrap();
    let f = w.finish().unwrap().unwrap();
    let temp = f.path().unwrap().to_owned();
    let saved = f.save_to(dir.path(), false).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let (a, b) = (fs::metadata(&temp).unwrap(), fs::metadata(&saved).unwrap());
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "one inode, linked");
    }
    drop(f);
    assert!(!temp.exists());
    assert_eq!(fs::read(&saved).unwrap(), b"spilled bytes");
}

#[test]
fn saving_into_a_missing_directory_is_io() {
    let dir = tempfile::tempdir().unwrap();
    let err = file(Some("a.txt"), b"x", 64)
        .save_to(dir.path().join("missing"), false)
        .unwrap_err();
    assert!(matches!(err, UploadError::Io(_)), "{err:?}");
    assert_eq!(HttpResponse::from(err).status(), 500);
}

#[test]
fn exists_response_does_not_reveal_the_directory() {
    let resp = HttpResponse::from(UploadError::Exists("/srv/secret/uploads/a.txt".into()));
    assert_eq!((resp.status(), resp.body()), (409, &b"\"a.txt\" exists already"[..]));
}
