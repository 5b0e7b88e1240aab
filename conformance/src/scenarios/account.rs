//! The customer's own account: reading it, changing names and custom fields, and requests
//! that must be refused whole, changing nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::checks;
use crate::cloudpay::Credential;
use crate::context::{Context, Customer, Session};
use crate::http::Exchange;
use crate::scenario::Scenario;
use crate::step::{Step, skip};
use crate::{ensure, ensure_eq, scenario};

/// The server refuses bodies above 256 KiB; this is comfortably above.
const OVERSIZE_BODY_BYTES: usize = 300 * 1024;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(
            "account.read",
            "GET /api/v1/account answers exactly Account's members: the customer's email and \
             names, CustomFields each with Id, Label, Required and Value, Subscriptions and \
             Entitlements",
            read
        ),
        scenario!(
            "account.update_names_and_custom_field",
            "PATCH FirstName and a custom field is 202 with the account without Subscriptions, \
             and GET shows the change",
            update_names_and_custom_field
        ),
        scenario!(
            "account.email_change_refused",
            "PATCH with a different EmailAddress is 400 in the error shape and changes nothing, \
             not even the FirstName in the same request",
            email_change_refused
        ),
        scenario!(
            "account.unknown_custom_field_refused",
            "PATCH naming a custom field that does not exist is 400 and changes nothing, not \
             even the FirstName in the same request",
            unknown_custom_field_refused
        ),
        scenario!(
            "account.required_custom_field_kept",
            "PATCH setting a required custom field to \"\" is 400 and changes nothing",
            required_custom_field_kept
        ),
        scenario!(
            "account.malformed_body_is_400",
            "PATCH with malformed JSON, or a FirstName that is not a string, is 400 in the \
             error shape and changes nothing",
            malformed_body_is_400
        ),
        scenario!(
            "account.oversize_body_is_413",
            "PATCH with a body over 256 KiB is 413 in the error shape and changes nothing",
            oversize_body_is_413
        ),
    ]
}

