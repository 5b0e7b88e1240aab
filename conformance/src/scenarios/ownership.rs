//! No customer reaches another's data: whatever a credential names, it only ever shows and
//! changes its own customer.

use serde_json::{Value, json};

use crate::checks::{self, SessionExpectation};
use crate::context::{Context, Customer, Session};
use crate::scenario::Scenario;
use crate::step::Step;
use crate::{ensure, ensure_eq, scenario};

pub fn scenarios() -> Vec<Scenario> {
    vec![scenario!(
        "ownership.customers_see_only_their_own",
        "Two customers' sessions each read only their own account and presence; B's PATCH \
         and terminate change only B, never A",
        customers_see_only_their_own
    )]
}

async fn customers_see_only_their_own(ctx: &Context) -> Step {
    let (alice, bob) = ctx.two_customers().await?;
    let alice_session = ctx.start_session(&alice).await?;
    let bob_session = match ctx.start_session(&bob).await {
        Ok(session) => session,
        Err(abort) => {
            ctx.end_quietly(&alice_session).await;
            return Err(abort);
        }
    };
    let outcome = ownership_checks(ctx, (&alice, &alice_session), (&bob, &bob_session)).await;
    ctx.end_quietly(&alice_session).await;
    ctx.end_quietly(&bob_session).await;
    outcome
}

async fn account_of(ctx: &Context, customer: &Customer, session: &Session) -> Step<Value> {
    let exchange = ctx.cloudpay.account(Some(&session.by_query())).await?;
    let body = exchange.expect_json(200)?;
    // The check names the customer's own email: another's account fails it.
    checks::account(&exchange, &body, customer, true)?;
    Ok(body)
}

async fn ownership_checks(
    ctx: &Context,
    (alice, alice_session): (&Customer, &Session),
    (bob, bob_session): (&Customer, &Session),
) -> Step {
    ensure!(
        alice_session.customer_id != bob_session.customer_id,
        "two customers share the customer id {}",
        alice_session.customer_id
    );
    for (customer, session) in [(alice, alice_session), (bob, bob_session)] {
        let exchange = ctx.cloudpay.presence(Some(&session.by_query())).await?;
        let body = exchange.expect_json(200)?;
        let live = checks::session_model(&exchange, &body, &SessionExpectation::live(customer))?
            .ok_or_else(|| exchange.fail("no session"))?;
        ensure_eq!(
            live.customer_id,
            session.customer_id,
            "presence names another customer"
        );
    }
    let alice_before = account_of(ctx, alice, alice_session).await?;
    let bob_before = account_of(ctx, bob, bob_session).await?;

    let renamed = format!("Bee{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let exchange = ctx
        .cloudpay
        .patch_account(&bob_session.by_query(), &json!({"FirstName": renamed}))
        .await?;
    let outcome = renamed_checks(
        ctx,
        (alice, alice_session),
        (bob, bob_session),
        &alice_before,
        &exchange,
        &renamed,
    )
    .await;
    if !bob.fresh {
        // A shared test user gets its name back.
        let _ = ctx
            .cloudpay
            .patch_account(
                &bob_session.by_query(),
                &json!({"FirstName": bob_before["FirstName"]}),
            )
            .await;
    }
    outcome?;

    ctx.end_session(&bob_session.by_query()).await?;
    let exchange = ctx
        .cloudpay
        .presence(Some(&alice_session.by_query()))
        .await?;
    let body = exchange.expect_json(200)?;
    let live = checks::session_model(&exchange, &body, &SessionExpectation::live(alice))?
        .ok_or_else(|| exchange.fail("B's terminate ended A's session"))?;
    ensure_eq!(live.id, alice_session.id, "A's session after B's terminate");
    Ok(())
}

/// After B's rename: B's answer and account show it, A's account is as it was.
async fn renamed_checks(
    ctx: &Context,
    (alice, alice_session): (&Customer, &Session),
    (bob, bob_session): (&Customer, &Session),
    alice_before: &Value,
    patched: &crate::http::Exchange,
    renamed: &str,
) -> Step {
    let body = patched.expect_json(202)?;
    checks::account(patched, &body, bob, false)?;
    let alice_after = account_of(ctx, alice, alice_session).await?;
    ensure_eq!(&alice_after, alice_before, "B's PATCH changed A's account");
    let bob_after = account_of(ctx, bob, bob_session).await?;
    ensure_eq!(
        bob_after["FirstName"].as_str(),
        Some(renamed),
        "B's PATCH did not change B"
    );
    Ok(())
}
