//! Document contents, the pure part: which content types a document may have, and the R2 key of
//! an object (built from the authenticated tenant and the document, never from input).

use uuid::Uuid;

/// Content types a document may have. Anything a browser would render actively (HTML, SVG,
/// scripts) is refused, and downloads are attachments with `nosniff`.
pub const ALLOWED_CONTENT_TYPES: &[&str] = &[
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/tiff",
    "image/heic",
    "text/plain",
    "text/csv",
    "message/rfc822",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/octet-stream",
];

/// Objects are named by their content: concurrent uploads never overwrite each other, and the
/// metadata row names exactly the object it describes.
pub fn blob_key(account_id: Uuid, document_id: Uuid, sha256: &str) -> String {
    format!("{}{sha256}", blob_prefix(account_id, document_id))
}

/// Every content object of a document is under this prefix (ends with `/`), whichever upload
/// put it: the one its row names, superseded ones, one whose upload lost a race.
pub fn blob_prefix(account_id: Uuid, document_id: Uuid) -> String {
    format!("accounts/{account_id}/documents/{document_id}/")
}
