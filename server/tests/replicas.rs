//! Exactly one successful charge per subscription period, whatever happens: two server
//! replicas settling the billing clock at once on one database, replayed webhooks, and a
//! replica that crashed after Stripe charged but before it recorded the charge.

mod common;

use std::sync::Arc;
use std::time::Duration;

use boxoffice::clock::Clock;
use boxoffice::core::identity::{ClaimsMap, SigningKeys};
use boxoffice::core::{
    Core, IdentitySettings, IdentityVerifier, PaymentSettings, PlaybackSettings, SessionSettings,
    default_renewal_retries,
};
use boxoffice::providers::sso::SsoClient;
use boxoffice::providers::stripe::{StripeClient, StripeSettings};
use boxoffice::store::Store;
use common::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

const SUBSCRIPTIONS: usize = 12;

/// A second `boxoffice` process's core on the same database, clock and Stripe account.
async fn second_replica(app: &TestApp) -> Arc<Core> {
    let config = &app.server.config;
    Arc::new(Core::new(
        Store::open(&app.database_url)
            .await
            .expect("the same database"),
        app.server.clock.clone(),
        IdentityVerifier::new(
            IdentitySettings {
                issuer: config.sso.issuer.clone(),
                audiences: vec![config.sso.app_client_id.clone()],
                keys: SigningKeys::Jwks {
                    url: config.sso.jwks_url.clone(),
                },
                claims: ClaimsMap::default(),
                leeway_seconds: 0,
                password_login: None,
            },
            SsoClient::new(),
        ),
        SessionSettings::default(),
        PlaybackSettings {
            ksession_secret: "replica".into(),
            ksession_ttl: Duration::from_secs(60),
        },
        PaymentSettings {
            stripe: Some(StripeClient::new(StripeSettings {
                api_base: config.urls.sim_stripe.clone(),
                secret_key: config.stripe.secret_key.clone(),
                publishable_key: config.stripe.publishable_key.clone(),
                webhook_secret: config.stripe.webhook_secret.clone(),
                webhook_tolerance_seconds: 300,
                hosted_form_url: None,
                max_concurrent_requests: usize::MAX,
                unix_socket: None,
            })),
            renewal_retries: default_renewal_retries(),
            discounts: Vec::new(),
            discount_sync_api_key: None,
        },
    ))
}

async fn buy_monthly_passes(app: &TestApp, count: usize) -> String {
    let token = app.alice_token().await;
    assert_eq!(app.start_session(&token).await.0, 200);
    for _ in 0..count {
        let (status, basket) = app
            .post_json(
                &format!("/cloudpay/payment/stripe/checkout?apijwttoken={token}"),
                &json!({ "packageId": app.server.config.fixtures.monthly_package_id }),
            )
            .await;
        assert_eq!(status, 201, "{basket}");
        let intent = basket["basketId"].as_str().unwrap();
        let (status, paid) = app
            .post_json(
                &format!("/sim/control/stripe/intents/{intent}/confirm"),
                &json!({ "payment_method": "pm_card_visa" }),
            )
            .await;
        assert_eq!(status, 200, "{paid}");
    }
    let list = app
        .stripe(
            Method::GET,
            "customers",
            &[("email", app.server.config.test_users[0].email.as_str())],
        )
        .await;
    list["data"][0]["id"].as_str().unwrap().to_owned()
}

/// Charges that succeeded at Stripe for the customer.
async fn charges_at_stripe(app: &TestApp, customer: &str) -> usize {
    let list: Value = app
        .stripe(
            Method::GET,
            "charges",
            &[("customer", customer), ("limit", "100")],
        )
        .await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|charge| charge["status"] == "succeeded")
        .count()
}

/// Successful payments recorded per (subscription, period).
async fn recorded_payments(app: &TestApp) -> Vec<(String, i64, i64)> {
    let mut connection = app.database().await;
    sqlx::query_as(
        "SELECT subscription_id, period, COUNT(*) FROM transactions \
         WHERE kind = 'payment' AND succeeded = 1 GROUP BY subscription_id, period \
         ORDER BY subscription_id, period",
    )
    .fetch_all(&mut connection)
    .await
    .expect("payments")
}

#[tokio::test]
async fn two_replicas_a_replayed_webhook_and_a_crash_charge_each_period_once() {
    let app = TestApp::start().await;
    let customer = buy_monthly_passes(&app, SUBSCRIPTIONS).await;
    assert_eq!(charges_at_stripe(&app, &customer).await, SUBSCRIPTIONS);
    let replica = second_replica(&app).await;

    // A month on, both replicas (and the first one's own background loop) settle at once.
    let first_period_end = app.server.clock.now() + chrono::Duration::days(31);
    app.server.clock.set(first_period_end).unwrap();
    let (a, b, c) = tokio::join!(
        app.server.core.run_due_billing(),
        replica.run_due_billing(),
        replica.run_due_billing(),
    );
    let renewed = a.unwrap().renewed + b.unwrap().renewed + c.unwrap().renewed;
    assert!(
        renewed <= SUBSCRIPTIONS as u64,
        "{renewed} renewals settled"
    );
    // Whatever the replicas left to the background loop, settle it now.
    app.server.core.run_due_billing().await.unwrap();
    assert_eq!(charges_at_stripe(&app, &customer).await, 2 * SUBSCRIPTIONS);

    // Stripe redelivers every renewal's payment_intent.succeeded.
    let events = app
        .stripe(
            Method::GET,
            "events",
            &[("type", "payment_intent.succeeded"), ("limit", "100")],
        )
        .await;
    for event in events["data"].as_array().unwrap() {
        let id = event["id"].as_str().unwrap();
        let (status, _) = app
            .post_json(
                &format!("/sim/control/stripe/events/{id}/resend"),
                &json!({}),
            )
            .await;
        assert_eq!(status, 200);
    }
    app.post_json("/sim/control/stripe/webhooks/deliver", &json!({}))
        .await;

    // A replica crashed after Stripe charged one subscription's renewal but before its
    // transaction committed: the database still shows the period unpaid and its job due.
    let payments = recorded_payments(&app).await;
    let (crashed, _, _) = payments
        .iter()
        .find(|(_, period, _)| *period == 1)
        .unwrap()
        .clone();
    let mut connection = app.database().await;
    for statement in [
        "DELETE FROM transactions WHERE subscription_id = $1 AND period = 1",
        "DELETE FROM billing_jobs WHERE subscription_id = $1 AND period = 2",
        "UPDATE billing_jobs SET status = 'pending', claimed_by = NULL, claimed_until = NULL \
         WHERE subscription_id = $1 AND period = 1",
        "UPDATE subscriptions SET current_period = 0, current_period_end = current_period_start, \
         current_period_start = created_at WHERE id = $1",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(&crashed)
            .execute(&mut connection)
            .await
            .unwrap();
    }
    // The next worker repeats the charge with the same idempotency key: Stripe answers with
    // the charge it already made.
    let report = replica.run_due_billing().await.unwrap();
    assert_eq!(report.renewed, 1, "{report:?}");
    assert_eq!(charges_at_stripe(&app, &customer).await, 2 * SUBSCRIPTIONS);

    let payments = recorded_payments(&app).await;
    assert_eq!(payments.len(), 2 * SUBSCRIPTIONS, "{payments:?}");
    assert!(
        payments.iter().all(|(_, _, count)| *count == 1),
        "{payments:?}"
    );
    replica.close().await;
    app.stop().await;
}
