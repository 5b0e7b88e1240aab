//! Every way a credential can be wrong is a 401 in CloudPay's documented error shape,
//! `{"statusCode":401,"body":{"status":"Unauthorized","message":…}}`.

use reqwest::Method;
use serde_json::json;

use crate::checks::{self, SessionExpectation};
use crate::cloudpay::{Credential, Login, THIRD_PARTY_COOKIE};
use crate::context::{Context, Customer};
use crate::scenario::Scenario;
use crate::sso::{SignedIn, TokenRequest};
use crate::step::Step;
use crate::{ensure_eq, jwt, scenario};

/// An issuer no one configured the server to trust.
const FOREIGN_ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_SomeoneElse";
/// An app client id that is not the server's.
const FOREIGN_AUDIENCE: &str = "someoneelsesappclient";

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(
            "auth.no_credential",
            "Account (GET, PATCH), terminate and resume without any credential are 401",
            no_credential
        ),
        scenario!(
            "auth.garbage_credentials",
            "A garbage value in each carrier (apijwttoken, apisessionid, .auth, \
             ThirdPartyAuthentication) is 401",
            garbage_credentials
        ),
        scenario!(
            "auth.tampered_jwt",
            "A real id token with a payload character flipped, or claiming another identity \
             under the original signature, is 401 for account, session start and presence",
            tampered_jwt
        ),
        scenario!(
            "auth.unsigned_jwt",
            "A real id token's claims under alg none, without a signature, are 401",
            unsigned_jwt
        ),
        scenario!(
            "auth.hs256_with_public_key",
            "A real id token's claims re-signed HS256 with the JWKS's RSA modulus (the RS/HS \
             confusion attack) or any other secret are 401",
            hs256_with_public_key
        ),
        scenario!(
            "auth.expired_token",
            "An expired id token (minted with a negative expiry, or made old by moving the \
             clock) is 401 for account, session start and presence",
            expired_token
        ),
        scenario!(
            "auth.not_yet_valid_token",
            "An id token whose nbf is in the future is 401",
            not_yet_valid_token
        ),
        scenario!(
            "auth.foreign_issuer",
            "An id token from another issuer is 401",
            foreign_issuer
        ),
        scenario!(
            "auth.wrong_audience",
            "An id token for another app client (aud) is 401",
            wrong_audience
        ),
        scenario!(
            "auth.access_token_refused",
            "The SSO access token (not the id token) is 401",
            access_token_refused
        ),
        scenario!(
            "auth.ended_session",
            "A terminated session's id is 401 as apisessionid and as the .auth cookie",
            ended_session
        ),
        scenario!(
            "auth.wrong_password",
            "Session start with a wrong password is 401 (GET and POST), and an unknown email \
             gets the very same answer, so logins do not reveal who has an account",
            wrong_password
        ),
        scenario!(
            "auth.presence",
            "Presence without a credential is 200 with status 0 and a null session; with a \
             tampered or unsigned JWT it is 401",
            presence
        ),
    ]
}

async fn signed_in(ctx: &Context) -> Step<(Customer, SignedIn)> {
    let sso = ctx.sso()?;
    let customer = ctx.customer().await?;
    let signed_in = sso.sign_in(&customer.email, &customer.password).await?;
    Ok((customer, signed_in))
}

/// The token is refused wherever a token is taken: account by query and cookie, session
/// start, presence. `what` names the flaw for messages.
async fn refused_everywhere(ctx: &Context, token: &str, what: &str) -> Step {
    let carriers = [
        Credential::JwtToken(token.to_owned()),
        Credential::ThirdPartyCookie {
            name: THIRD_PARTY_COOKIE,
            token: token.to_owned(),
        },
    ];
    for credential in &carriers {
        let exchange = ctx.cloudpay.account(Some(credential)).await?;
        checks::unauthorized(&exchange)
            .map_err(|abort| with_flaw(abort, what, credential.carrier()))?;
    }
    let exchange = ctx
        .cloudpay
        .start_session(&Login::IdToken(token))
        .send()
        .await?;
    checks::unauthorized(&exchange).map_err(|abort| with_flaw(abort, what, "session start"))?;
    let exchange = ctx.cloudpay.presence(Some(&carriers[0])).await?;
    checks::unauthorized(&exchange).map_err(|abort| with_flaw(abort, what, "presence"))?;
    Ok(())
}

