//! Document contents in R2 under `accounts/{account_id}/documents/{id}`: the key is built from
//! the authenticated tenant, never from input, so another tenant's object cannot be named
//! (`domain::content::blob_key`).

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse, Body};
use crate::api::{etag, new_event, publish, ApiConfig, Platform, Tenant};
use crate::domain::clock::rfc3339;
use crate::domain::content::{blob_key, ALLOWED_CONTENT_TYPES};
use crate::domain::entity::DOCUMENTS;
use crate::domain::event::{Action, Change};
use crate::ports::*;
use crate::services::changes::{commit, version_of, Edit, Expect, Write};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

async fn load_document(t: &Tenant<impl Database>, id: Uuid) -> Result<Value, ApiError> {
    let rows =
        t.db.query(crate::api::get_stmt(&DOCUMENTS, t.account_id(), id))
            .await?;
    rows.first()
        .and_then(|r| col_json(r, "body"))
        .ok_or_else(|| ApiError::NotFound(format!("no document with id {id}")))
}

pub async fn put<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    id: Uuid,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    crate::api::require_write(t, &crate::domain::entity::DOCUMENTS)?;
    let content_type = req
        .header("content-type")
        .and_then(content_type)
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!(
                "Content-Type must be one of {} (parameters such as charset are kept)",
                ALLOWED_CONTENT_TYPES.join(", ")
            ))
        })?;
    if req.body.len() > cfg.max_content_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "document contents are limited to {} bytes",
            cfg.max_content_bytes
        )));
    }
    if req.body.is_empty() {
        return Err(ApiError::bad_request("the content is empty"));
    }
    let current = load_document(t, id).await?;
    let version = version_of(&current);
    crate::api::render::refuse_if_restricted(&DOCUMENTS, &id.to_string(), &current, t.now)?;
    if let Some(h) = crate::api::preconditions::if_match(req) {
        if !crate::api::preconditions::matches_etag(h, version) {
            return Err(ApiError::PreconditionFailed(h.into()));
        }
    }
    let sha = hex::encode(Sha256::digest(&req.body));
    let now = p.now();
    // Content first, under its own key: if the metadata write fails or loses a race, the object is
    // an unreferenced orphan; the metadata only ever names an object that exists.
    let key = blob_key(t.account_id(), id, &sha);
    p.blobs()
        .put(
            &key,
            Blob {
                bytes: req.body.clone(),
                content_type: content_type.clone(),
            },
        )
        .await?;
    let content = json!({
        "content_type": content_type,
        "size": req.body.len(),
        "sha256": sha,
        "uploaded_at": rfc3339(now),
    });
    let ev = new_event(
        p,
        cfg,
        t,
        req,
        Change {
            entity_type: "documents",
            entity_singular: "document",
            entity_id: id,
            action: Action::Updated,
            entity_version: version + 1,
            changed_fields: vec!["content".into()],
        },
    );
    let write = Write {
        table: "documents",
        id,
        edit: Edit::SetUnrestricted(vec![("content", content.clone())]),
        expect: Expect::Version(version),
        live_only: true,
        event: ev,
        with: vec![],
    };
    let Some(landed) = commit(&t.db, &write).await? else {
        // Lost the race (the document changed, was deleted or erased meanwhile): the object
        // just stored is named by no row, and an erasure may have listed the prefix already,
        // so it goes now, unless the row as it is now names it (the same bytes, uploaded by
        // the winner).
        let now =
            t.db.query(crate::store::entities::get_any_stmt(
                &DOCUMENTS,
                t.account_id(),
                id,
            ))
            .await;
        let row = now
            .ok()
            .and_then(|r| r.first().and_then(|r| col_json(r, "body")));
        let named = row
            .as_ref()
            .is_some_and(|b| b["content"]["sha256"].as_str() == Some(sha.as_str()));
        if !named {
            if let Err(e) = p.blobs().delete(&key).await {
                tracing::warn!(error = %e, "deleting the content of a lost upload failed");
            }
        }
        // A restriction (the document's or its client's) that landed meanwhile refused it.
        if let Some(b) = &row {
            crate::api::render::refuse_if_restricted(&DOCUMENTS, &id.to_string(), b, t.now)?;
        }
        return Err(ApiError::Conflict(
            "the document changed during the upload; retry".into(),
        ));
    };
    publish(p, cfg, t, vec![landed.event]).await;
    // The superseded object is no longer referenced (best effort; an orphan is harmless).
    if let Some(old) = current["content"]["sha256"].as_str().filter(|o| *o != sha) {
        if let Err(e) = p.blobs().delete(&blob_key(t.account_id(), id, old)).await {
            tracing::warn!(error = %e, "deleting the superseded content failed");
        }
    }
    Ok(ApiResponse::json(200, content).with_header("etag", etag(landed.version)))
}

