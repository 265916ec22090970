//! `GET /openapi.json`: the OpenAPI document of every HTTP route, and `GET /docs`: a page that
//! renders it without any network (no CDN, nothing fetched but the document itself).
//!
//! warp routes are closures, so the paths are not derived from handler functions: they come from
//! one table ([`table`]) of method, path, tag, parameters and statuses, while every request and
//! response schema is derived (`utoipa::ToSchema`) from the types the handlers use.

mod operation;
mod table;

use std::collections::HashMap;
use std::sync::OnceLock;

use utoipa::openapi::path::{HttpMethod, PathItem, PathsBuilder};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, RefOr};
use utoipa::{PartialSchema, ToSchema};
use warp::filters::BoxedFilter;
use warp::http::header::CONTENT_TYPE;
use warp::reply::Response;
use warp::{Filter, Reply};

use chat_core::domain::MessageBody;
use chat_core::engine::{CreateRoom, Limits};

use crate::error::ErrorBody;
use operation::{BEARER, OAUTH2};

/// The docs page: plain HTML and script that fetch `/openapi.json` from the same server.
const DOCS_PAGE: &str = include_str!("openapi/docs.html");

/// `GET /openapi.json` and `GET /docs`.
pub(super) fn routes(limits: &Limits) -> BoxedFilter<(Response,)> {
    // Built once: the document depends on nothing but the code and the engine's limits.
    let json = serde_json::to_string(&document(limits)).expect("the OpenAPI document serializes");
    let spec = warp::path!("openapi.json").and(warp::get()).map(move || {
        warp::reply::with_header(json.clone(), CONTENT_TYPE, "application/json").into_response()
    });
    let docs = warp::path!("docs").and(warp::get()).map(|| {
        // The page runs only its own inline script and may fetch only from this server.
        let page = warp::reply::with_header(
            warp::reply::html(DOCS_PAGE),
            "content-security-policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'",
        );
        page.into_response()
    });
    spec.or(docs).unify().boxed()
}

/// The methods a route template answers, for the `Allow` header of a `405` (RFC 9110 requires
/// it); `None` for a path of no route. Read from the same table as the document.
pub(crate) fn allowed_methods(template: &str) -> Option<&'static str> {
    static ALLOWED: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    let allowed = ALLOWED.get_or_init(|| {
        let mut methods: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
        for op in table::operations() {
            methods
                .entry(op.path)
                .or_default()
                .push(method_name(&op.method));
        }
        methods
            .into_iter()
            .map(|(path, names)| (path, names.join(", ")))
            .collect()
    });
    allowed.get(template).map(String::as_str)
}

/// `schema` (the component `name`) with the bounds of `limits`: the longest message body, and
/// the most members a new room may name.
fn with_limits(name: &str, schema: &mut RefOr<Schema>, limits: &Limits) {
    if name == MessageBody::name() {
        *schema = MessageBody::schema_with_max(limits.max_message_chars);
    } else if name == CreateRoom::name() {
        let RefOr::T(Schema::Object(room)) = schema else {
            return;
        };
        // `members` is a list of ids, or null.
        if let Some(RefOr::T(Schema::OneOf(members))) = room.properties.get_mut("members") {
            for option in &mut members.items {
                if let RefOr::T(Schema::Array(ids)) = option {
                    ids.max_items = Some(limits.max_initial_members);
                }
            }
        }
    }
}

fn method_name(method: &HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "GET",
        HttpMethod::Post => "POST",
        HttpMethod::Put => "PUT",
        HttpMethod::Delete => "DELETE",
        HttpMethod::Options => "OPTIONS",
        HttpMethod::Head => "HEAD",
        HttpMethod::Patch => "PATCH",
        HttpMethod::Trace => "TRACE",
    }
}

/// The document, with the bounds of `limits` where the types state the default ones.
fn document(limits: &Limits) -> OpenApi {
    let mut paths = PathsBuilder::new();
    let mut schemas = vec![(ErrorBody::name().into_owned(), ErrorBody::schema())];
    ErrorBody::schemas(&mut schemas);
    for mut op in table::operations() {
        schemas.append(&mut op.schemas);
        let (method, path) = (op.method.clone(), op.path);
        // Operations of one path merge into its item.
        paths = paths.path(path, PathItem::new(method, op.build()));
    }
    for (name, schema) in &mut schemas {
        with_limits(name, schema, limits);
    }
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("`Authorization: Bearer <access_token>` from a login."))
                    .build(),
            ),
        )
        .security_scheme(
            OAUTH2,
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::Password(Password::new(
                    "/v1/auth/token",
                    Scopes::new(),
                ))],
                "The password grant at `/v1/auth/token`, for `Authorize` buttons.",
            )),
        )
        .build();
    let tags = table::TAGS.iter().map(|(name, description)| {
        TagBuilder::new()
            .name(*name)
            .description(Some(*description))
            .build()
    });
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("chat-server")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The HTTP API of chat-server. Errors always have the body `Error`; \
                     lists take `limit` and `cursor` and answer `next_cursor`.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .tags(Some(tags))
        .build()
}
