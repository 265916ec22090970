//! `/v1/uploads/*`: uploading files (multipart, streamed), their metadata, their content with
//! `Range` support and safe headers, signed links, and deletion.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use chat_core::auth::Identity;
use chat_core::domain::upload::content_disposition;
use chat_core::domain::{FileType, UploadId};
use chat_core::engine::{ByteRange, Download};
use chat_core::ports::ByteStream;
use chat_core::{ChatEngine, ChatError};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::http::{header, HeaderValue, StatusCode};
use warp::multipart::FormData;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{authenticated, bearer, no_content, path_id, query, respond, with_engine, Query};
use crate::error::{error_response, reject};
use crate::State;

/// Room for the multipart framing around the file (boundaries, part headers, a long file
/// name) when a declared `Content-Length` is checked against the cap before reading.
const FRAMING_BYTES: u64 = 64 * 1024;

/// The types of file the server accepts.
#[derive(Serialize, ToSchema)]
pub(super) struct AllowedTypes {
    types: &'static [FileType],
}

pub(super) fn routes(state: &State) -> BoxedFilter<(Response,)> {
    let max = state.settings.upload_max_bytes;
    let create = warp::path!("v1" / "uploads")
        .and(warp::post())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(warp::header::optional::<u64>("content-length"))
        .and(multipart_only())
        // The cap is the engine's, counted while streaming: warp's own limit would demand a
        // Content-Length and refuse chunked uploads.
        .and(warp::multipart::form().max_length(None))
        .then(
            move |engine: ChatEngine, who: Identity, length: Option<u64>, form: FormData| async move {
                let result = async {
                    if length.is_some_and(|l| l > max.saturating_add(FRAMING_BYTES)) {
                        return Err(ChatError::PayloadTooLarge);
                    }
                    let (name, body, after) = file_part(form).await?;
                    let uploaded = engine.upload(who.user, &name, body).await;
                    // A part after the file cut its stream off, so nothing was kept.
                    let after = after.lock().unwrap_or_else(|e| e.into_inner()).take();
                    match after {
                        Some(part) => Err(ChatError::field(part, "unknown field")),
                        None => uploaded,
                    }
                };
                respond(StatusCode::CREATED, result.await)
            },
        );
    let types = warp::path!("v1" / "uploads" / "types" / "allowed")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .map(|engine: ChatEngine, _: Identity| {
            respond(
                StatusCode::OK,
                Ok(AllowedTypes {
                    types: engine.allowed_upload_types(),
                }),
            )
        });
    let info = warp::path!("v1" / "uploads" / String)
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(|id: String, engine: ChatEngine, who: Identity| async move {
            let result = async { engine.upload_info(who.user, path_id(&id)?).await };
            respond(StatusCode::OK, result.await)
        });
    let link = warp::path!("v1" / "uploads" / String / "link")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(|id: String, engine: ChatEngine, who: Identity| async move {
            let result = async { engine.upload_link(who.user, path_id(&id)?).await };
            respond(StatusCode::OK, result.await)
        });
    let delete = warp::path!("v1" / "uploads" / String)
        .and(warp::delete())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(|id: String, engine: ChatEngine, who: Identity| async move {
            let result = async { engine.delete_upload(who.user, path_id(&id)?).await };
            no_content(result.await)
        });
    // The content route authenticates itself: a signed link stands in for the header.
    let content = warp::path!("v1" / "uploads" / String / "content")
        .and(warp::get())
        .and(with_engine(state))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("range"))
        .and(query())
        .then(
            |id: String,
             engine: ChatEngine,
             auth: Option<String>,
             range: Option<String>,
             q: Query| async move {
                let result = async {
                    // A Range this server does not serve is ignored, as RFC 9110 allows.
                    let range = range.as_deref().and_then(parse_range);
                    let link = match (q.text("sig"), q.int("expires")?) {
                        (Some(sig), Some(expires)) => Some((sig, expires)),
                        (None, None) => None,
                        _ => {
                            return Err(ChatError::BadRequest(
                                "a signed link needs both sig and expires".into(),
                            ))
                        }
                    };
                    let (id, token) = (path_id::<UploadId>(&id), bearer(auth.as_deref()));
                    match (link, token) {
                        (Some((sig, expires)), _) => {
                            engine.download_by_link(id?, expires, sig, range).await
                        }
                        (None, Some(token)) => {
                            let who = engine.authenticate(token).await?;
                            engine.download(who.user, id?, range).await
                        }
                        (None, None) => Err(ChatError::Unauthorized),
                    }
                };
                match result.await {
                    Ok(download) => content_response(download),
                    Err(e) => content_error(&e),
                }
            },
        );
    create
        .or(types)
        .unify()
        .or(link)
        .unify()
        .or(content)
        .unify()
        .or(info)
        .unify()
        .or(delete)
        .unify()
        .boxed()
}

