//! `/v1/auth/*`, `/v1/users/*`: registration, sign-in, tokens and profiles.

use std::net::SocketAddr;

use bytes::BytesMut;
use chat_core::auth::Identity;
use chat_core::engine::{ChangePassword, DeleteAccount, Register, UpdateMe};
use chat_core::{ChatEngine, ChatError};
use serde::Deserialize;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::{
    authenticated, client_addr, json_body, limited_body, no_content, path_id, query, respond,
    with_engine, Body, Query,
};
use crate::State;

/// A sign-in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Login {
    /// A username or an email.
    login: String,
    password: String,
}

/// The OAuth2 password grant's form. Other fields OAuth2 clients send (`grant_type`,
/// `scope`, `client_id`) are ignored; a missing field is `401`, like a wrong password.
#[derive(Deserialize, ToSchema)]
pub(super) struct TokenForm {
    username: Option<String>,
    password: Option<String>,
}

/// A refresh token to trade for a new login.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Refresh {
    refresh_token: String,
}

pub(super) fn routes(state: &State) -> BoxedFilter<(Response,)> {
    let max = state.settings.max_body_bytes;
    let register = warp::path!("v1" / "auth" / "register")
        .and(warp::post())
        .and(with_engine(state))
        .and(json_body::<Register>(max))
        .then(|engine: ChatEngine, input: Body<Register>| async move {
            let result = async { engine.register(input.get()?).await };
            respond(StatusCode::CREATED, result.await)
        });
    let login = warp::path!("v1" / "auth" / "login")
        .and(warp::post())
        .and(with_engine(state))
        .and(client_addr())
        .and(json_body::<Login>(max))
        .then(
            |engine: ChatEngine, client: Option<SocketAddr>, input: Body<Login>| async move {
                let result = async {
                    let input = input.get()?;
                    let client = client.map(|a| a.ip());
                    engine.login(&input.login, &input.password, client).await
                };
                respond(StatusCode::OK, result.await)
            },
        );
    // The OAuth2 password grant form, so OpenAPI tools' "Authorize" buttons can sign in.
    let token =
        warp::path!("v1" / "auth" / "token")
            .and(warp::post())
            .and(with_engine(state))
            .and(client_addr())
            .and(limited_body(max))
            .then(
                |engine: ChatEngine,
                 client: Option<SocketAddr>,
                 body: Result<BytesMut, ChatError>| async move {
                    let result = async {
                        let form: TokenForm =
                            serde_urlencoded::from_bytes(&body?).unwrap_or(TokenForm {
                                username: None,
                                password: None,
                            });
                        let client = client.map(|a| a.ip());
                        match (form.username, form.password) {
                            (Some(user), Some(password)) => {
                                engine.login(&user, &password, client).await
                            }
                            _ => Err(ChatError::Unauthorized),
                        }
                    };
                    respond(StatusCode::OK, result.await)
                },
            );
    let refresh = warp::path!("v1" / "auth" / "refresh")
        .and(warp::post())
        .and(with_engine(state))
        .and(json_body::<Refresh>(max))
        .then(|engine: ChatEngine, input: Body<Refresh>| async move {
            let result = async { engine.refresh(&input.get()?.refresh_token).await };
            respond(StatusCode::OK, result.await)
        });
    let logout = warp::path!("v1" / "auth" / "logout")
        .and(warp::post())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(
            |engine: ChatEngine, who: Identity| async move { no_content(engine.logout(who).await) },
        );
    let password = warp::path!("v1" / "users" / "me" / "password")
        .and(warp::post())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<ChangePassword>(max))
        .then(
            |engine: ChatEngine, who: Identity, input: Body<ChangePassword>| async move {
                let result = async { engine.change_password(who, input.get()?).await };
                no_content(result.await)
            },
        );
    let me = warp::path!("v1" / "users" / "me")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(|engine: ChatEngine, who: Identity| async move {
            respond(StatusCode::OK, engine.me(who.user).await)
        });
    let update_me = warp::path!("v1" / "users" / "me")
        .and(warp::patch())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<UpdateMe>(max))
        .then(
            |engine: ChatEngine, who: Identity, input: Body<UpdateMe>| async move {
                let result = async { engine.update_me(who.user, input.get()?).await };
                respond(StatusCode::OK, result.await)
            },
        );
    let delete_me = warp::path!("v1" / "users" / "me")
        .and(warp::delete())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<DeleteAccount>(max))
        .then(
            |engine: ChatEngine, who: Identity, input: Body<DeleteAccount>| async move {
                let result = async { engine.delete_account(who, input.get()?).await };
                no_content(result.await)
            },
        );
    let search = warp::path!("v1" / "users")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(query())
        .then(|engine: ChatEngine, who: Identity, q: Query| async move {
            let result = async {
                let limit = q.limit()?;
                let text = q.text("q").unwrap_or("");
                engine
                    .search_users(who.user, text, q.text("cursor"), limit)
                    .await
            };
            respond(StatusCode::OK, result.await)
        });
    let user = warp::path!("v1" / "users" / String)
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(|id: String, engine: ChatEngine, who: Identity| async move {
            let result = match path_id(&id) {
                Ok(id) => engine.user(who.user, id).await,
                Err(e) => Err(e),
            };
            respond(StatusCode::OK, result)
        });
    register
        .or(login)
        .unify()
        .or(token)
        .unify()
        .or(refresh)
        .unify()
        .or(logout)
        .unify()
        .or(password)
        .unify()
        .or(me)
        .unify()
        .or(update_me)
        .unify()
        .or(delete_me)
        .unify()
        .or(search)
        .unify()
        .or(user)
        .unify()
        .boxed()
}