/// A customer with a live session, for the length of `checks`; the session ends afterwards.
async fn with_session<'a, F, Fut>(ctx: &'a Context, checks: F) -> Step
where
    F: FnOnce(&'a Context, Customer, Session) -> Fut,
    Fut: std::future::Future<Output = Step>,
{
    let customer = ctx.customer().await?;
    let session = ctx.start_session(&customer).await?;
    let ended = session.clone();
    let outcome = checks(ctx, customer, session).await;
    ctx.end_quietly(&ended).await;
    outcome
}

/// The account as GET answers it, checked.
async fn read_account(ctx: &Context, customer: &Customer, credential: &Credential) -> Step<Value> {
    let exchange = ctx.cloudpay.account(Some(credential)).await?;
    let body = exchange.expect_json(200)?;
    checks::account(&exchange, &body, customer, true)?;
    Ok(body)
}

/// A refused PATCH left the account exactly as it was.
async fn unchanged(
    ctx: &Context,
    customer: &Customer,
    credential: &Credential,
    before: &Value,
    refused: &Exchange,
) -> Step {
    let after = read_account(ctx, customer, credential).await?;
    ensure_eq!(
        &after,
        before,
        "a refused PATCH changed the account (refused by: {})",
        refused.evidence()
    );
    Ok(())
}

fn custom_fields(account: &Value) -> Vec<Value> {
    account["CustomFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The PATCH entry for a custom field, as CloudPay takes it (Id, Label, Required, Value).
fn field_update(field: &Value, value: &str) -> Value {
    json!({
        "Id": field["Id"],
        "Label": field["Label"],
        "Required": field["Required"],
        "Value": value,
    })
}

/// Puts back what a PATCH changed on a shared test user, so the next run finds it as it was.
async fn restore(ctx: &Context, credential: &Credential, customer: &Customer, before: &Value) {
    if customer.fresh {
        return;
    }
    let fields: Vec<Value> = custom_fields(before)
        .iter()
        .filter_map(|field| {
            field["Value"]
                .as_str()
                .map(|value| field_update(field, value))
        })
        .collect();
    let _ = ctx
        .cloudpay
        .patch_account(
            credential,
            &json!({
                "FirstName": before["FirstName"],
                "LastName": before["LastName"],
                "CustomFields": fields,
            }),
        )
        .await;
}

async fn read(ctx: &Context) -> Step {
    with_session(ctx, |ctx, customer, session| async move {
        for credential in [session.by_query(), session.by_cookie()] {
            let account = read_account(ctx, &customer, &credential).await?;
            if let Some(first_name) = &customer.first_name {
                ensure_eq!(
                    account["FirstName"].as_str(),
                    Some(first_name.as_str()),
                    "FirstName by {}",
                    credential.carrier()
                );
            }
            if let Some(last_name) = &customer.last_name {
                ensure_eq!(
                    account["LastName"].as_str(),
                    Some(last_name.as_str()),
                    "LastName by {}",
                    credential.carrier()
                );
            }
        }
        Ok(())
    })
    .await
}

async fn update_names_and_custom_field(ctx: &Context) -> Step {
    with_session(ctx, |ctx, customer, session| async move {
        let credential = session.by_query();
        let before = read_account(ctx, &customer, &credential).await?;
        let fields = custom_fields(&before);
        // An optional field, so the suite never has to clear a required one.
        let field = fields
            .iter()
            .find(|field| field["Required"] == false)
            .or(fields.first())
            .cloned()
            .ok_or_else(|| skip("needs a custom field; this account has none"))?;
        let marker = uuid::Uuid::new_v4().simple().to_string();
        let first_name = format!("Renamed{}", &marker[..6]);
        let value = format!("value-{}", &marker[..8]);
        let exchange = ctx
            .cloudpay
            .patch_account(
                &credential,
                &json!({
                    "FirstName": first_name,
                    "CustomFields": [field_update(&field, &value)],
                }),
            )
            .await?;
        let outcome: Step = async {
            let body = exchange.expect_json(202)?;
            checks::account(&exchange, &body, &customer, false)?;
            checks::member(
                &exchange,
                &body,
                "/FirstName",
                &Value::from(first_name.as_str()),
            )?;
            let after = read_account(ctx, &customer, &credential).await?;
            ensure_eq!(
                after["FirstName"].as_str(),
                Some(first_name.as_str()),
                "FirstName after PATCH"
            );
            ensure_eq!(
                after["LastName"],
                before["LastName"],
                "LastName (not in the PATCH)"
            );
            for (changed, answered) in [(&after, "GET"), (&body, "the PATCH answer")] {
                let shown = custom_fields(changed)
                    .into_iter()
                    .find(|candidate| candidate["Id"] == field["Id"])
                    .ok_or_else(|| {
                        exchange.fail(format!("{answered} lost the custom field {}", field["Id"]))
                    })?;
                ensure_eq!(
                    shown["Value"].as_str(),
                    Some(value.as_str()),
                    "custom field {} in {answered}",
                    field["Id"]
                );
            }
            Ok(())
        }
        .await;
        restore(ctx, &credential, &customer, &before).await;
        outcome
    })
    .await
}

/// Sends a PATCH that must be refused with `status`, then checks nothing changed.
async fn refused_patch(
    ctx: &Context,
    customer: &Customer,
    credential: &Credential,
    send: impl std::future::Future<Output = Step<Exchange>>,
    status: u16,
) -> Step {
    let before = read_account(ctx, customer, credential).await?;
    let exchange = send.await?;
    let outcome = checks::error_response(&exchange, status).map(|_| ());
    if outcome.is_err() {
        restore(ctx, credential, customer, &before).await;
        outcome?;
    }
    unchanged(ctx, customer, credential, &before, &exchange).await
}

async fn email_change_refused(ctx: &Context) -> Step {
    with_session(ctx, |ctx, customer, session| async move {
        let credential = session.by_query();
        let body = json!({
            "FirstName": "ShouldNotStick",
            "EmailAddress": format!("other-{}", customer.email),
        });
        refused_patch(
            ctx,
            &customer,
            &credential,
            ctx.cloudpay.patch_account(&credential, &body),
            400,
        )
        .await?;
        // Sending the same email back is not a change, so it is no reason to refuse.
        let before = read_account(ctx, &customer, &credential).await?;
        let exchange = ctx
            .cloudpay
            .patch_account(
                &credential,
                &json!({"EmailAddress": customer.email, "FirstName": before["FirstName"]}),
            )
            .await?;
        exchange.expect_status(202)?;
        Ok(())
    })
    .await
}

async fn unknown_custom_field_refused(ctx: &Context) -> Step {
    with_session(ctx, |ctx, customer, session| async move {
        let credential = session.by_query();
        let body = json!({
            "FirstName": "ShouldNotStick",
            "CustomFields": [{
                "Id": uuid::Uuid::new_v4().to_string(),
                "Label": "No such field",
                "Required": false,
                "Value": "x",
            }],
        });
        refused_patch(
            ctx,
            &customer,
            &credential,
            ctx.cloudpay.patch_account(&credential, &body),
            400,
        )
        .await
    })
    .await
}

async fn required_custom_field_kept(ctx: &Context) -> Step {
    with_session(ctx, |ctx, customer, session| async move {
        let credential = session.by_query();
        let account = read_account(ctx, &customer, &credential).await?;
        let required = custom_fields(&account)
            .into_iter()
            .find(|field| field["Required"] == true)
            .ok_or_else(|| skip("needs a required custom field; this account has none"))?;
        let body = json!({
            "FirstName": "ShouldNotStick",
            "CustomFields": [field_update(&required, "")],
        });
        refused_patch(
            ctx,
            &customer,
            &credential,
            ctx.cloudpay.patch_account(&credential, &body),
            400,
        )
        .await
    })
    .await
}

fn raw_patch(
    ctx: &Context,
    credential: &Credential,
    bytes: Vec<u8>,
) -> impl std::future::Future<Output = Step<Exchange>> {
    ctx.cloudpay
        .request(Method::PATCH, "/api/v1/account")
        .credential(credential)
        // A server may answer before reading a refused body and then drop the connection;
        // this connection is not to be reused, so the next request cannot land on it.
        .header("connection", "close")
        .body("application/json", bytes)
        .send()
}

async fn malformed_body_is_400(ctx: &Context) -> Step {
    with_session(ctx, |ctx, customer, session| async move {
        let credential = session.by_query();
        let malformed = br#"{"FirstName": "Trunc"#.to_vec();
        refused_patch(
            ctx,
            &customer,
            &credential,
            raw_patch(ctx, &credential, malformed),
            400,
        )
        .await?;
        let mistyped = br#"{"FirstName": 5, "LastName": "ShouldNotStick"}"#.to_vec();
        refused_patch(
            ctx,
            &customer,
            &credential,
            raw_patch(ctx, &credential, mistyped),
            400,
        )
        .await
    })
    .await
}

async fn oversize_body_is_413(ctx: &Context) -> Step {
    with_session(ctx, |ctx, customer, session| async move {
        let credential = session.by_query();
        let padding = "a".repeat(OVERSIZE_BODY_BYTES);
        let body = json!({"FirstName": "ShouldNotStick", "LastName": padding});
        let bytes = body.to_string().into_bytes();
        ensure!(bytes.len() > 256 * 1024, "the oversize body is too small");
        refused_patch(
            ctx,
            &customer,
            &credential,
            raw_patch(ctx, &credential, bytes),
            413,
        )
        .await
    })
    .await
}