/// Refuses a body that is not `multipart/form-data` with `415`, before warp's form filter
/// would call it malformed.
fn multipart_only() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and_then(|kind: Option<String>| async move {
            let multipart = kind.is_some_and(|k| {
                k.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            });
            if multipart {
                Ok(())
            } else {
                Err(reject(ChatError::UnsupportedMediaType))
            }
        })
        .untuple_one()
}

/// The `file` part of an upload form, as its name and a stream of its bytes. Any other part is
/// refused, as unknown JSON fields are, without reading it.
async fn file_part(mut form: FormData) -> Result<(String, ByteStream, PartAfter), ChatError> {
    let part = match form.next().await {
        Some(Ok(part)) => part,
        Some(Err(_)) => return Err(ChatError::BadRequest("malformed multipart body".into())),
        None => return Err(ChatError::field("file", "is required")),
    };
    if part.name() != "file" {
        return Err(ChatError::field(part.name().to_owned(), "unknown field"));
    }
    let name = part.filename().unwrap_or_default().to_owned();
    let bytes = part.stream().map(|chunk| match chunk {
        Ok(mut buf) => Ok(buf.copy_to_bytes(buf.remaining())),
        Err(e) => Err(std::io::Error::other(e)),
    });
    let after = PartAfter::default();
    let noticed = after.clone();
    // The form must live as long as its part's stream is read. When the file's bytes end, the
    // form must end too: another part cuts the stream off with an error, and is noted.
    let body =
        futures_util::stream::unfold((Some(Box::pin(bytes)), Some(form)), move |(bytes, form)| {
            let noticed = noticed.clone();
            async move {
                if let Some(mut bytes) = bytes {
                    if let Some(item) = bytes.next().await {
                        return Some((item, (Some(bytes), form)));
                    }
                }
                // The file's part is dropped: the form reads on only after it.
                let next = form?.next().await?;
                if let Ok(part) = next {
                    *noticed.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(part.name().to_owned());
                }
                let cut = std::io::Error::other("the form holds more than the file");
                Some((Err(cut), (None, None)))
            }
        });
    Ok((name, Box::pin(body), after))
}

/// The name of a part that followed the file in an upload's form (which must hold that one
/// part), once the file's bytes are read.
type PartAfter = Arc<Mutex<Option<String>>>;

/// `bytes=N-M`, `bytes=N-` or `bytes=-N`; anything else (several ranges, other units) is
/// served whole.
fn parse_range(header: &str) -> Option<ByteRange> {
    let spec = header.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    match (first.is_empty(), last.is_empty()) {
        (true, false) => last.parse().ok().map(ByteRange::Last),
        (false, true) => first.parse().ok().map(ByteRange::From),
        (false, false) => Some(ByteRange::FromTo(first.parse().ok()?, last.parse().ok()?)),
        (true, true) => None,
    }
}

fn content_response(download: Download) -> Response {
    let upload = &download.upload;
    let size = u64::try_from(upload.size).unwrap_or(0);
    let mut response = warp::reply::stream(SyncStream(Mutex::new(download.body))).into_response();
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set(header::CONTENT_TYPE, upload.content_type.clone());
    set(
        header::CONTENT_DISPOSITION,
        content_disposition(download.inline, &upload.name),
    );
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff".into());
    set(header::ACCEPT_RANGES, "bytes".into());
    set(header::CACHE_CONTROL, "private, no-cache".into());
    set(header::ETAG, format!("\"{}\"", upload.sha256));
    match download.range {
        Some((first, last)) => {
            set(header::CONTENT_LENGTH, (last - first + 1).to_string());
            set(
                header::CONTENT_RANGE,
                format!("bytes {first}-{last}/{size}"),
            );
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
        None => set(header::CONTENT_LENGTH, size.to_string()),
    }
    response
}

/// An error of the content route; an unsatisfiable range says the size, as RFC 9110 asks.
fn content_error(e: &ChatError) -> Response {
    let mut response = error_response(e);
    if let ChatError::RangeNotSatisfiable { size } = e {
        if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    response
}

/// A stream that is `Sync` because only `poll_next`, which has it exclusively, touches it:
/// `warp::reply::stream` asks for `Sync`, which streams of file reads are not.
struct SyncStream(Mutex<ByteStream>);

impl Stream for SyncStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let inner = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(|e| e.into_inner());
        inner.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_in_the_three_forms() {
        assert_eq!(parse_range("bytes=0-99"), Some(ByteRange::FromTo(0, 99)));
        assert_eq!(parse_range("bytes=100-"), Some(ByteRange::From(100)));
        assert_eq!(parse_range("bytes=-5"), Some(ByteRange::Last(5)));
        assert_eq!(parse_range("bytes=0-1,5-6"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(parse_range("bytes=a-b"), None);
        assert_eq!(parse_range("bytes=-"), None);
    }
}
