//! Property: whatever a customer does with web purchases — buy (with a good or a refused
//! card), let renewals fail, save a new card, cancel, get refunded, let days pass — two
//! things hold after every step:
//! - the entitlements the account shows are exactly those of the packages of its
//!   subscriptions that are live now (trialing, active or past due, and not past their end);
//! - the money Stripe captured minus what it refunded equals the sum of the successful
//!   transactions the account shows (refunds are negative).
//!
//! One simulator-mode server serves every case; each case is a fresh customer.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::TestServer;
use conformance::cloudpay::Credential;
use conformance::context::{Customer, Session};
use conformance::stripe::StripePlayer;
use conformance::{Context, Target};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy)]
enum Plan {
    Monthly,
    OneOff,
    Trial,
}

#[derive(Debug, Clone)]
enum Operation {
    Buy { plan: Plan, card_works: bool },
    FailNextCharge,
    BillingUpdate,
    Cancel { newest: bool, immediate: bool },
    RefundLatest,
    Advance { days: u32 },
}

fn operation() -> impl Strategy<Value = Operation> {
    let plan = prop_oneof![Just(Plan::Monthly), Just(Plan::OneOff), Just(Plan::Trial)];
    prop_oneof![
        4 => (plan, prop::bool::weighted(0.8))
            .prop_map(|(plan, card_works)| Operation::Buy { plan, card_works }),
        2 => Just(Operation::FailNextCharge),
        1 => Just(Operation::BillingUpdate),
        2 => (any::<bool>(), any::<bool>())
            .prop_map(|(newest, immediate)| Operation::Cancel { newest, immediate }),
        1 => Just(Operation::RefundLatest),
        4 => prop::sample::select(vec![1_u32, 3, 8, 31])
            .prop_map(|days| Operation::Advance { days }),
    ]
}

struct Case<'a> {
    ctx: &'a Context,
    stripe: StripePlayer,
    customer: Customer,
    session: Session,
    /// Package id → its entitlements, from the package list.
    entitlements_of: HashMap<String, Vec<String>>,
    /// A refused next charge was asked for and may not have been used up by a renewal yet.
    failure_may_be_pending: bool,
}

fn failed(at: &str, what: impl std::fmt::Display) -> String {
    format!("{at}: {what}")
}