fn with_flaw(abort: crate::step::Abort, what: &str, carrier: &str) -> crate::step::Abort {
    match abort {
        crate::step::Abort::Fail(message) => {
            crate::step::fail(format!("{what} via {carrier} should be 401: {message}"))
        }
        skipped => skipped,
    }
}

async fn no_credential(ctx: &Context) -> Step {
    let exchange = ctx.cloudpay.account(None).await?;
    checks::unauthorized(&exchange)?;
    let exchange = ctx
        .cloudpay
        .request(Method::PATCH, "/api/v1/account")
        .json(&json!({"FirstName": "Nobody"}))
        .send()
        .await?;
    checks::unauthorized(&exchange)?;
    for path in ["/api/v1/session/terminate", "/api/v1/resume"] {
        let exchange = ctx.cloudpay.get(path).send().await?;
        checks::unauthorized(&exchange)?;
    }
    Ok(())
}

async fn garbage_credentials(ctx: &Context) -> Step {
    let garbage = "not-a-credential-0123456789";
    let carriers = [
        Credential::JwtToken(garbage.into()),
        Credential::SessionId(garbage.into()),
        Credential::AuthCookie(garbage.into()),
        Credential::ThirdPartyCookie {
            name: THIRD_PARTY_COOKIE,
            token: garbage.into(),
        },
        Credential::JwtToken("eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl".into()),
    ];
    for credential in &carriers {
        let exchange = ctx.cloudpay.account(Some(credential)).await?;
        checks::unauthorized(&exchange)
            .map_err(|abort| with_flaw(abort, "a garbage credential", credential.carrier()))?;
    }
    Ok(())
}

async fn tampered_jwt(ctx: &Context) -> Step {
    let (_, signed_in) = signed_in(ctx).await?;
    let flipped = jwt::flip_payload_character(&signed_in.id_token)?;
    refused_everywhere(ctx, &flipped, "a token with a flipped payload character").await?;
    let impostor = jwt::with_changed_identity(&signed_in.id_token)?;
    refused_everywhere(ctx, &impostor, "a token claiming another identity").await
}

async fn unsigned_jwt(ctx: &Context) -> Step {
    let (_, signed_in) = signed_in(ctx).await?;
    let unsigned = jwt::unsigned(&signed_in.id_token)?;
    refused_everywhere(ctx, &unsigned, "an alg none token").await
}

async fn hs256_with_public_key(ctx: &Context) -> Step {
    let (_, signed_in) = signed_in(ctx).await?;
    let header = jwt::header(&signed_in.id_token)?;
    let kid = header["kid"].as_str();
    let mut secrets: Vec<(String, Vec<u8>)> = vec![(
        "a made-up secret".into(),
        b"conformance-made-up-secret".to_vec(),
    )];
    if let Some(jwks) = ctx.sso()?.jwks().await? {
        if let Some(modulus) = jwt::rsa_modulus(&jwks, kid) {
            secrets.push(("the JWKS's RSA modulus bytes".into(), modulus));
        }
        secrets.push(("the JWKS document".into(), jwks.to_string().into_bytes()));
    }
    for (what, secret) in secrets {
        let forged = jwt::resigned_hs256(&signed_in.id_token, &secret)?;
        refused_everywhere(ctx, &forged, &format!("a token signed HS256 with {what}")).await?;
    }
    Ok(())
}

async fn expired_token(ctx: &Context) -> Step {
    if ctx.has_minter() {
        let customer = ctx.customer().await?;
        let token = ctx
            .minter()?
            .mint(&TokenRequest {
                expires_in_seconds: Some(-60),
                ..TokenRequest::for_user(&customer.email)
            })
            .await?;
        return refused_everywhere(ctx, &token, "a token that expired a minute ago").await;
    }
    // Without minting: a real token, made old by moving the clock past its expiry.
    let clock = ctx.clock()?;
    let (_, signed_in) = signed_in(ctx).await?;
    clock
        .advance(&format!("{}s", signed_in.expires_in + 60))
        .await?;
    refused_everywhere(ctx, &signed_in.id_token, "a token past its exp").await
}

