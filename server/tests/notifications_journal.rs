//! Notifications are remembered by group commit: many arriving at once, some twice, are
//! each stored exactly once and each caller returns only once its row is stored.

mod common;

use boxoffice::core::model::PaymentProvider;
use boxoffice::store::Store;
use chrono::Utc;
use common::TestApp;

#[tokio::test]
async fn concurrent_notifications_are_each_remembered_once() {
    let app = TestApp::start().await;
    let store = Store::open(&app.database_url)
        .await
        .expect("the app's database");
    let now = Utc::now();
    let ids: Vec<String> = (0..40)
        .map(|index| format!("evt_journal_{index}"))
        .collect();
    let mut calls = tokio::task::JoinSet::new();
    for id in ids.iter().chain(ids.iter().take(10)) {
        let (store, id) = (store.clone(), id.clone());
        calls.spawn(async move {
            store
                .remember_event(
                    PaymentProvider::Stripe,
                    &id,
                    "payment_intent.succeeded",
                    now,
                )
                .await?;
            // Returning means stored: the caller may acknowledge the notification now.
            store.event_seen(PaymentProvider::Stripe, &id).await
        });
    }
    let mut acknowledged = 0;
    while let Some(result) = calls.join_next().await {
        assert!(
            result.expect("no panic").expect("stored"),
            "seen once remembered"
        );
        acknowledged += 1;
    }
    assert_eq!(acknowledged, 50);
    for id in &ids {
        assert!(store.event_seen(PaymentProvider::Stripe, id).await.unwrap());
    }
    assert!(
        !store
            .event_seen(PaymentProvider::Stripe, "evt_never_sent")
            .await
            .unwrap()
    );
    app.stop().await;
}
