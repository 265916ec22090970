//! The HTTP server under the API's warp filter: the same accept loop as `warp::serve`, with one
//! difference. warp keeps each request's connection upgrade to itself and builds every
//! WebSocket with tungstenite's default 128 KiB read buffer, which is zero-filled at the first
//! read: about 128 KiB of resident memory per idle socket. Here the upgrade is put where the
//! WebSocket route can take it, so it sizes the buffer itself (`ws.rs`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::UPGRADE;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use warp::{Filter, Rejection, Reply};

/// The connection upgrade of one WebSocket request, for the WebSocket route to take: warp's
/// filters hand out only request extensions that can be cloned, and hyper's is not.
#[derive(Clone)]
pub(crate) struct Upgrade(Arc<Mutex<Option<OnUpgrade>>>);

impl Upgrade {
    pub(crate) fn take(&self) -> Option<OnUpgrade> {
        self.0.lock().ok()?.take()
    }
}

/// The peer address of the connection a request came on (warp's own is set only by its
/// server).
#[derive(Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) SocketAddr);

/// Serves `filter` (the API's, or a host application's with the API's mounted in it) on
/// `listener` until `shutdown` resolves, then lets in-flight requests finish.
///
/// Use it in place of `warp::serve` for small WebSockets: each socket of the API then holds a
/// 2 KiB read buffer (grown for larger frames) instead of tungstenite's 128 KiB. Every
/// `Upgrade: websocket` request is handed to the API's WebSocket route, so a host application
/// with WebSocket routes of its own should keep `warp::serve`, under which the API's sockets
/// work the same with warp's buffers.
pub async fn serve<F, R>(listener: TcpListener, filter: F, shutdown: impl Future<Output = ()>)
where
    F: Filter<Extract = (R,), Error = Rejection> + Clone + Send + Sync + 'static,
    R: Reply,
{
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let warp_service = TowerToHyperService::new(warp::service(filter.clone()));
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let websocket = request
                .headers()
                .get(UPGRADE)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
            if websocket {
                let upgrade = hyper::upgrade::on(&mut request);
                request
                    .extensions_mut()
                    .insert(Upgrade(Arc::new(Mutex::new(Some(upgrade)))));
            }
            request.extensions_mut().insert(ClientAddr(peer));
            hyper::service::Service::call(&warp_service, request)
        });
        let connection = auto::Builder::new(TokioExecutor::new())
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors of one connection (reset before it was accepted) are skipped; others, such as running
/// out of file descriptors, are logged and the loop pauses instead of spinning on them.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
