//! The route templates of the API, for labelling request metrics and log lines: a request is
//! counted under the template its path matches (`/v1/rooms/{id}`), never under its raw path, so
//! ids and made-up paths cannot multiply the series.

/// Every route's path, with a literal before a parameter that would also match it
/// (`/v1/rooms/public` before `/v1/rooms/{id}`): the first match wins.
const TEMPLATES: &[&str] = &[
    "/",
    "/web/{asset}",
    "/health",
    "/ready",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/v1/auth/login",
    "/v1/auth/logout",
    "/v1/auth/refresh",
    "/v1/auth/register",
    "/v1/auth/token",
    "/v1/dms",
    "/v1/presence",
    "/v1/rooms",
    "/v1/rooms/public",
    "/v1/rooms/{id}",
    "/v1/rooms/{id}/bans",
    "/v1/rooms/{id}/bans/{user_id}",
    "/v1/rooms/{id}/delivered",
    "/v1/rooms/{id}/join",
    "/v1/rooms/{id}/leave",
    "/v1/rooms/{id}/members",
    "/v1/rooms/{id}/members/{user_id}",
    "/v1/rooms/{id}/messages",
    "/v1/rooms/{id}/messages/{message_id}",
    "/v1/rooms/{id}/messages/{message_id}/reactions/{emoji}",
    "/v1/rooms/{id}/messages/{message_id}/thread",
    "/v1/rooms/{id}/read",
    "/v1/rooms/{id}/receipts",
    "/v1/rooms/{id}/settings",
    "/v1/rooms/{id}/stats",
    "/v1/rooms/{id}/typing",
    "/v1/search",
    "/v1/unread",
    "/v1/uploads",
    "/v1/uploads/types/allowed",
    "/v1/uploads/{id}",
    "/v1/uploads/{id}/content",
    "/v1/uploads/{id}/link",
    "/v1/users",
    "/v1/users/me",
    "/v1/users/me/blocks",
    "/v1/users/me/blocks/{user_id}",
    "/v1/users/me/password",
    "/v1/users/me/presence",
    "/v1/users/{id}",
    "/v1/ws",
    "/v1/ws/ticket",
];

/// The label of paths that match no route.
pub(crate) const UNMATCHED: &str = "unmatched";

/// The template `path` matches, or [`UNMATCHED`].
pub(crate) fn template_of(path: &str) -> &'static str {
    TEMPLATES
        .iter()
        .find(|template| matches(template, path))
        .copied()
        .unwrap_or(UNMATCHED)
}

fn matches(template: &str, path: &str) -> bool {
    let mut wanted = template.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') => {
                if g.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(g)) => {
                if w != g {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_their_parameter_and_literals_win() {
        let id = "0b6f2a3e-5c1d-4f7e-9a8b-1c2d3e4f5a6b";
        for (path, template) in [
            ("/v1/rooms", "/v1/rooms"),
            ("/v1/rooms/public", "/v1/rooms/public"),
            (&format!("/v1/rooms/{id}"), "/v1/rooms/{id}"),
            (
                &format!("/v1/rooms/{id}/messages/{id}/reactions/%F0%9F%91%8D"),
                "/v1/rooms/{id}/messages/{message_id}/reactions/{emoji}",
            ),
            ("/v1/users/me", "/v1/users/me"),
            ("/v1/users/anything", "/v1/users/{id}"),
            ("/v1/uploads/types/allowed", "/v1/uploads/types/allowed"),
            (
                &format!("/v1/uploads/{id}/content"),
                "/v1/uploads/{id}/content",
            ),
            ("/metrics", "/metrics"),
            ("/", "/"),
            ("/web/app.js", "/web/{asset}"),
        ] {
            assert_eq!(template_of(path), template, "{path}");
        }
    }

    #[test]
    fn paths_of_no_route_share_one_label() {
        for path in [
            "/v1",
            "/web",
            "/v1/rooms/",
            "/v1//messages",
            "/v1/rooms/x/unknown",
            "/wp-admin/setup.php",
            "/v1/users/me/blocks/a/b",
        ] {
            assert_eq!(template_of(path), UNMATCHED, "{path}");
        }
    }
}
