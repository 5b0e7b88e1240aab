//! What players ask: a playback session (ksession), a DRM licence check, where the customer
//! left off.

use serde_json::Value;

use crate::checks::{self, KSESSION_KEYS, SessionExpectation};
use crate::context::{Context, Customer, Session};
use crate::scenario::Scenario;
use crate::step::Step;
use crate::{ensure_eq, scenario};

/// A media entry id in the player's format.
const ENTRY_ID: &str = "0_conformance";
const RESUME_KEYS: [&str; 4] = ["page", "size", "order", "entries"];

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(
            "playback.ksession_without_subscription",
            "ksession for a customer with a session but no subscription is Status 1 \
             \"Customer has no subscriptions\" with KSession null, beside the live SessionModel",
            ksession_without_subscription
        ),
        scenario!(
            "playback.ksession_without_session",
            "ksession without a credential, or with an ended session, is Status 0 with \
             KSession null and no session; without entryid it is 400",
            ksession_without_session
        ),
        scenario!(
            "playback.validatedrm_denies",
            "validatedrm for an unknown customer, and for a customer without a subscription, \
             is 200 {Granted:false, Reason}",
            validatedrm_denies
        ),
        scenario!(
            "playback.resume_starts_empty",
            "resume for a new customer is an empty page {page:1, size:20, order:\"desc\", \
             entries:[]}, echoes page, size and order, and refuses page 0 and size 0 or 101",
            resume_starts_empty
        ),
    ]
}

/// The KSessionModel members, checked; returns the body.
async fn ksession(
    ctx: &Context,
    credential: Option<&crate::cloudpay::Credential>,
    customer: Option<&Customer>,
) -> Step<(crate::http::Exchange, Value)> {
    let exchange = ctx
        .cloudpay
        .get("/api/v1/session/ksession")
        .query("entryid", ENTRY_ID)
        .maybe_credential(credential)
        .send()
        .await?;
    let body = exchange.expect_json(200)?;
    let expectation = match customer {
        Some(customer) => SessionExpectation::live(customer),
        None => SessionExpectation::none(),
    }
    .with_extra_keys(&KSESSION_KEYS);
    checks::session_model(&exchange, &body, &expectation)?;
    checks::member(&exchange, &body, "/KSession", &Value::Null)?;
    Ok((exchange, body))
}

async fn with_fresh_session<'a, F, Fut>(ctx: &'a Context, checks: F) -> Step
where
    F: FnOnce(&'a Context, Customer, Session) -> Fut,
    Fut: std::future::Future<Output = Step>,
{
    // A customer who has bought nothing, which only a fresh one is known to be.
    let customer = ctx.fresh_customer().await?;
    let session = ctx.start_session(&customer).await?;
    let ended = session.clone();
    let outcome = checks(ctx, customer, session).await;
    ctx.end_quietly(&ended).await;
    outcome
}

async fn ksession_without_subscription(ctx: &Context) -> Step {
    with_fresh_session(ctx, |ctx, customer, session| async move {
        for credential in [session.by_query(), session.by_cookie()] {
            let (exchange, body) = ksession(ctx, Some(&credential), Some(&customer)).await?;
            checks::member(&exchange, &body, "/Status", &Value::from(1))?;
            checks::member(
                &exchange,
                &body,
                "/ErrorMessage",
                &Value::from("Customer has no subscriptions"),
            )?;
        }
        Ok(())
    })
    .await
}

async fn ksession_without_session(ctx: &Context) -> Step {
    let (exchange, body) = ksession(ctx, None, None).await?;
    checks::member(&exchange, &body, "/Status", &Value::from(0))?;
    checks::text(&exchange, &body, "/ErrorMessage")?;

    let customer = ctx.customer().await?;
    let session = ctx.start_session(&customer).await?;
    ctx.end_session(&session.by_query()).await?;
    let (exchange, body) = ksession(ctx, Some(&session.by_query()), None).await?;
    checks::member(&exchange, &body, "/Status", &Value::from(0))?;

    let exchange = ctx.cloudpay.get("/api/v1/session/ksession").send().await?;
    checks::error_response(&exchange, 400)?;
    Ok(())
}

async fn validatedrm(ctx: &Context, customer_id: &str) -> Step<(crate::http::Exchange, Value)> {
    let exchange = ctx
        .cloudpay
        .get(&format!("/api/v1/validatedrm/{ENTRY_ID}/{customer_id}"))
        .send()
        .await?;
    let body = exchange.expect_json(200)?;
    checks::exact_keys(
        &exchange,
        &body,
        &["Granted", "Reason"],
        "the DRM validation",
    )?;
    checks::member(&exchange, &body, "/Granted", &Value::Bool(false))?;
    checks::text(&exchange, &body, "/Reason")?;
    Ok((exchange, body))
}

async fn validatedrm_denies(ctx: &Context) -> Step {
    validatedrm(ctx, &uuid::Uuid::new_v4().to_string()).await?;
    with_fresh_session(ctx, |ctx, _customer, session| async move {
        validatedrm(ctx, &session.customer_id).await?;
        Ok(())
    })
    .await
}

async fn resume_starts_empty(ctx: &Context) -> Step {
    with_fresh_session(ctx, |ctx, _customer, session| async move {
        let credential = session.by_query();
        let exchange = ctx
            .cloudpay
            .get("/api/v1/resume")
            .credential(&credential)
            .send()
            .await?;
        let body = exchange.expect_json(200)?;
        checks::exact_keys(&exchange, &body, &RESUME_KEYS, "the resume page")?;
        ensure_eq!(
            body,
            serde_json::json!({"page": 1, "size": 20, "order": "desc", "entries": []}),
            "the first resume page of a new customer; {}",
            exchange.evidence()
        );
        let exchange = ctx
            .cloudpay
            .get("/api/v1/resume")
            .credential(&credential)
            .query("order", "asc")
            .query("page", "2")
            .query("size", "5")
            .send()
            .await?;
        let body = exchange.expect_json(200)?;
        ensure_eq!(
            body,
            serde_json::json!({"page": 2, "size": 5, "order": "asc", "entries": []}),
            "resume should echo page, size and order; {}",
            exchange.evidence()
        );
        for (name, value) in [
            ("page", "0"),
            ("size", "0"),
            ("size", "101"),
            ("order", "sideways"),
        ] {
            let exchange = ctx
                .cloudpay
                .get("/api/v1/resume")
                .credential(&credential)
                .query(name, value)
                .send()
                .await?;
            checks::error_response(&exchange, 400)?;
        }
        Ok(())
    })
    .await
}
