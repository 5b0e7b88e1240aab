//! Property: whatever happens to an in-app purchase at its store — renewals failing into the
//! grace period, payments recovering, auto-renew turned off, refunds, notifications sent
//! again, days and months passing — after every step, for the App Store, Google Play, Roku Pay
//! and the Amazon Appstore:
//! - the entitlements the account shows are exactly those of its subscriptions that are
//!   live now (active or past due, and not past their end);
//! - the customer has access exactly when the store says they do.
//!
//! One simulator-mode server serves every case; each case is a fresh customer who starts
//! by buying the IAP package at the store and verifying the receipt.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::TestServer;
use conformance::cloudpay::Credential;
use conformance::context::{Customer, Session};
use conformance::stores::{StoreKind, StorePlayer, StorePurchase};
use conformance::{Context, Target};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
enum Operation {
    FailRenewals,
    Recover,
    AutoRenewOff,
    Refund,
    ResendLatestNotification,
    Advance { days: u32 },
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        2 => Just(Operation::FailRenewals),
        2 => Just(Operation::Recover),
        1 => Just(Operation::AutoRenewOff),
        1 => Just(Operation::Refund),
        1 => Just(Operation::ResendLatestNotification),
        4 => prop::sample::select(vec![1_u32, 3, 8, 31, 62])
            .prop_map(|days| Operation::Advance { days }),
    ]
}

struct Case<'a> {
    ctx: &'a Context,
    store: StorePlayer,
    customer: Customer,
    session: Session,
    purchase: StorePurchase,
    /// Package id → its entitlements, from the IAP package list.
    entitlements_of: HashMap<String, Vec<String>>,
}

fn failed(at: &str, what: impl std::fmt::Display) -> String {
    format!("{at}: {what}")
}

fn text(abort: conformance::step::Abort) -> String {
    abort.to_string()
}

impl Case<'_> {
    fn credential(&self) -> Credential {
        self.session.by_query()
    }

    async fn account(&self) -> Result<Value, String> {
        self.ctx
            .cloudpay
            .account(Some(&self.credential()))
            .await
            .and_then(|exchange| exchange.expect_json(200))
            .map_err(text)
    }

    /// Operations the store's state does not allow (recovering what never failed,
    /// refunding twice) are refused by its control surface; that is not what is checked.
    async fn apply(&mut self, operation: &Operation) -> Result<(), String> {
        let purchase = &self.purchase;
        let attempt = match operation {
            Operation::FailRenewals => self.store.fail_renewals_with_grace(purchase).await,
            Operation::Recover => self.store.recover(purchase).await,
            Operation::AutoRenewOff => self.store.turn_auto_renew_off(purchase).await,
            Operation::Refund => self.store.refund(purchase).await,
            Operation::ResendLatestNotification => {
                let (status, body) = self
                    .store
                    .resend_latest_notification(purchase)
                    .await
                    .map_err(text)?;
                // SNS signs a message once: sent again after the receiver's freshness
                // window, it is refused as a replay (and the invariants check that the
                // refusal changed nothing).
                let stale = status == 400 && body.contains("too long ago");
                if status != 200 && !stale {
                    return Err(format!("a resent notification got {status}: {body}"));
                }
                Ok(())
            }
            Operation::Advance { days } => {
                let clock = self.ctx.clock().map_err(text)?;
                clock.advance(&format!("{days}d")).await.map_err(text)?;
                self.session = self.ctx.start_session(&self.customer).await.map_err(text)?;
                Ok(())
            }
        };
        match attempt {
            Ok(()) => Ok(()),
            Err(abort) if abort.to_string().contains("→ 4") => Ok(()),
            Err(abort) => Err(abort.to_string()),
        }
    }

    async fn check_invariants(&self, at: &str) -> Result<(), String> {
        let now = self.ctx.clock().map_err(text)?.now().await.map_err(text)?;
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
        let store_grants = self
            .store
            .grants_access(&self.purchase)
            .await
            .map_err(text)?;
        if store_grants == shown.is_empty() {
            return Err(failed(
                at,
                format!(
                    "the {} {} access, the account shows {shown:?}: {account}",
                    self.store.kind().name(),
                    if store_grants { "grants" } else { "denies" }
                ),
            ));
        }
        Ok(())
    }
}

async fn run_case(ctx: &Context, kind: StoreKind, operations: &[Operation]) -> Result<(), String> {
    let store = StorePlayer::find(ctx, kind).await.map_err(text)?;
    let customer = ctx.fresh_customer().await.map_err(text)?;
    let session = ctx.start_session(&customer).await.map_err(text)?;
    let packages = ctx
        .cloudpay
        .get("/api/v1/package")
        .query("type", "iap")
        .send()
        .await
        .and_then(|exchange| exchange.expect_json(200))
        .map_err(text)?;
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
    let purchase = store.buy().await.map_err(text)?;
    let verified = ctx
        .cloudpay
        .request(Method::POST, "/iap/verify")
        .credential(&session.by_query())
        .json(&purchase.verify_request)
        .send()
        .await
        .and_then(|exchange| exchange.expect_json(200))
        .map_err(text)?;
    if verified["body"]["isVerified"] != json!(true) {
        return Err(format!("the purchase was not verified: {verified}"));
    }
    let mut case = Case {
        ctx,
        store,
        customer: Customer {
            fresh: false,
            ..customer
        },
        session,
        purchase,
        entitlements_of,
    };
    case.check_invariants("after the purchase").await?;
    for (step, operation) in operations.iter().enumerate() {
        let at = format!("step {step} ({operation:?})");
        case.apply(operation)
            .await
            .map_err(|error| failed(&at, error))?;
        case.check_invariants(&at).await?;
    }
    Ok(())
}

#[test]
fn entitlements_follow_the_stores() {
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
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let stores = prop_oneof![
        Just(StoreKind::Apple),
        Just(StoreKind::Google),
        Just(StoreKind::Roku),
        Just(StoreKind::Amazon),
    ];
    let outcome = runner.run(
        &(stores, prop::collection::vec(operation(), 1..10)),
        |(kind, operations)| {
            runtime
                .block_on(run_case(&ctx, kind, &operations))
                .map_err(TestCaseError::fail)
        },
    );
    runtime.block_on(server.stop());
    if let Err(error) = outcome {
        panic!("{error}");
    }
}