async fn minted_refused(ctx: &Context, overrides: TokenRequest, what: &str) -> Step {
    let minter = ctx.minter()?;
    let customer = ctx.customer().await?;
    let token = minter
        .mint(&TokenRequest {
            email: customer.email.clone(),
            ..overrides
        })
        .await?;
    refused_everywhere(ctx, &token, what).await
}

async fn not_yet_valid_token(ctx: &Context) -> Step {
    let overrides = TokenRequest {
        not_before_in_seconds: Some(600),
        ..TokenRequest::default()
    };
    minted_refused(ctx, overrides, "a token not valid for 10 minutes").await
}

async fn foreign_issuer(ctx: &Context) -> Step {
    let overrides = TokenRequest {
        issuer: Some(FOREIGN_ISSUER.into()),
        ..TokenRequest::default()
    };
    minted_refused(ctx, overrides, "a token from a foreign issuer").await
}

async fn wrong_audience(ctx: &Context) -> Step {
    let overrides = TokenRequest {
        audience: Some(FOREIGN_AUDIENCE.into()),
        ..TokenRequest::default()
    };
    minted_refused(ctx, overrides, "a token for another app client").await
}

async fn access_token_refused(ctx: &Context) -> Step {
    let (_, signed_in) = signed_in(ctx).await?;
    refused_everywhere(ctx, &signed_in.access_token, "an access token").await
}

async fn ended_session(ctx: &Context) -> Step {
    let customer = ctx.customer().await?;
    let session = ctx.start_session(&customer).await?;
    ctx.end_session(&session.by_query()).await?;
    for credential in [session.by_query(), session.by_cookie()] {
        let exchange = ctx.cloudpay.account(Some(&credential)).await?;
        checks::unauthorized(&exchange)
            .map_err(|abort| with_flaw(abort, "an ended session", credential.carrier()))?;
    }
    Ok(())
}

async fn wrong_password(ctx: &Context) -> Step {
    let customer = ctx.customer().await?;
    let wrong = format!("{}-Wrong1", customer.password);
    let exchange = ctx
        .cloudpay
        .start_session(&Login::Password {
            email: &customer.email,
            password: &wrong,
        })
        .send()
        .await?;
    let wrong_password_message = checks::unauthorized(&exchange)?;
    let nobody = format!(
        "nobody-{}@conformance.example.com",
        uuid::Uuid::new_v4().simple()
    );
    let exchange = ctx
        .cloudpay
        .start_session(&Login::Password {
            email: &nobody,
            password: &wrong,
        })
        .send()
        .await?;
    let unknown_user_message = checks::unauthorized(&exchange)?;
    ensure_eq!(
        unknown_user_message,
        wrong_password_message,
        "an unknown email should get the same answer as a wrong password"
    );
    let exchange = ctx
        .cloudpay
        .request(Method::POST, "/api/v1/session/start")
        .json(&json!({"emailaddress": customer.email, "password": wrong}))
        .send()
        .await?;
    checks::unauthorized(&exchange)?;
    Ok(())
}

async fn presence(ctx: &Context) -> Step {
    let exchange = ctx.cloudpay.presence(None).await?;
    let body = exchange.expect_json(200)?;
    checks::session_model(&exchange, &body, &SessionExpectation::none())?;
    let (_, signed_in) = signed_in(ctx).await?;
    for forged in [
        jwt::flip_payload_character(&signed_in.id_token)?,
        jwt::unsigned(&signed_in.id_token)?,
    ] {
        let exchange = ctx
            .cloudpay
            .presence(Some(&Credential::JwtToken(forged)))
            .await?;
        checks::unauthorized(&exchange)?;
    }
    Ok(())
}