impl Case<'_> {
    fn credential(&self) -> Credential {
        self.session.by_query()
    }

    async fn sign_in_again(&mut self) -> Result<(), String> {
        self.session = self
            .ctx
            .start_session(&self.customer)
            .await
            .map_err(|abort| abort.to_string())?;
        Ok(())
    }

    async fn account(&self) -> Result<Value, String> {
        self.ctx
            .cloudpay
            .account(Some(&self.credential()))
            .await
            .and_then(|exchange| exchange.expect_json(200))
            .map_err(|abort| abort.to_string())
    }

    async fn transactions(&self) -> Result<Vec<Value>, String> {
        let exchange = self
            .ctx
            .cloudpay
            .get("/api/v1/account/transactions")
            .credential(&self.credential())
            .query("size", "100")
            .send()
            .await
            .map_err(|abort| abort.to_string())?;
        let body = exchange
            .expect_json(200)
            .map_err(|abort| abort.to_string())?;
        Ok(body["transactions"].as_array().cloned().unwrap_or_default())
    }

    async fn post(&self, method: Method, path: &str, body: &Value) -> Result<(u16, Value), String> {
        let exchange = self
            .ctx
            .cloudpay
            .request(method, path)
            .credential(&self.credential())
            .json(body)
            .send()
            .await
            .map_err(|abort| abort.to_string())?;
        Ok((exchange.status, exchange.json().unwrap_or(Value::Null)))
    }

    async fn apply(&mut self, operation: &Operation, at: &str) -> Result<(), String> {
        let fixtures = &self.ctx.config().fixtures;
        match *operation {
            Operation::Buy { plan, card_works } => {
                let package = match plan {
                    Plan::Monthly => &fixtures.monthly_package_id,
                    Plan::OneOff => &fixtures.one_off_package_id,
                    Plan::Trial => &fixtures.trial_package_id,
                }
                .clone()
                .unwrap_or_default();
                let (status, basket) = self
                    .post(
                        Method::POST,
                        "/payment/stripe/checkout",
                        &json!({ "packageId": package }),
                    )
                    .await?;
                if status != 201 {
                    return Err(failed(at, format!("checkout answered {status}: {basket}")));
                }
                let card = if card_works {
                    "pm_card_visa"
                } else {
                    "pm_card_chargeDeclinedInsufficientFunds"
                };
                let intent = basket["basketId"].as_str().unwrap_or_default();
                let exchange = self
                    .stripe
                    .confirm(intent, card)
                    .await
                    .map_err(|abort| failed(at, abort))?;
                let accepted = match (card_works, self.failure_may_be_pending) {
                    (true, false) => exchange.status == 200,
                    (true, true) => exchange.status == 200 || exchange.status == 402,
                    (false, _) => exchange.status == 402,
                };
                if !accepted {
                    return Err(failed(
                        at,
                        format!("confirm answered {}", exchange.evidence()),
                    ));
                }
                if !matches!(plan, Plan::Trial) {
                    // This charge used up any refusal still pending.
                    self.failure_may_be_pending = false;
                }
            }
            Operation::FailNextCharge => {
                self.failure_may_be_pending = true;
                self.stripe
                    .fail_next_charge(&self.customer.email, "insufficient_funds")
                    .await
                    .or_else(|abort| match abort {
                        // No Stripe customer yet: nothing to fail.
                        conformance::step::Abort::Fail(message)
                            if message.contains("has no customer") =>
                        {
                            Ok(())
                        }
                        other => Err(other),
                    })
                    .map_err(|abort| failed(at, abort))?;
            }
            Operation::BillingUpdate => {
                let (status, update) = self
                    .post(Method::POST, "/billing/stripe/update", &json!({}))
                    .await?;
                if status != 200 {
                    return Err(failed(
                        at,
                        format!("billing update answered {status}: {update}"),
                    ));
                }
                let setup = update["clientSecret"]
                    .as_str()
                    .and_then(|secret| secret.split("_secret_").next())
                    .unwrap_or_default()
                    .to_owned();
                self.stripe
                    .confirm(&setup, "pm_card_visa")
                    .await
                    .and_then(|exchange| exchange.expect_json(200))
                    .map_err(|abort| failed(at, abort))?;
            }
            Operation::Cancel { newest, immediate } => {
                let account = self.account().await?;
                let live: Vec<&Value> = account["Subscriptions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|subscription| {
                        matches!(
                            subscription["Type"].as_str(),
                            Some("trialing" | "active" | "past_due")
                        )
                    })
                    .collect();
                let chosen = if newest { live.first() } else { live.last() };
                if let Some(subscription) = chosen {
                    let id = subscription["Id"].as_str().unwrap_or_default();
                    let (status, body) = self
                        .post(
                            Method::POST,
                            "/api/v1/account/cancellation",
                            &json!({ "customerSubscriptionId": id, "reason": "property", "immediate": immediate }),
                        )
                        .await?;
                    // Cancelling at period end twice is refused as a bad request, not an error.
                    if status != 202 && status != 400 {
                        return Err(failed(
                            at,
                            format!("cancellation answered {status}: {body}"),
                        ));
                    }
                }
            }
            Operation::RefundLatest => {
                let Ok(customer) = self.stripe.customer_id(&self.customer.email).await else {
                    return Ok(());
                };
                let charges = self
                    .stripe
                    .get(
                        "charges",
                        &[("customer", customer.as_str()), ("limit", "100")],
                    )
                    .await
                    .map_err(|abort| failed(at, abort))?;
                let refundable = charges["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|charge| charge["status"] == "succeeded" && charge["refunded"] == false);
                if let Some(charge) = refundable {
                    self.stripe
                        .refund(charge["id"].as_str().unwrap_or_default())
                        .await
                        .map_err(|abort| failed(at, abort))?;
                    self.stripe
                        .deliver_webhooks()
                        .await
                        .map_err(|abort| failed(at, abort))?;
                }
            }
            Operation::Advance { days } => {
                self.ctx
                    .clock()
                    .map_err(|abort| abort.to_string())?
                    .advance(&format!("{days}d"))
                    .await
                    .map_err(|abort| failed(at, abort))?;
                self.sign_in_again().await?;
            }
        }
        Ok(())
    }

    async fn check_invariants(&self, at: &str) -> Result<(), String> {
        let now = self
            .ctx
            .clock()
            .map_err(|abort| abort.to_string())?
            .now()
            .await
            .map_err(|abort| abort.to_string())?;
        let account = self.account().await?;
        let shown: BTreeSet<String> = account["Entitlements"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|value| value.as_str().map(str::to_owned))
            .collect();
        let mut granted = BTreeSet::new();
        for subscription in account["Subscriptions"].as_array().into_iter().flatten() {
            let live_state = matches!(
                subscription["Type"].as_str(),
                Some("trialing" | "active" | "past_due")
            );
            let before_end = subscription["ExpiryDate"].as_str().is_none_or(|end| {
                chrono::DateTime::parse_from_rfc3339(end)
                    .map(|end| end.timestamp_millis() > now)
                    .unwrap_or(false)
            });
            if live_state && before_end {
                let package = subscription["Package"]["Id"].as_str().unwrap_or_default();
                granted.extend(
                    self.entitlements_of
                        .get(package)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
        if shown != granted {
            return Err(failed(
                at,
                format!(
                    "entitlements {shown:?}, but the live subscriptions grant {granted:?}: {account}"
                ),
            ));
        }

        let recorded: i64 = self
            .transactions()
            .await?
            .iter()
            .filter(|entry| entry["Status"] == json!(1))
            .map(|entry| (entry["Amount"].as_f64().unwrap_or(0.0) * 100.0).round() as i64)
            .sum();
        let captured = match self.stripe.customer_id(&self.customer.email).await {
            Ok(customer) => {
                let charges = self
                    .stripe
                    .get(
                        "charges",
                        &[("customer", customer.as_str()), ("limit", "100")],
                    )
                    .await
                    .map_err(|abort| failed(at, abort))?;
                charges["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|charge| charge["status"] == "succeeded")
                    .map(|charge| {
                        charge["amount"].as_i64().unwrap_or(0)
                            - charge["amount_refunded"].as_i64().unwrap_or(0)
                    })
                    .sum()
            }
            Err(_) => 0,
        };
        if captured != recorded {
            return Err(failed(
                at,
                format!(
                    "Stripe holds {captured} (captured − refunded), the transactions sum to {recorded}"
                ),
            ));
        }
        Ok(())
    }
}

async fn run_case(ctx: &Context, operations: &[Operation]) -> Result<(), String> {
    let stripe = ctx.stripe().map_err(|abort| abort.to_string())?;
    let customer = ctx
        .fresh_customer()
        .await
        .map_err(|abort| abort.to_string())?;
    let session = ctx
        .start_session(&customer)
        .await
        .map_err(|abort| abort.to_string())?;
    let packages = ctx
        .cloudpay
        .get("/api/v1/package")
        .send()
        .await
        .and_then(|exchange| exchange.expect_json(200))
        .map_err(|abort| abort.to_string())?;
    let entitlements_of = packages["SubscriptionPlanOptions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|plan| {
            let entitlements = plan["Entitlements"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|value| value.as_str().map(str::to_owned))
                .collect();
            (
                plan["Id"].as_str().unwrap_or_default().to_owned(),
                entitlements,
            )
        })
        .collect();
    let mut case = Case {
        ctx,
        stripe,
        customer: Customer {
            fresh: false,
            ..customer
        },
        session,
        entitlements_of,
        failure_may_be_pending: false,
    };
    for (step, operation) in operations.iter().enumerate() {
        let at = format!("step {step} ({operation:?})");
        case.apply(operation, &at).await?;
        case.check_invariants(&at).await?;
    }
    Ok(())
}

#[test]
fn entitlements_and_money_stay_consistent() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let server = runtime.block_on(TestServer::start());
    let target = runtime
        .block_on(Target::discover(server.base_url(), None))
        .expect("the simulator describes itself");
    let ctx = Context::new(target);
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&prop::collection::vec(operation(), 1..10), |operations| {
        runtime
            .block_on(run_case(&ctx, &operations))
            .map_err(TestCaseError::fail)
    });
    runtime.block_on(server.stop());
    if let Err(error) = outcome {
        panic!("{error}");
    }
}
