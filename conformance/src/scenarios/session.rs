//! Session start, presence and terminate through every credential carrier, and the SSO
//! entry points that set cookies and redirect.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::checks::{self, SessionExpectation};
use crate::cloudpay::{Credential, Login, THIRD_PARTY_COOKIE, THIRD_PARTY_COOKIE_LOWERCASE};
use crate::context::{Context, Customer, Session};
use crate::scenario::Scenario;
use crate::step::Step;
use crate::{ensure, ensure_eq, jwt, scenario};

/// A valid country the session is started in, to see it come back in `LocationFromIp`.
const SESSION_COUNTRY: &str = "IE";
/// CloudPay's own example: base64 of `returnurl:/account`.
const RETURN_TO_ACCOUNT: &str = "cmV0dXJudXJsOi9hY2NvdW50";

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(
            "session.email_password_lifecycle",
            "Session start with email and password (GET, POST object, POST string) answers a \
             full SessionModel whose AuthenticationToken is the session Id; presence by \
             apisessionid and .auth cookie shows it; terminate ends it (status 0, null \
             session) and a second terminate is 401",
            email_password_lifecycle
        ),
        scenario!(
            "session.jwt_lifecycle",
            "Session start with an SSO id token (apijwttoken) takes email and names from the \
             token's claims, is the same customer as the email/password login, and ends with \
             terminate by apijwttoken without touching the customer's other sessions",
            jwt_lifecycle
        ),
        scenario!(
            "session.sso_start_cookie",
            "/sso/start?token= sets the ThirdPartyAuthentication cookie (Path=/, HttpOnly, \
             Secure, SameSite=None, 2 h), which then authorises account, presence and \
             terminate, under either spelling; no token is 400",
            sso_start_cookie
        ),
        scenario!(
            "session.setcookie_redirect",
            "/api/v1/session/setcookie/{token}?callbackurl=/x redirects (302, Location /x) \
             with the .auth cookie, which then authorises; an unknown token is 401 and an \
             off-site callback is refused",
            setcookie_redirect
        ),
        scenario!(
            "session.sso_start_redirect",
            "/sso/start/{base64 of returnurl:/account}?token= redirects (302, Location \
             /account) with the ThirdPartyAuthentication cookie; an off-site return URL is \
             refused",
            sso_start_redirect
        ),
    ]
}

fn session_from(live: checks::LiveSession) -> Session {
    Session {
        id: live.id,
        customer_id: live.customer_id,
    }
}

/// Presence with `credential` shows exactly `session` of `customer`.
async fn expect_present(
    ctx: &Context,
    credential: &Credential,
    customer: &Customer,
    session: &Session,
) -> Step {
    let exchange = ctx.cloudpay.presence(Some(credential)).await?;
    let body = exchange.expect_json(200)?;
    let live = checks::session_model(&exchange, &body, &SessionExpectation::live(customer))?
        .ok_or_else(|| exchange.fail("no session"))?;
    ensure_eq!(
        live.id,
        session.id,
        "presence by {} shows another session",
        credential.carrier()
    );
    ensure_eq!(
        live.customer_id,
        session.customer_id,
        "presence by {} shows another customer",
        credential.carrier()
    );
    Ok(())
}

/// Presence with `credential` shows no session (status 0).
async fn expect_absent(ctx: &Context, credential: &Credential) -> Step {
    let exchange = ctx.cloudpay.presence(Some(credential)).await?;
    let body = exchange.expect_json(200)?;
    checks::session_model(&exchange, &body, &SessionExpectation::none())?;
    Ok(())
}

async fn email_password_lifecycle(ctx: &Context) -> Step {
    let customer = ctx.customer().await?;
    let exchange = ctx
        .cloudpay
        .start_session(&customer.login())
        .location(SESSION_COUNTRY)
        .send()
        .await?;
    let session = ctx
        .checked_start(
            &exchange,
            &SessionExpectation::started(&customer).in_country(SESSION_COUNTRY),
        )
        .await?;
    let outcome = email_password_checks(ctx, &customer, &session).await;
    ctx.end_quietly(&session).await;
    outcome
}