/// `GET` (and `HEAD`) of a document's content. HEAD answers from the document row alone
/// (type, size and digest are in its `content` metadata): the R2 object is never read.
pub async fn get<P: Platform>(
    p: &P,
    t: &Tenant<P::Db>,
    id: Uuid,
    head: bool,
) -> Result<ApiResponse, ApiError> {
    let doc = load_document(t, id).await?;
    // A restricted document's content (or a restricted client's) is personal data: admins only.
    if t.claims.role != crate::domain::auth::Role::Admin {
        crate::api::render::refuse_if_restricted(&DOCUMENTS, &id.to_string(), &doc, t.now)?;
    }
    let meta = doc
        .get("content")
        .filter(|c| c.is_object())
        .ok_or_else(|| ApiError::NotFound(format!("document {id} has no content yet")))?;
    let sha = meta
        .get("sha256")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let stored_type = meta.get("content_type").and_then(Value::as_str);
    let (content_type, body, length) = if head {
        let size = meta.get("size").and_then(Value::as_u64);
        (
            stored_type
                .unwrap_or("application/octet-stream")
                .to_string(),
            Body::Empty,
            size,
        )
    } else {
        let blob = p
            .blobs()
            .get(&blob_key(t.account_id(), id, sha))
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("the content of document {id} is gone")))?;
        let ct = stored_type.map_or(blob.content_type, str::to_string);
        (ct, Body::Bytes(blob.bytes), None)
    };
    let mut headers = vec![
        ("content-type".into(), content_type),
        ("etag".into(), format!("\"sha256-{sha}\"")),
        ("x-content-sha256".into(), sha.into()),
        (
            "content-disposition".into(),
            format!("attachment; filename=\"{id}\""),
        ),
        ("x-content-type-options".into(), "nosniff".into()),
    ];
    if let Some(n) = length {
        headers.push(("content-length".into(), n.to_string()));
    }
    Ok(ApiResponse {
        status: 200,
        headers,
        body,
    })
}

/// Longest `Content-Type` kept with a document.
pub const MAX_CONTENT_TYPE: usize = 200;

/// A document's `Content-Type` as it is kept and served back: the media type (one of
/// [`ALLOWED_CONTENT_TYPES`], lower-cased) with its parameters (`charset=utf-8`; names
/// lower-cased, values as sent, quoted strings kept), `; `-separated. None when the media
/// type is not allowed or a parameter is not `token=token|quoted-string` (RFC 9110 §8.3.1).
pub fn content_type(header: &str) -> Option<String> {
    if header.len() > MAX_CONTENT_TYPE {
        return None;
    }
    let mut parts = header.split(';');
    let mime = parts.next()?.trim().to_ascii_lowercase();
    if !ALLOWED_CONTENT_TYPES.contains(&mime.as_str()) {
        return None;
    }
    let mut out = mime;
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let (name, value) = p.split_once('=')?;
        let (name, value) = (name.trim(), value.trim());
        let quoted = value.len() >= 2
            && value.starts_with('"')
            && value.ends_with('"')
            && value[1..value.len() - 1]
                .chars()
                .all(|c| c == '\t' || (' '..='~').contains(&c));
        if !is_token(name) || !(is_token(value) || quoted) {
            return None;
        }
        out.push_str("; ");
        out.push_str(&name.to_ascii_lowercase());
        out.push('=');
        out.push_str(value);
    }
    Some(out)
}

/// An RFC 9110 token (`tchar`s).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}
