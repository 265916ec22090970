//! Engine tests of what an operator does outside any user's session: setting a user's password.

#[macro_use]
mod support;

use support::*;

#[tokio::test]
async fn setting_a_password_signs_every_session_out_on_every_node() {
    let store = Arc::new(MemoryStore::new());
    let bus = InProcessNotifier::default();
    // The server's node, and the one an admin command runs on.
    let server = node(&store, &bus, limits()).await;
    let admin = node(&store, &bus, limits()).await;
    server
        .register(register("frank", "frank's password", None))
        .await
        .expect("registered");
    let phone = server
        .login("frank", "frank's password", None)
        .await
        .unwrap();
    let laptop = server
        .login("frank", "frank's password", None)
        .await
        .unwrap();
    let phone_id = server.authenticate(&phone.access_token).await.unwrap();
    let mut phone_live = server.connect(phone_id).await.expect("connected");

    assert_err!(
        admin.set_password("frank", "short").await,
        ChatError::Validation(_)
    );
    assert_err!(
        admin.set_password("nobody", "a new password").await,
        ChatError::NotFound
    );
    assert_err!(
        admin
            .set_password("not a username!", "a new password")
            .await,
        ChatError::NotFound
    );
    server
        .authenticate(&laptop.access_token)
        .await
        .expect("refused resets sign nobody out");

    admin
        .set_password("FRANK", "a new password")
        .await
        .expect("set, whatever the username's case");
    let ended = tokio::time::timeout(WAIT, phone_live.next_frame())
        .await
        .expect("the live connection on the other node ends at once");
    assert_eq!(ended.err(), Some(SessionEnd::SignedOut));
    for tokens in [&phone, &laptop] {
        assert_err!(
            server.authenticate(&tokens.access_token).await,
            ChatError::Unauthorized
        );
        assert_err!(
            server.refresh(&tokens.refresh_token).await,
            ChatError::Unauthorized
        );
    }
    assert_err!(
        server.login("frank", "frank's password", None).await,
        ChatError::Unauthorized
    );
    server
        .login("frank", "a new password", None)
        .await
        .expect("the new password signs in");
}