async fn email_password_checks(ctx: &Context, customer: &Customer, session: &Session) -> Step {
    // The session remembers where it started.
    let exchange = ctx.cloudpay.presence(Some(&session.by_query())).await?;
    let body = exchange.expect_json(200)?;
    checks::session_model(
        &exchange,
        &body,
        &SessionExpectation::live(customer).in_country(SESSION_COUNTRY),
    )?;
    expect_present(ctx, &session.by_cookie(), customer, session).await?;

    ctx.end_session(&session.by_query()).await?;
    expect_absent(ctx, &session.by_query()).await?;
    expect_absent(ctx, &session.by_cookie()).await?;
    let exchange = ctx.cloudpay.terminate(&session.by_query()).await?;
    checks::unauthorized(&exchange)?;

    // The POST forms: a JSON object, and CloudPay's string form.
    let bodies = [
        json!({"emailaddress": customer.email, "password": customer.password}),
        Value::from(format!(
            "emailaddress: {}, password: {}",
            customer.email, customer.password
        )),
    ];
    for login in bodies {
        let exchange = ctx
            .cloudpay
            .request(Method::POST, "/api/v1/session/start")
            .json(&login)
            .send()
            .await?;
        let started = ctx
            .checked_start(&exchange, &SessionExpectation::started(customer))
            .await?;
        let same_customer = started.customer_id == session.customer_id;
        ctx.end_session(&started.by_query()).await?;
        ensure!(
            same_customer,
            "POST session start names customer {}, GET named {}",
            started.customer_id,
            session.customer_id
        );
    }
    Ok(())
}

/// The customer as the token's claims describe them.
fn customer_from_claims(customer: &Customer, id_token: &str) -> Step<Customer> {
    let claims = jwt::claims(id_token)?;
    let claim = |name: &str| claims[name].as_str().map(str::to_owned);
    let described = Customer {
        email: claim("email").unwrap_or_default(),
        first_name: claim("given_name"),
        last_name: claim("family_name"),
        ..customer.clone()
    };
    ensure_eq!(
        described.email,
        customer.email,
        "the id token's email claim"
    );
    if customer.fresh {
        ensure_eq!(
            described.first_name,
            customer.first_name,
            "the id token's given_name claim"
        );
        ensure_eq!(
            described.last_name,
            customer.last_name,
            "the id token's family_name claim"
        );
    }
    Ok(described)
}

async fn jwt_lifecycle(ctx: &Context) -> Step {
    let customer = ctx.customer().await?;
    let id_token = ctx.sign_in(&customer).await?.id_token;
    let described = customer_from_claims(&customer, &id_token)?;
    let exchange = ctx
        .cloudpay
        .start_session(&Login::IdToken(&id_token))
        .send()
        .await?;
    let session = ctx
        .checked_start(&exchange, &SessionExpectation::started(&described))
        .await?;
    let other = match ctx.start_session(&customer).await {
        Ok(other) => other,
        Err(abort) => {
            ctx.end_quietly(&session).await;
            return Err(abort);
        }
    };
    let outcome = jwt_checks(ctx, &described, &id_token, &session, &other).await;
    ctx.end_quietly(&session).await;
    ctx.end_quietly(&other).await;
    outcome
}

async fn jwt_checks(
    ctx: &Context,
    customer: &Customer,
    id_token: &str,
    session: &Session,
    other: &Session,
) -> Step {
    let by_token = Credential::JwtToken(id_token.to_owned());
    expect_present(ctx, &by_token, customer, session).await?;
    expect_present(ctx, &session.by_query(), customer, session).await?;
    ensure_eq!(
        other.customer_id,
        session.customer_id,
        "email/password login and id token login name different customers"
    );
    ensure!(
        other.id != session.id,
        "two session starts answered the same session id {}",
        session.id
    );
    let exchange = ctx.cloudpay.account(Some(&by_token)).await?;
    let body = exchange.expect_json(200)?;
    checks::account(&exchange, &body, customer, true)?;

    ctx.end_session(&by_token).await?;
    // The token is still valid, its session is not.
    expect_absent(ctx, &by_token).await?;
    expect_absent(ctx, &session.by_query()).await?;
    expect_present(ctx, &other.by_query(), customer, other).await?;
    Ok(())
}

async fn sso_start_cookie(ctx: &Context) -> Step {
    let customer = ctx.customer().await?;
    let id_token = ctx.sign_in(&customer).await?.id_token;
    let described = customer_from_claims(&customer, &id_token)?;
    let exchange = ctx
        .cloudpay
        .get("/sso/start")
        .query("token", &id_token)
        .send()
        .await?;
    let outcome = sso_cookie_checks(ctx, &described, &exchange, &id_token).await;
    // Whatever happened, the token's session ends (a second terminate is a harmless 401).
    let _ = ctx
        .cloudpay
        .terminate(&Credential::JwtToken(id_token))
        .await;
    outcome
}

