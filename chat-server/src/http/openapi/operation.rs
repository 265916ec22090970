//! One operation of the document, described in a line of the table: its method, path, tag,
//! parameters, body and responses. The schemas of its bodies are taken from the Rust types
//! the handler reads and writes, never written by hand.

use chat_core::domain::{Cursor, Emoji, NameCursor};
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterIn, ParameterStyle,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, Header, Ref, RefOr, Required};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ErrorBody;

/// Named schemas an operation refers to, for the document's components.
pub(super) type Schemas = Vec<(String, RefOr<Schema>)>;

/// What a list's `cursor` parameter is.
const CURSOR: &str = "The previous page's `next_cursor` (opaque).";

/// The security scheme names of the document.
pub(super) const BEARER: &str = "bearer";
pub(super) const OAUTH2: &str = "oauth2";

/// Who may call an operation.
#[derive(Clone, Copy, Debug)]
enum Access {
    /// Anyone.
    Public,
    /// A bearer token (`401` without one).
    Bearer,
    /// A bearer token, or another credential the operation describes (a signed link, the
    /// metrics token): no token at all is allowed by the scheme, and the route decides.
    BearerOptional,
}

/// An operation under construction (utoipa's types implement `Debug` only with its `debug`
/// feature, so this does not either).
pub(super) struct Op {
    pub(super) method: HttpMethod,
    pub(super) path: &'static str,
    access: Access,
    builder: OperationBuilder,
    /// Status -> response, in the order given.
    responses: Vec<(String, Response)>,
    pub(super) schemas: Schemas,
}

impl Op {
    fn new(method: HttpMethod, path: &'static str, id: &str, tag: &str, summary: &str) -> Op {
        let mut builder = OperationBuilder::new()
            .operation_id(Some(id))
            .tag(tag)
            .summary(Some(summary));
        for name in path_parameters(path) {
            builder = builder.parameter(path_parameter(name));
        }
        Op {
            method,
            path,
            access: Access::Bearer,
            builder,
            responses: Vec::new(),
            schemas: Vec::new(),
        }
    }

    pub(super) fn get(path: &'static str, id: &str, tag: &str, summary: &str) -> Op {
        Op::new(HttpMethod::Get, path, id, tag, summary)
    }

    pub(super) fn post(path: &'static str, id: &str, tag: &str, summary: &str) -> Op {
        Op::new(HttpMethod::Post, path, id, tag, summary)
    }

    pub(super) fn put(path: &'static str, id: &str, tag: &str, summary: &str) -> Op {
        Op::new(HttpMethod::Put, path, id, tag, summary)
    }

    pub(super) fn patch(path: &'static str, id: &str, tag: &str, summary: &str) -> Op {
        Op::new(HttpMethod::Patch, path, id, tag, summary)
    }

    pub(super) fn delete(path: &'static str, id: &str, tag: &str, summary: &str) -> Op {
        Op::new(HttpMethod::Delete, path, id, tag, summary)
    }

    /// Needs no token.
    pub(super) fn public(mut self) -> Op {
        self.access = Access::Public;
        self
    }

    /// Takes a token, or another credential the route describes.
    pub(super) fn token_optional(mut self) -> Op {
        self.access = Access::BearerOptional;
        self
    }

    /// A longer description.
    pub(super) fn describe(mut self, text: &str) -> Op {
        self.builder = self.builder.description(Some(text));
        self
    }

    /// An optional query parameter of type `kind`.
    pub(super) fn query(self, name: &str, kind: Type, description: &str) -> Op {
        self.query_with(name, ObjectBuilder::new().schema_type(kind), description)
    }

    /// An optional query parameter described by `schema`.
    pub(super) fn query_with(
        self,
        name: &str,
        schema: impl Into<RefOr<Schema>>,
        description: &str,
    ) -> Op {
        self.query_styled(name, schema, None, description)
    }

    /// Optional query parameters that go together, described as one object whose properties
    /// are the parameters (`?a=1&b=2`: the OpenAPI form style, exploded), so that `schema` can
    /// say which of them need which: OpenAPI has no other way to tie parameters together. Other
    /// properties are other query parameters, which every route ignores.
    pub(super) fn query_group(self, name: &str, schema: ObjectBuilder, description: &str) -> Op {
        self.query_styled(
            name,
            schema.schema_type(Type::Object),
            Some(true),
            description,
        )
    }

    /// An optional list in one query parameter, comma-separated (`?ids=a,b`: the OpenAPI form
    /// style, not exploded), of 1 to `max` items described by `items` (an empty one would be
    /// `?ids=`, which reads as one empty item).
    pub(super) fn query_list(
        self,
        name: &str,
        items: impl Into<RefOr<Schema>>,
        max: usize,
        description: &str,
    ) -> Op {
        let schema = ArrayBuilder::new()
            .items(items.into())
            .min_items(Some(1))
            .max_items(Some(max));
        self.query_styled(name, schema, Some(false), description)
    }

