//! The SSO simulator alone, laid out as simulator mode lays it out: the Cognito API at
//! `/sim/sso` and its control surface at `/sim/control/sso`. For trying an SDK against it:
//!
//! ```sh
//! cargo run -p boxoffice-simulators --example sso_standalone -- 127.0.0.1:9911
//! python3 xtask/sdk-check/cognito_check.py --endpoint-url http://127.0.0.1:9911/sim/sso \
//!     --client-id boxofficesdkcheck0000000001 --user-pool-id eu-west-1_BoxOffice --region eu-west-1
//! ```
//!
//! A standalone run has no virtual clock, so it reads the machine's.

use std::sync::Arc;
use std::time::Duration;

use boxoffice_simulators::sso::{SeedUser, SsoConfig, SsoSigning, SsoSimulator};
use poem::listener::TcpListener;
use poem::{Route, Server};
use poem_openapi::OpenApiService;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9911".to_owned());
    let base = format!("http://{address}/sim/sso");
    let simulator = SsoSimulator::new(
        SsoConfig {
            user_pool_id: "eu-west-1_BoxOffice".into(),
            region: "eu-west-1".into(),
            app_client_id: "boxofficesdkcheck0000000001".into(),
            public_base_url: base.clone(),
            auto_confirm: false,
            signing: SsoSigning::Rs256,
            signing_key_path: None,
            token_ttl: Duration::from_secs(3600),
        },
        Arc::new(chrono::Utc::now),
    )?;
    simulator.seed_user(SeedUser {
        email: "test.user@example.com".into(),
        password: "Passw0rd!".into(),
        given_name: "Test".into(),
        family_name: "User".into(),
    })?;
    let control = OpenApiService::new(simulator.control_api(), "Simulator control", "1")
        .server(format!("http://{address}/sim"));
    let control_docs = control.swagger_ui();
    let app = Route::new()
        .nest("/sim/sso", simulator.endpoint())
        .nest("/sim/docs", control_docs)
        .nest("/sim", control);
    println!(
        "SSO simulator: {base} (issuer {}), control at http://{address}/sim/control/sso",
        simulator.issuer()
    );
    Server::new(TcpListener::bind(address)).run(app).await?;
    Ok(())
}