async fn sso_cookie_checks(
    ctx: &Context,
    customer: &Customer,
    started: &crate::http::Exchange,
    id_token: &str,
) -> Step {
    started.expect_status(200)?;
    let cookie = checks::session_cookie(started, THIRD_PARTY_COOKIE)?;
    ensure_eq!(
        cookie.value,
        id_token,
        "the ThirdPartyAuthentication cookie should carry the token"
    );
    let by_cookie = &Credential::ThirdPartyCookie {
        name: THIRD_PARTY_COOKIE,
        token: cookie.value.clone(),
    };
    let exchange = ctx.cloudpay.account(Some(by_cookie)).await?;
    let body = exchange.expect_json(200)?;
    checks::account(&exchange, &body, customer, true)?;

    let exchange = ctx.cloudpay.presence(Some(by_cookie)).await?;
    let body = exchange.expect_json(200)?;
    let session = checks::session_model(&exchange, &body, &SessionExpectation::live(customer))?
        .map(session_from)
        .ok_or_else(|| exchange.fail("no session"))?;
    let lowercase = Credential::ThirdPartyCookie {
        name: THIRD_PARTY_COOKIE_LOWERCASE,
        token: id_token.to_owned(),
    };
    expect_present(ctx, &lowercase, customer, &session).await?;

    let exchange = ctx.cloudpay.get("/sso/start").send().await?;
    checks::error_response(&exchange, 400)?;

    ctx.end_session(by_cookie).await?;
    expect_absent(ctx, by_cookie).await?;
    expect_absent(ctx, &session.by_query()).await
}

async fn setcookie_redirect(ctx: &Context) -> Step {
    let customer = ctx.customer().await?;
    let session = ctx.start_session(&customer).await?;
    let outcome = setcookie_checks(ctx, &customer, &session).await;
    ctx.end_quietly(&session).await;
    outcome
}

async fn setcookie_checks(ctx: &Context, customer: &Customer, session: &Session) -> Step {
    let exchange = ctx
        .cloudpay
        .get(&format!("/api/v1/session/setcookie/{}", session.id))
        .query("callbackurl", "/x")
        .send()
        .await?;
    exchange.expect_status(302)?;
    ensure_eq!(
        exchange.header("location"),
        Some("/x"),
        "Location after setcookie; {}",
        exchange.evidence()
    );
    let cookie = checks::session_cookie(&exchange, crate::cloudpay::AUTH_COOKIE)?;
    ensure_eq!(
        cookie.value,
        session.id,
        "the .auth cookie should carry the AuthenticationToken"
    );
    let exchange = ctx
        .cloudpay
        .account(Some(&Credential::AuthCookie(cookie.value.clone())))
        .await?;
    let body = exchange.expect_json(200)?;
    checks::account(&exchange, &body, customer, true)?;

    let exchange = ctx
        .cloudpay
        .get("/api/v1/session/setcookie/no-such-session-token")
        .query("callbackurl", "/x")
        .send()
        .await?;
    checks::unauthorized(&exchange)?;
    ensure!(
        exchange.set_cookies().is_empty(),
        "a refused setcookie must not set a cookie; {}",
        exchange.evidence()
    );

    // An open redirect would hand the session to another site.
    let exchange = ctx
        .cloudpay
        .get(&format!("/api/v1/session/setcookie/{}", session.id))
        .query("callbackurl", "https://attacker.example/steal")
        .send()
        .await?;
    checks::error_response(&exchange, 400)?;
    ensure!(
        exchange.set_cookies().is_empty(),
        "a refused setcookie must not set a cookie; {}",
        exchange.evidence()
    );
    Ok(())
}

async fn sso_start_redirect(ctx: &Context) -> Step {
    ensure_eq!(
        STANDARD.encode("returnurl:/account"),
        RETURN_TO_ACCOUNT,
        "the suite's own base64 of returnurl:/account"
    );
    let customer = ctx.customer().await?;
    let id_token = ctx.sign_in(&customer).await?.id_token;
    let exchange = ctx
        .cloudpay
        .get(&format!("/sso/start/{RETURN_TO_ACCOUNT}"))
        .query("token", &id_token)
        .send()
        .await?;
    let by_token = Credential::JwtToken(id_token.clone());
    let outcome = sso_redirect_checks(ctx, &exchange, &id_token).await;
    let _ = ctx.cloudpay.terminate(&by_token).await;
    outcome
}

async fn sso_redirect_checks(
    ctx: &Context,
    exchange: &crate::http::Exchange,
    id_token: &str,
) -> Step {
    exchange.expect_status(302)?;
    ensure_eq!(
        exchange.header("location"),
        Some("/account"),
        "Location after /sso/start/{{redirect}}; {}",
        exchange.evidence()
    );
    let cookie = checks::session_cookie(exchange, THIRD_PARTY_COOKIE)?;
    ensure_eq!(
        cookie.value,
        id_token,
        "the ThirdPartyAuthentication cookie should carry the token"
    );
    let off_site = STANDARD.encode("returnurl:https://attacker.example/");
    let refused = ctx
        .cloudpay
        .get(&format!("/sso/start/{off_site}"))
        .query("token", id_token)
        .send()
        .await?;
    checks::error_response(&refused, 400)?;
    ensure!(
        refused.header("location").is_none(),
        "a refused redirect must not redirect; {}",
        refused.evidence()
    );
    Ok(())
}
