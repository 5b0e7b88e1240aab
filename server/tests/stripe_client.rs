//! The Stripe client as a real Stripe sees it: never more requests in flight than
//! `max_concurrent_requests`, however many callers there are; over a Unix socket when
//! given one.

use std::sync::Arc;

use boxoffice::providers::stripe::{StripeClient, StripeSettings};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json};
use poem::{EndpointExt, Route, Server, handler, post};
use serde_json::{Value, json};
use tokio::sync::watch;

fn settings(
    api_base: String,
    max_concurrent_requests: usize,
    unix_socket: Option<std::path::PathBuf>,
) -> StripeSettings {
    StripeSettings {
        api_base,
        secret_key: "sk_test_client".into(),
        publishable_key: "pk_test_client".into(),
        webhook_secret: "whsec_client".into(),
        webhook_tolerance_seconds: 300,
        hosted_form_url: None,
        max_concurrent_requests,
        unix_socket,
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    in_flight: usize,
    most_in_flight: usize,
    answered: usize,
}

/// A Stripe that holds every request until the test lets them through.
struct HoldingStripe {
    seen: watch::Sender<Seen>,
    let_through: watch::Receiver<bool>,
}

#[handler]
async fn create_customer(stripe: Data<&Arc<HoldingStripe>>) -> Json<Value> {
    stripe.seen.send_modify(|seen| {
        seen.in_flight += 1;
        seen.most_in_flight = seen.most_in_flight.max(seen.in_flight);
    });
    let mut let_through = stripe.let_through.clone();
    let _ = let_through.wait_for(|through| *through).await;
    stripe.seen.send_modify(|seen| {
        seen.in_flight -= 1;
        seen.answered += 1;
    });
    Json(json!({ "id": "cus_held", "object": "customer" }))
}

#[tokio::test]
async fn requests_beyond_the_limit_wait_for_a_turn() {
    const LIMIT: usize = 2;
    const CALLERS: usize = 6;
    let (seen, mut watching) = watch::channel(Seen::default());
    let (release, let_through) = watch::channel(false);
    let stripe = Arc::new(HoldingStripe { seen, let_through });
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("a port");
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("an address");
    let routes = Route::new()
        .at("/v1/customers", post(create_customer))
        .data(stripe);
    let server = tokio::spawn(Server::new_with_acceptor(acceptor).run(routes));

    let client = StripeClient::new(settings(format!("http://{addr}"), LIMIT, None));
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..CALLERS {
        let client = client.clone();
        callers.spawn(async move {
            client
                .create_customer(&format!("customer-{caller}"), "held@example.com", "Held")
                .await
        });
    }
    // The limit's worth arrive and are held; the others wait for a permit, not Stripe.
    watching
        .wait_for(|seen| seen.in_flight >= LIMIT)
        .await
        .expect("the Stripe is up");
    release.send_replace(true);
    while let Some(created) = callers.join_next().await {
        assert_eq!(created.expect("joined").expect("created"), "cus_held");
    }
    let seen = *watching.borrow();
    assert_eq!(seen.answered, CALLERS);
    assert_eq!(seen.most_in_flight, LIMIT, "{seen:?}");
    server.abort();
}

#[handler]
async fn create_plain_customer() -> Json<Value> {
    Json(json!({ "id": "cus_local", "object": "customer" }))
}

/// Simulator mode points the client at its own Stripe simulator's Unix socket: every
/// request goes there, whatever host `api_base` names (here one that never resolves).
#[cfg(unix)]
#[tokio::test]
async fn a_client_given_a_unix_socket_sends_every_request_over_it() {
    let socket = std::env::temp_dir().join(format!(
        "boxoffice-test-{}.sock",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    let acceptor = poem::listener::UnixListener::bind(socket.clone())
        .into_acceptor()
        .await
        .expect("a socket");
    let routes = Route::new().at("/v1/customers", post(create_plain_customer));
    let server = tokio::spawn(Server::new_with_acceptor(acceptor).run(routes));
    let unresolvable = || "http://stripe.invalid".to_owned();

    let customer = StripeClient::new(settings(unresolvable(), 1, Some(socket.clone())))
        .create_customer("customer-local", "local@example.com", "Local")
        .await
        .expect("the customer, over the socket");
    assert_eq!(customer, "cus_local");
    StripeClient::new(settings(unresolvable(), 1, None))
        .create_customer("customer-local", "local@example.com", "Local")
        .await
        .expect_err("no such host over TCP");

    server.abort();
    let _ = std::fs::remove_file(&socket);
}
