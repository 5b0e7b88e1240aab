//! `boxoffice serve`: the server alone, on the system clock, against the providers its
//! configuration names (real ones or simulators), on SQLite or PostgreSQL.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::TcpListener;
use poem::{EndpointExt, Route, Server};

use crate::app;
use crate::clock::SystemClock;
use crate::config::ConfigFile;
use crate::core::{Core, IdentityVerifier};
use crate::providers::sso::SsoClient;
use crate::store::Store;

/// Builds the server from a configuration: opens (and migrates) the store, writes the
/// catalogue, and returns the routes with the core behind them.
pub async fn assemble(
    config: &ConfigFile,
    database_url: &str,
) -> anyhow::Result<(Route, Arc<Core>)> {
    let store = Store::open(database_url).await?;
    let core = Arc::new(
        Core::new(
            store,
            Arc::new(SystemClock),
            IdentityVerifier::new(config.identity_settings()?, SsoClient::new()),
            config.session_settings(),
            config.playback_settings(),
            config.payment_settings()?,
        )
        .with_stores(config.store_settings()?),
    );
    core.seed_catalogue(&config.catalogue.to_seed()?).await?;
    core.seed_discounts().await?;
    Ok((
        app::server_routes(
            core.clone(),
            &config.public_url,
            config.cloudpay_settings()?,
        ),
        core,
    ))
}

pub async fn run(addr: &str, database_url: &str, config_path: &Path) -> anyhow::Result<()> {
    let config = ConfigFile::load(config_path)?;
    let (routes, core) = assemble(&config, database_url).await?;
    let billing = crate::core::spawn_billing_loop(core.clone(), Duration::from_secs(1));
    tracing::info!(%addr, "boxoffice serving");
    Server::new(TcpListener::bind(addr))
        .run_with_graceful_shutdown(
            app::with_middleware(routes).map_to_response(),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            Some(Duration::from_secs(10)),
        )
        .await?;
    billing.abort();
    core.close().await;
    Ok(())
}
