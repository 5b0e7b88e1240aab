//! The device lock: each session start takes a slot, at most `deviceLimit` at once;
//! terminate and the idle timeout give slots back.

use crate::checks::{self, SessionExpectation};
use crate::cloudpay::{Credential, Login};
use crate::context::{Context, Customer, Session};
use crate::scenario::Scenario;
use crate::step::Step;
use crate::{ensure, ensure_eq, scenario};

/// CloudPay's words for a refused start (its ksession example, Status 5).
pub const CONCURRENCY_MESSAGE: &str = "The customer account is blocked due to concurrency limit";
/// How long a session lives without being seen (CloudPay's cookie lifetime).
const IDLE_TIMEOUT_MINUTES: u32 = 120;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(
            "device_lock.limit_refuses_the_next_start",
            "With deviceLimit sessions live, the next start is 403 {statusCode:403, body:{status, \
             message:\"The customer account is blocked due to concurrency limit\"}} by any login \
             (email/password, apijwttoken, /sso/start) and evicts no one; terminating one frees \
             exactly one slot",
            limit_refuses_the_next_start
        ),
        scenario!(
            "device_lock.idle_sessions_free_their_slots",
            "Moving the clock past the 2 h idle timeout expires sessions and frees their slots; \
             presence restarts a session's idle timer, so a session seen 1 h in outlives the \
             others",
            idle_sessions_free_their_slots
        ),
    ]
}

/// A start refused by the lock, in the documented shape and words.
pub fn expect_refused_by_lock(exchange: &crate::http::Exchange) -> Step {
    let (_, message) = checks::error_response(exchange, 403)?;
    ensure_eq!(message, CONCURRENCY_MESSAGE, "the 403 message");
    Ok(())
}

async fn start_refused(ctx: &Context, customer: &Customer) -> Step {
    let exchange = ctx.cloudpay.start_session(&customer.login()).send().await?;
    expect_refused_by_lock(&exchange)
}

async fn fill(ctx: &Context, customer: &Customer, sessions: &mut Vec<Session>, count: u32) -> Step {
    for _ in 0..count {
        let session = ctx.start_session(customer).await?;
        ensure!(
            sessions.iter().all(|other| other.id != session.id),
            "session start answered an id already in use: {}",
            session.id
        );
        sessions.push(session);
    }
    Ok(())
}

async fn expect_live(ctx: &Context, customer: &Customer, session: &Session) -> Step {
    let exchange = ctx.cloudpay.presence(Some(&session.by_query())).await?;
    let body = exchange.expect_json(200)?;
    let live = checks::session_model(&exchange, &body, &SessionExpectation::live(customer))?
        .ok_or_else(|| exchange.fail("the session should be live"))?;
    ensure_eq!(live.id, session.id, "presence shows another session");
    Ok(())
}

async fn expect_gone(ctx: &Context, session: &Session) -> Step {
    let exchange = ctx.cloudpay.presence(Some(&session.by_query())).await?;
    let body = exchange.expect_json(200)?;
    checks::session_model(&exchange, &body, &SessionExpectation::none())?;
    Ok(())
}

async fn end_all(ctx: &Context, sessions: &[Session]) {
    for session in sessions {
        ctx.end_quietly(session).await;
    }
}

async fn limit_refuses_the_next_start(ctx: &Context) -> Step {
    let customer = ctx.fresh_customer().await?;
    let mut sessions = Vec::new();
    let outcome = limit_checks(ctx, &customer, &mut sessions).await;
    end_all(ctx, &sessions).await;
    outcome
}

async fn limit_checks(ctx: &Context, customer: &Customer, sessions: &mut Vec<Session>) -> Step {
    let limit = ctx.config().device_limit;
    ensure!(limit >= 1, "the config's deviceLimit is 0");
    fill(ctx, customer, sessions, limit).await?;
    start_refused(ctx, customer).await?;
    if let Ok(sso) = ctx.sso() {
        // Every way in takes a slot, so every way in is refused.
        let id_token = sso
            .sign_in(&customer.email, &customer.password)
            .await?
            .id_token;
        let exchange = ctx
            .cloudpay
            .start_session(&Login::IdToken(&id_token))
            .send()
            .await?;
        expect_refused_by_lock(&exchange)?;
        let exchange = ctx
            .cloudpay
            .get("/sso/start")
            .query("token", &id_token)
            .send()
            .await?;
        expect_refused_by_lock(&exchange)?;
        ensure!(
            exchange.set_cookies().is_empty(),
            "a refused /sso/start must not set a cookie; {}",
            exchange.evidence()
        );
    }
    for session in sessions.iter() {
        expect_live(ctx, customer, session).await?;
    }

    let freed = sessions.remove(0);
    ctx.end_session(&Credential::SessionId(freed.id.clone()))
        .await?;
    expect_gone(ctx, &freed).await?;
    fill(ctx, customer, sessions, 1).await?;
    start_refused(ctx, customer).await
}

async fn idle_sessions_free_their_slots(ctx: &Context) -> Step {
    let clock = ctx.clock()?;
    let customer = ctx.fresh_customer().await?;
    let mut sessions = Vec::new();
    let outcome = idle_checks(ctx, clock, &customer, &mut sessions).await;
    end_all(ctx, &sessions).await;
    outcome
}

async fn idle_checks(
    ctx: &Context,
    clock: &crate::clock::ClockClient,
    customer: &Customer,
    sessions: &mut Vec<Session>,
) -> Step {
    let limit = ctx.config().device_limit;
    ensure!(limit >= 1, "the config's deviceLimit is 0");
    fill(ctx, customer, sessions, limit).await?;
    start_refused(ctx, customer).await?;

    // Halfway through, the first session is seen: its idle timer starts again.
    clock
        .advance(&format!("{}m", IDLE_TIMEOUT_MINUTES / 2))
        .await?;
    let kept = sessions[0].clone();
    expect_live(ctx, customer, &kept).await?;
    // Now the others have been idle just past the timeout; the first for half of it.
    clock
        .advance(&format!("{}m", IDLE_TIMEOUT_MINUTES / 2 + 1))
        .await?;
    for idle in &sessions[1..] {
        expect_gone(ctx, idle).await?;
    }
    expect_live(ctx, customer, &kept).await?;
    let mut restarted = vec![kept.clone()];
    fill(ctx, customer, &mut restarted, limit - 1).await?;
    sessions.extend(restarted.into_iter().skip(1));
    start_refused(ctx, customer).await?;

    // Past the timeout for everyone: every slot is free again.
    clock
        .advance(&format!("{}m", IDLE_TIMEOUT_MINUTES + 1))
        .await?;
    for idle in sessions.iter() {
        expect_gone(ctx, idle).await?;
    }
    let mut fresh = Vec::new();
    let outcome = fill(ctx, customer, &mut fresh, limit).await;
    sessions.extend(fresh);
    outcome?;
    start_refused(ctx, customer).await
}
