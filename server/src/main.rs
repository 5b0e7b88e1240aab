use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use poem::listener::TcpListener;
use poem::{EndpointExt, Server};

use boxoffice::sim::{SimOptions, SimServer};

/// The server allocates and frees many short-lived JSON values and buffers per request from
/// several threads at once; glibc's allocator spends a quarter of the CPU on that under load
/// (its arena locks and consolidation), mimalloc a fraction of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: its place in mimalloc 3's `mi_option_t`, which libmimalloc-sys
/// does not name (a test checks it against the option's documented default).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long memory freed to mimalloc waits before it goes back to the OS, in milliseconds:
/// 10 s instead of mimalloc's 1 s. Memory given back and needed again costs a page fault
/// for every 4 KiB page touched again (several microseconds each on a virtual machine
/// whose host reclaims what its guest gives back), and under steady load the process
/// frees and reuses memory every few seconds. `MIMALLOC_PURGE_DELAY` still overrides it.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

fn keep_freed_memory_longer() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain store into mimalloc's option table, made before the runtime starts
        // any other thread (`mi_option_set` is not thread safe).
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
    }
}

/// SQLite's own allocations through mimalloc, without SQLite's memory statistics. By
/// default SQLite calls glibc's `malloc`, keeping a size header of its own on every block,
/// and takes a global mutex around each call to count the bytes: its allocations cost 7 %
/// of the renewal benchmark's instructions, a new cell or record for nearly every row a
/// statement reads or writes. Must run before anything opens a database, which is when
/// SQLite reads its configuration; called later it changes nothing and says so.
fn route_sqlite_allocations_to_mimalloc() -> anyhow::Result<()> {
    use libsqlite3_sys as sqlite;
    use std::ffi::{c_int, c_void};

    unsafe extern "C" fn malloc(size: c_int) -> *mut c_void {
        // SAFETY: mimalloc's malloc; SQLite never asks for a negative size.
        unsafe { libmimalloc_sys::mi_malloc(size as usize) }
    }
    unsafe extern "C" fn free(block: *mut c_void) {
        // SAFETY: SQLite frees only what `malloc` or `realloc` above returned.
        unsafe { libmimalloc_sys::mi_free(block) }
    }
    unsafe extern "C" fn realloc(block: *mut c_void, size: c_int) -> *mut c_void {
        // SAFETY: as for `malloc` and `free`.
        unsafe { libmimalloc_sys::mi_realloc(block, size as usize) }
    }
    unsafe extern "C" fn size(block: *mut c_void) -> c_int {
        // SAFETY: `block` came from mimalloc; SQLite's blocks are far below 2 GiB.
        unsafe { libmimalloc_sys::mi_usable_size(block) as c_int }
    }
    unsafe extern "C" fn roundup(size: c_int) -> c_int {
        // SAFETY: a pure function of the size.
        unsafe { libmimalloc_sys::mi_good_size(size as usize) as c_int }
    }
    unsafe extern "C" fn init(_: *mut c_void) -> c_int {
        sqlite::SQLITE_OK
    }
    unsafe extern "C" fn shutdown(_: *mut c_void) {}

    let methods = sqlite::sqlite3_mem_methods {
        xMalloc: Some(malloc),
        xFree: Some(free),
        xRealloc: Some(realloc),
        xSize: Some(size),
        xRoundup: Some(roundup),
        xInit: Some(init),
        xShutdown: Some(shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: SQLite copies the methods, whose functions live for the whole process; both
    // calls are refused (not undefined) once SQLite has started.
    let results = unsafe {
        [
            sqlite::sqlite3_config(sqlite::SQLITE_CONFIG_MALLOC, &methods),
            sqlite::sqlite3_config(sqlite::SQLITE_CONFIG_MEMSTATUS, 0 as c_int),
        ]
    };
    if results.iter().any(|&result| result != sqlite::SQLITE_OK) {
        anyhow::bail!("SQLite was configured after it started: {results:?}");
    }
    Ok(())
}

#[derive(Parser)]
#[command(
    name = "boxoffice",
    version,
    about = "The box office of an OTT service: CloudPay, AlphaOTT and Amino APIs over one core, with offline provider simulators"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulator mode: server, simulators and control surface in one process, on an embedded
    /// SQLite file, with a seeded catalogue, test users and a virtual clock.
    Sim {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// Where the SQLite file and simulator keys are kept.
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// Concurrent sessions allowed per customer.
        #[arg(long, default_value_t = 3)]
        device_limit: u32,
        /// Sign SSO tokens with this shared secret (HS256) instead of an RSA key (RS256).
        #[arg(long)]
        sso_shared_secret: Option<String>,
    },
    /// The server alone, against the providers its configuration names.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// `sqlite://path/to/file.sqlite` or `postgres://user@host/db`.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// The configuration file (TOML): identity provider, sessions, catalogue.
        #[arg(long)]
        config: PathBuf,
    },
    /// One simulator alone, at the root of its own port.
    Simulator {
        name: SimulatorName,
        #[arg(long, default_value = "127.0.0.1:8090")]
        addr: String,
        #[arg(long, default_value = "data")]
        data: PathBuf,
    },
    /// Write every OpenAPI document.
    Openapi {
        #[arg(long, default_value = "openapi")]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SimulatorName {
    Sso,
    Stripe,
    Apple,
    Google,
    Roku,
    Amazon,
}

/// Serves one simulator alone until Ctrl-C.
async fn serve_alone(addr: &str, routes: poem::Route) -> std::io::Result<()> {
    Server::new(TcpListener::bind(addr))
        .run_with_graceful_shutdown(
            routes.map_to_response(),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            None,
        )
        .await
}

/// 4 KiB page faults instead of transparent huge pages for this process, unless
/// `MIMALLOC_ALLOW_THP` says otherwise. mimalloc marks its arenas for huge pages, so the
/// first touch of any 2 MiB of a growing heap makes the kernel zero all of it at once,
/// which on a virtual machine (where the host too must back the page) costs milliseconds.
/// The simulators keep every object they create, as the providers do, so the heap grows
/// for as long as the process takes payments: the renewal benchmark spent 6 % of its CPU
/// zeroing huge pages and ran 3-6 % faster without them (`cargo xtask bench`).
#[cfg(target_os = "linux")]
fn fault_small_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: sets a flag of this process's memory map; no pointer is passed. Faults
        // after it use small pages, including in regions already marked for huge ones.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

#[cfg(not(target_os = "linux"))]
fn fault_small_pages() {}

fn main() -> anyhow::Result<()> {
    route_sqlite_allocations_to_mimalloc()?;
    keep_freed_memory_longer();
    fault_small_pages();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,poem=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Sim {
            addr,
            data,
            device_limit,
            sso_shared_secret,
        } => {
            let server = SimServer::start(SimOptions {
                addr,
                data_dir: data,
                device_limit,
                sso_shared_secret,
                ..SimOptions::default()
            })
            .await?;
            println!("{}", boxoffice::sim::banner(&server.config));
            server.wait().await?;
        }
        Command::Serve {
            addr,
            database_url,
            config,
        } => boxoffice::serve::run(&addr, &database_url, &config).await?,
        Command::Simulator { name, addr, data } => match name {
            SimulatorName::Sso => {
                let routes = boxoffice::sim::standalone_sso(&addr, &data)?;
                println!(
                    "SSO simulator (Cognito user pool {}, app client {}) at http://{addr}; controls at /control/sso",
                    boxoffice::sim::USER_POOL_ID,
                    boxoffice::sim::APP_CLIENT_ID
                );
                serve_alone(&addr, routes).await?;
            }
            SimulatorName::Stripe => {
                let (routes, deliveries) = boxoffice::sim::standalone_stripe(&addr)?;
                println!(
                    "Stripe simulator at http://{addr} (keys {} / {}); controls at /control/stripe",
                    boxoffice::sim::STRIPE_PUBLISHABLE_KEY,
                    boxoffice::sim::STRIPE_SECRET_KEY
                );
                serve_alone(&addr, routes).await?;
                deliveries.abort();
            }
            SimulatorName::Apple => {
                let (routes, background) = boxoffice::sim::standalone_apple(&addr, &data)?;
                println!(
                    "App Store simulator at http://{addr} (sandbox at /sandbox; bundle {}, API key {}, issuer {}); \
                     the app, its private key and products at /control/apple/app; controls at /control/apple",
                    boxoffice::sim::APPLE_BUNDLE_ID,
                    boxoffice::sim::APPLE_KEY_ID,
                    boxoffice::sim::APPLE_ISSUER_ID
                );
                serve_alone(&addr, routes).await?;
                background.abort();
            }
            SimulatorName::Google => {
                let (routes, deliveries) = boxoffice::sim::standalone_google(&addr)?;
                println!(
                    "Google Play simulator at http://{addr} (package {}, service account {}); \
                     its key file at /control/google/service_account_key, push settings at \
                     /control/google/rtdn; controls at /control/google",
                    boxoffice::sim::GOOGLE_PACKAGE_NAME,
                    boxoffice::sim::GOOGLE_SERVICE_ACCOUNT
                );
                serve_alone(&addr, routes).await?;
                deliveries.abort();
            }
            SimulatorName::Roku => {
                let (routes, deliveries) = boxoffice::sim::standalone_roku(&addr)?;
                println!(
                    "Roku Pay simulator at http://{addr} (partner API key {}, channel {}); \
                     push settings at /control/roku/push; controls at /control/roku",
                    boxoffice::sim::ROKU_PARTNER_API_KEY,
                    boxoffice::sim::ROKU_CHANNEL_ID
                );
                serve_alone(&addr, routes).await?;
                deliveries.abort();
            }
            SimulatorName::Amazon => {
                let (routes, deliveries) = boxoffice::sim::standalone_amazon(&addr, &data)?;
                println!(
                    "Amazon Appstore simulator at http://{addr} (RVS; the Cloud Sandbox at /sandbox; \
                     package {}, shared secret {}); notification endpoint at /control/amazon/rtn; \
                     controls at /control/amazon",
                    boxoffice::sim::AMAZON_PACKAGE_NAME,
                    boxoffice::sim::AMAZON_SHARED_SECRET
                );
                serve_alone(&addr, routes).await?;
                deliveries.abort();
            }
        },
        Command::Openapi { out } => {
            std::fs::create_dir_all(&out)?;
            for (name, document) in boxoffice::sim::documents().await? {
                let path = out.join(name);
                std::fs::write(&path, format!("{document}\n"))?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_mimalloc_defaults_to_a_second() {
        // Any other option in that place has another default; an upgrade of mimalloc that
        // moved the option fails here instead of setting something else.
        // SAFETY: reads mimalloc's option table; nothing in this test writes it.
        let default = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(default, 1000);
    }

    #[test]
    fn sqlite_allocates_from_mimalloc_and_keeps_no_statistics() {
        use libsqlite3_sys as sqlite;
        // The only test in this binary that touches SQLite, so SQLite has not started.
        route_sqlite_allocations_to_mimalloc().unwrap();
        // SAFETY: SQLite's documented API; the block is freed by SQLite before the end.
        unsafe {
            let block = sqlite::sqlite3_malloc(1000);
            assert!(!block.is_null());
            assert!(libmimalloc_sys::mi_is_in_heap_region(block));
            assert!(sqlite::sqlite3_msize(block) >= 1000);
            assert_eq!(sqlite::sqlite3_memory_used(), 0, "statistics are off");
            sqlite::sqlite3_free(block);
        }
        assert!(
            route_sqlite_allocations_to_mimalloc().is_err(),
            "a started SQLite refuses to be configured"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_off_for_the_process_unless_mimalloc_is_told_otherwise() {
        fault_small_pages();
        // SAFETY: reads a flag of this process; no pointer is passed.
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        // mimalloc disables them itself for `MIMALLOC_ALLOW_THP=0`.
        let expected = match std::env::var("MIMALLOC_ALLOW_THP") {
            Err(_) => 1,
            Ok(allow) => i32::from(allow == "0"),
        };
        assert_eq!(disabled, expected);
    }
}
