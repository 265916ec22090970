//! Uploaded files: their metadata, their sanitised names, and the types the server accepts,
//! decided from the bytes.

use serde::Serialize;
use time::OffsetDateTime;

use super::ids::{UploadId, UserId};

/// A file's name as kept and shown: the last path component of what the client sent, without
/// control characters, at most [`FileName::MAX_BYTES`] bytes; `file` when nothing is left. It
/// is metadata only: blobs are stored under keys the engine generates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FileName(String);

impl FileName {
    /// The longest name kept, in bytes of UTF-8.
    pub const MAX_BYTES: usize = 255;

    /// Cleans a client-supplied name; never fails.
    pub fn sanitize(raw: &str) -> FileName {
        let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
        let mut name = String::new();
        for c in last.chars().filter(|c| !c.is_control()) {
            if name.len() + c.len_utf8() > Self::MAX_BYTES {
                break;
            }
            name.push(c);
        }
        // Leading dots and blanks together: ". .." must not survive as "..".
        let name = name
            .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
            .trim_end();
        if name.is_empty() {
            FileName("file".into())
        } else {
            FileName(name.to_owned())
        }
    }

    /// Rebuilds a name the store kept (already clean).
    pub fn from_stored(name: String) -> FileName {
        FileName(name)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A type of file the server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileType {
    /// The MIME type files of this type are stored and served with.
    pub content_type: &'static str,
    /// The usual file name extensions.
    pub extensions: &'static [&'static str],
    /// Whether browsers may show it inline (images that cannot carry scripts).
    #[serde(skip)]
    pub inline: bool,
}

const fn file_type(
    content_type: &'static str,
    extensions: &'static [&'static str],
    inline: bool,
) -> FileType {
    FileType {
        content_type,
        extensions,
        inline,
    }
}

/// Plain text: what is left when no magic number matches but the bytes are UTF-8 without NUL.
/// It is served as text, as an attachment. HTML, XML (SVG) and scripts have magic numbers of
/// their own and are refused.
pub const TEXT: FileType = file_type(
    "text/plain; charset=utf-8",
    &["txt", "csv", "md", "log"],
    false,
);

/// Every type the server accepts: documents, images, audio, video and archives, recognised by
/// their magic numbers, and plain text.
pub const ALLOWED_TYPES: &[FileType] = &[
    file_type("application/pdf", &["pdf"], false),
    file_type("application/msword", &["doc"], false),
    file_type("application/vnd.ms-excel", &["xls"], false),
    file_type("application/vnd.ms-powerpoint", &["ppt"], false),
    file_type(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        &["docx"],
        false,
    ),
    file_type(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &["xlsx"],
        false,
    ),
    file_type(
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        &["pptx"],
        false,
    ),
    file_type("application/vnd.oasis.opendocument.text", &["odt"], false),
    file_type(
        "application/vnd.oasis.opendocument.spreadsheet",
        &["ods"],
        false,
    ),
    file_type("application/rtf", &["rtf"], false),
    file_type("image/png", &["png"], true),
    file_type("image/jpeg", &["jpg", "jpeg"], true),
    file_type("image/gif", &["gif"], true),
    file_type("image/webp", &["webp"], true),
    file_type("image/bmp", &["bmp"], false),
    file_type("image/heif", &["heif", "heic"], false),
    file_type("image/tiff", &["tif", "tiff"], false),
    file_type("image/avif", &["avif"], false),
    file_type("audio/mpeg", &["mp3"], false),
    file_type("audio/ogg", &["ogg", "oga"], false),
    file_type("audio/x-wav", &["wav"], false),
    file_type("audio/x-flac", &["flac"], false),
    file_type("audio/m4a", &["m4a"], false),
    file_type("audio/aac", &["aac"], false),
    file_type("audio/opus", &["opus"], false),
    file_type("video/mp4", &["mp4"], false),
    file_type("video/webm", &["webm"], false),
    file_type("video/quicktime", &["mov"], false),
    file_type("video/x-matroska", &["mkv"], false),
    file_type("video/x-msvideo", &["avi"], false),
    file_type("application/zip", &["zip"], false),
    file_type("application/gzip", &["gz", "tgz"], false),
    file_type("application/x-7z-compressed", &["7z"], false),
    file_type("application/x-tar", &["tar"], false),
    file_type("application/x-bzip2", &["bz2"], false),
    file_type("application/x-xz", &["xz"], false),
    file_type("application/vnd.rar", &["rar"], false),
    TEXT,
];

/// How many leading bytes decide a file's type.
pub const SNIFF_BYTES: usize = 8192;