    fn query_styled(
        mut self,
        name: &str,
        schema: impl Into<RefOr<Schema>>,
        explode: Option<bool>,
        description: &str,
    ) -> Op {
        let style = explode.map(|_| ParameterStyle::Form);
        self.builder = self.builder.parameter(
            Parameter::builder()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema))
                .style(style)
                .explode(explode),
        );
        self
    }

    /// An optional request header.
    pub(super) fn header(mut self, name: &str, description: &str) -> Op {
        self.builder = self.builder.parameter(
            Parameter::builder()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
        self
    }

    /// `limit` and `cursor`, the pagination of lists.
    pub(super) fn paged(self) -> Op {
        self.limit().query_with("cursor", Cursor::schema(), CURSOR)
    }

    /// `limit` and `cursor`, the pagination of a list ordered by name.
    pub(super) fn paged_by_name(self) -> Op {
        self.limit()
            .query_with("cursor", NameCursor::schema(), CURSOR)
    }

    /// `limit`: default 50, above 100 clamped to 100, below 1 or not a number `400`.
    pub(super) fn limit(mut self) -> Op {
        let schema = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .default(Some(50.into()));
        self.builder = self.builder.parameter(
            Parameter::builder()
                .name("limit")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(
                    "Page size: default 50; above 100 it is clamped to 100; below 1 is `400`.",
                ))
                .schema(Some(schema)),
        );
        self
    }

    /// A JSON request body of type `T`.
    pub(super) fn json<T: ToSchema>(mut self) -> Op {
        let schema = self.collect::<T>();
        self.body("application/json", schema)
    }

    /// A request body of another media type, described by `schema`.
    pub(super) fn body(mut self, media_type: &str, schema: RefOr<Schema>) -> Op {
        let body = RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content(media_type, Content::new(Some(schema)))
            .build();
        self.builder = self.builder.request_body(Some(body));
        self
    }

    /// A form body (`application/x-www-form-urlencoded`) of type `T`.
    pub(super) fn form<T: ToSchema>(mut self) -> Op {
        let schema = self.collect::<T>();
        self.body("application/x-www-form-urlencoded", schema)
    }

    /// A JSON response of type `T` with `status`.
    pub(super) fn reply<T: ToSchema>(mut self, status: u16, description: &str) -> Op {
        let schema = self.collect::<T>();
        let response = ResponseBuilder::new()
            .description(description)
            .content("application/json", Content::new(Some(schema)))
            .build();
        self.respond(status, response)
    }

    /// `204 No Content`: no body.
    pub(super) fn no_content(self, description: &str) -> Op {
        self.respond(204, Response::new(description))
    }

    /// Any other response.
    pub(super) fn respond(mut self, status: u16, response: Response) -> Op {
        self.responses.push((status.to_string(), response));
        self
    }

    /// Error responses with these statuses, each with the error body; `401` is added to every
    /// operation that takes a token.
    pub(super) fn errors(mut self, statuses: &[u16]) -> Op {
        for &status in statuses {
            self = self.respond(status, error_response(status));
        }
        self
    }

    /// `T`'s schema as a reference, with every schema it needs kept for the components.
    fn collect<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let name = T::name().into_owned();
        self.schemas.push((name.clone(), T::schema()));
        T::schemas(&mut self.schemas);
        Ref::from_schema_name(name).into()
    }

    /// The finished operation.
    pub(super) fn build(mut self) -> Operation {
        let needs_token = matches!(self.access, Access::Bearer);
        if needs_token && !self.responses.iter().any(|(s, _)| s == "401") {
            self = self.respond(401, error_response(401));
        }
        let mut responses = std::mem::take(&mut self.responses);
        responses.sort_by(|a, b| a.0.cmp(&b.0));
        let mut builder = self.builder;
        for (status, response) in responses {
            builder = builder.response(status, response);
        }
        let token = || {
            [
                SecurityRequirement::new(BEARER, Vec::<String>::new()),
                SecurityRequirement::new(OAUTH2, Vec::<String>::new()),
            ]
        };
        let security: Vec<SecurityRequirement> = match self.access {
            Access::Public => Vec::new(),
            Access::Bearer => token().into(),
            // `{}` says the operation may also be called without any of the schemes.
            Access::BearerOptional => {
                let mut either = token().to_vec();
                either.push(SecurityRequirement::default());
                either
            }
        };
        builder.securities(Some(security)).build()
    }
}

/// An error response with `status`: the error body, and what the status means in this API.
fn error_response(status: u16) -> Response {
    let meaning = match status {
        400 => "`bad_request`: malformed JSON, or a query parameter that does not parse.",
        401 => "`unauthorized`: missing, invalid, expired or revoked token; wrong credentials.",
        403 => "`forbidden`: the resource is visible, the action not allowed for this user.",
        404 => "`not_found`: no such resource, or one the caller may not see.",
        409 => "`conflict`: it exists already, or conflicts with the current state.",
        413 => "`payload_too_large`: the body is over the limit.",
        415 => "`unsupported_media_type`: a type of body or file the server does not accept.",
        416 => "`range_not_satisfiable`: the range covers none of the file.",
        422 => "`validation_failed`: `details.fields` names each invalid field and why.",
        429 => "`rate_limited`: retry after `Retry-After` seconds.",
        503 => "`unavailable`: storage is down; retry.",
        _ => "An error.",
    };
    let mut response = ResponseBuilder::new().description(meaning).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name(ErrorBody::name()))),
    );
    if status == 429 {
        response = response.header(
            "Retry-After",
            Header::builder()
                .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                .description(Some("Seconds to wait."))
                .build(),
        );
    }
    response.build()
}

/// The `{name}`s of a path template.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

/// A path parameter: a UUID, except the emoji of a reaction. An id that does not parse names
/// nothing, so it is `404`, not `400`.
fn path_parameter(name: &str) -> Parameter {
    let (schema, description) = match name {
        "emoji" => (
            Emoji::schema(),
            "An emoji or a `:shortcode:`, percent-encoded; 1-32 bytes of UTF-8.",
        ),
        "asset" => (
            ObjectBuilder::new().schema_type(Type::String).into(),
            "A file of the web client: `app.js`, `style.css`, ...",
        ),
        "message_id" => (uuid().into(), "The message's id."),
        "user_id" => (uuid().into(), "The user's id."),
        _ => (uuid().into(), "The id of the resource the path names."),
    };
    Parameter::builder()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

pub(super) fn uuid() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
}
