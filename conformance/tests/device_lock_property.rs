//! Property: whatever a customer's devices do — start sessions, terminate them, be seen,
//! let hours pass — the server never holds more live sessions than the device lock allows,
//! and accepts a start exactly when a model of the lock says a slot is free.
//!
//! One simulator-mode server serves every case; each case is a fresh customer, so cases
//! cannot see each other's sessions. The virtual clock only moves forward, so the model
//! counts time relative to the case's start, in whole minutes: a session is live while it
//! has been idle for less than the idle timeout.

mod common;

use std::collections::HashMap;

use common::TestServer;
use conformance::Context;
use conformance::Target;
use conformance::checks::{self, SessionExpectation};
use conformance::cloudpay::Credential;
use conformance::context::Customer;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Devices a customer plays on; a device holds the session it started last.
const DEVICES: usize = 5;
/// The idle timeout, in the model's minutes.
const IDLE_TIMEOUT_MINUTES: i64 = 120;

#[derive(Debug, Clone)]
enum Operation {
    Start {
        device: usize,
    },
    Terminate {
        device: usize,
    },
    /// Presence: the device's session is seen, which restarts its idle timer.
    Touch {
        device: usize,
    },
    Advance {
        minutes: i64,
    },
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        4 => (0..DEVICES).prop_map(|device| Operation::Start { device }),
        2 => (0..DEVICES).prop_map(|device| Operation::Terminate { device }),
        1 => (0..DEVICES).prop_map(|device| Operation::Touch { device }),
        // Steps around the timeout's edge (119, 120, 121) as well as well inside and past it.
        2 => prop::sample::select(vec![1_i64, 30, 61, 119, 120, 121, 180])
            .prop_map(|minutes| Operation::Advance { minutes }),
    ]
}

#[derive(Debug)]
struct ModelSession {
    id: String,
    last_seen: i64,
    ended: bool,
}

/// The device lock as the contract describes it.
struct Model {
    limit: usize,
    now: i64,
    sessions: Vec<ModelSession>,
    /// Device → index of its latest session.
    devices: HashMap<usize, usize>,
}

impl Model {
    fn is_live(&self, session: &ModelSession) -> bool {
        !session.ended && self.now - session.last_seen < IDLE_TIMEOUT_MINUTES
    }

    fn live_count(&self) -> usize {
        self.sessions
            .iter()
            .filter(|session| self.is_live(session))
            .count()
    }
}

async fn presence_is_live(ctx: &Context, customer: &Customer, id: &str) -> Result<bool, String> {
    let exchange = ctx
        .cloudpay
        .presence(Some(&Credential::SessionId(id.to_owned())))
        .await
        .map_err(|abort| abort.to_string())?;
    let body = exchange
        .expect_json(200)
        .map_err(|abort| abort.to_string())?;
    let live = match body["CurrentCustomerSessionStatus"].as_i64() {
        Some(-1) => SessionExpectation::live(customer),
        _ => SessionExpectation::none(),
    };
    let shown =
        checks::session_model(&exchange, &body, &live).map_err(|abort| abort.to_string())?;
    Ok(shown.is_some())
}

async fn run_case(ctx: &Context, operations: &[Operation]) -> Result<(), String> {
    let customer = ctx
        .fresh_customer()
        .await
        .map_err(|abort| abort.to_string())?;
    let clock = ctx.clock().map_err(|abort| abort.to_string())?;
    let mut model = Model {
        limit: ctx.config().device_limit as usize,
        now: 0,
        sessions: Vec::new(),
        devices: HashMap::new(),
    };
    for (step, operation) in operations.iter().enumerate() {
        let at = format!("step {step} ({operation:?}) at minute {}", model.now);
        match *operation {
            Operation::Start { device } => {
                let slot_free = model.live_count() < model.limit;
                let exchange = ctx
                    .cloudpay
                    .start_session(&customer.login())
                    .send()
                    .await
                    .map_err(|abort| abort.to_string())?;
                if slot_free {
                    let session = ctx
                        .checked_start(&exchange, &SessionExpectation::started(&customer))
                        .await
                        .map_err(|abort| format!("{at}: a slot was free: {abort}"))?;
                    model.sessions.push(ModelSession {
                        id: session.id,
                        last_seen: model.now,
                        ended: false,
                    });
                    model.devices.insert(device, model.sessions.len() - 1);
                } else {
                    conformance::scenarios::device_lock::expect_refused_by_lock(&exchange)
                        .map_err(|abort| format!("{at}: every slot was taken: {abort}"))?;
                }
            }
            Operation::Terminate { device } => {
                let Some(&index) = model.devices.get(&device) else {
                    continue;
                };
                let live = model.is_live(&model.sessions[index]);
                let credential = Credential::SessionId(model.sessions[index].id.clone());
                let exchange = ctx
                    .cloudpay
                    .terminate(&credential)
                    .await
                    .map_err(|abort| abort.to_string())?;
                let answered = if live {
                    exchange.expect_json(200).and_then(|body| {
                        checks::session_model(&exchange, &body, &SessionExpectation::none())
                    })
                } else {
                    checks::unauthorized(&exchange).map(|_| None)
                };
                answered.map_err(|abort| format!("{at}: live={live}: {abort}"))?;
                model.sessions[index].ended = true;
            }
            Operation::Touch { device } => {
                let Some(&index) = model.devices.get(&device) else {
                    continue;
                };
                let expected = model.is_live(&model.sessions[index]);
                let shown = presence_is_live(ctx, &customer, &model.sessions[index].id)
                    .await
                    .map_err(|message| format!("{at}: {message}"))?;
                if shown != expected {
                    return Err(format!(
                        "{at}: presence shows live={shown}, the model says {expected}"
                    ));
                }
                if expected {
                    model.sessions[index].last_seen = model.now;
                }
            }
            Operation::Advance { minutes } => {
                clock
                    .advance(&format!("{minutes}m"))
                    .await
                    .map_err(|abort| format!("{at}: {abort}"))?;
                model.now += minutes;
            }
        }
        if model.live_count() > model.limit {
            return Err(format!(
                "{at}: the model holds {} live sessions, over the limit {}",
                model.live_count(),
                model.limit
            ));
        }
    }
    // Finally the server agrees, session by session, on which are live.
    for session in &model.sessions {
        let expected = model.is_live(session);
        let shown = presence_is_live(ctx, &customer, &session.id).await?;
        if shown != expected {
            return Err(format!(
                "at the end (minute {}): session {} shows live={shown}, the model says {expected}",
                model.now, session.id
            ));
        }
    }
    // Leave nothing behind for the next case's clock moves to trip over.
    for session in &model.sessions {
        let _ = ctx
            .cloudpay
            .terminate(&Credential::SessionId(session.id.clone()))
            .await;
    }
    Ok(())
}

#[test]
fn the_device_lock_is_never_exceeded() {
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
        cases: 24,
        // A failing sequence is printed, shrunk; there is no source file to persist it beside.
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&prop::collection::vec(operation(), 1..14), |operations| {
        runtime
            .block_on(run_case(&ctx, &operations))
            .map_err(TestCaseError::fail)
    });
    runtime.block_on(server.stop());
    if let Err(error) = outcome {
        panic!("{error}");
    }
}