/// The accepted type of a file whose first bytes are `head` (at most [`SNIFF_BYTES`];
/// `complete` when they are the whole file), or `None` when the bytes are not of an accepted
/// type. Names and declared types play no part.
pub fn sniff(head: &[u8], complete: bool) -> Option<FileType> {
    if let Some(found) = infer::get(head) {
        return ALLOWED_TYPES
            .iter()
            .find(|t| t.content_type == found.mime_type())
            .copied();
    }
    looks_like_text(head, complete).then_some(TEXT)
}

/// UTF-8 without NUL; a head cut inside a character is still text.
fn looks_like_text(head: &[u8], complete: bool) -> bool {
    if head.is_empty() || head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => !complete && e.error_len().is_none(),
    }
}

/// `Content-Disposition` (RFC 6266): `inline` only for safe images. The name goes as UTF-8 in
/// `filename*` (percent-encoded, so no byte of it can break the header) and, for old clients,
/// as an ASCII `filename` with everything else replaced.
pub fn content_disposition(inline: bool, name: &FileName) -> String {
    let name = name.as_str();
    let kind = if inline { "inline" } else { "attachment" };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Whether files of this type may be shown inline (safe images only).
pub fn is_inline(content_type: &str) -> bool {
    ALLOWED_TYPES
        .iter()
        .any(|t| t.inline && t.content_type == content_type)
}

/// An uploaded file as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// Its id, which is also its blob's key.
    pub id: UploadId,
    /// Who uploaded it.
    pub uploader: UserId,
    /// The sanitised original name.
    pub name: FileName,
    /// The type decided from the bytes.
    pub content_type: String,
    /// The size in bytes.
    pub size: i64,
    /// The SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    /// When it was uploaded.
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_controls_and_excess() {
        assert_eq!(FileName::sanitize("../../etc/passwd").as_str(), "passwd");
        assert_eq!(
            FileName::sanitize("C:\\Users\\me\\cv.pdf").as_str(),
            "cv.pdf"
        );
        assert_eq!(FileName::sanitize("a\u{0}b\r\nc.txt").as_str(), "abc.txt");
        assert_eq!(FileName::sanitize("..").as_str(), "file");
        assert_eq!(FileName::sanitize("").as_str(), "file");
        assert_eq!(FileName::sanitize(".hidden").as_str(), "hidden");
        let long = FileName::sanitize(&"é".repeat(10_000));
        assert!(long.as_str().len() <= FileName::MAX_BYTES);
        assert!(long.as_str().chars().all(|c| c == 'é'));
    }

    #[test]
    fn the_bytes_decide_the_type() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(sniff(png, true).map(|t| t.content_type), Some("image/png"));
        assert_eq!(
            sniff(b"%PDF-1.7\n", true).map(|t| t.content_type),
            Some("application/pdf")
        );
        let html = b"<!DOCTYPE html><script>alert(1)</script>";
        assert_eq!(sniff(html, true), None, "HTML is refused");
        assert_eq!(sniff(b"<?xml version=\"1.0\"?><svg/>", true), None);
        assert_eq!(sniff(b"hello, world\n", true), Some(TEXT));
        assert_eq!(
            sniff(b"\x7fELF\x02\x01\x01\0", true),
            None,
            "executables are refused"
        );
        assert_eq!(sniff(b"MZ\x90\0\x03\0", true), None);
        assert_eq!(sniff(b"bin\0ary", true), None);
        assert_eq!(sniff(b"", true), None);
        assert_eq!(
            sniff("caf\u{e9}".as_bytes()[..4].as_ref(), false),
            Some(TEXT)
        );
        assert_eq!(sniff("caf\u{e9}".as_bytes()[..4].as_ref(), true), None);
    }

    #[test]
    fn dispositions_cannot_be_broken_by_names() {
        assert_eq!(
            content_disposition(true, &FileName::sanitize("cat.png")),
            "inline; filename=\"cat.png\"; filename*=UTF-8''cat%2Epng"
        );
        let evil = content_disposition(
            false,
            &FileName::from_stored("a\"; filename=evil.html\r\nX: y é.txt".into()),
        );
        assert!(evil.starts_with("attachment; filename=\"a_; filename=evil.html__X: y _.txt\""));
        assert!(
            evil.bytes().all(|b| b == b'\t' || (32..127).contains(&b)),
            "a valid header value"
        );
    }

    #[test]
    fn every_allowed_type_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        assert!(ALLOWED_TYPES.iter().all(|t| seen.insert(t.content_type)));
        let inline: Vec<_> = ALLOWED_TYPES.iter().filter(|t| t.inline).collect();
        assert!(inline.iter().all(|t| t.content_type.starts_with("image/")));
    }
}
