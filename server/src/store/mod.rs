//! Persistence: every SQL statement lives under this folder. One portable dialect runs on
//! SQLite (the default, an embedded file in WAL mode) and PostgreSQL (several replicas).
//!
//! Invariant: rules that must hold across replicas are enforced here, by the database —
//! transactions, constraints and row locks — never by process memory.

mod billing;
mod catalogue;
mod customers;
mod discounts;
mod events;
mod placeholders;
mod playback;
mod sessions;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};
use tokio::sync::OwnedMutexGuard;

pub use billing::{
    BillingJob, BillingProfileUpdate, JobChange, JobScope, RenewalNotice, Settlement,
    SubscriptionChange,
};
pub use customers::AccountUpdate;
pub use sessions::SessionStart;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness or check constraint refused the write; the name says which.
    #[error("constraint {0} refused the write")]
    Constraint(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("database URL not supported: {0} (use sqlite:// or postgres://)")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A failure shared by every caller whose write was part of one group commit.
    #[error(transparent)]
    Shared(Arc<StoreError>),
}

impl StoreError {
    /// The database could not be reached or failed (not: refused the data).
    pub fn is_outage(&self) -> bool {
        match self {
            StoreError::Database(_) => true,
            StoreError::Shared(error) => error.is_outage(),
            _ => false,
        }
    }
}

/// Database errors that are the caller's fault carry the constraint's name; everything else
/// stays an infrastructure error.
pub(crate) fn classify(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        if let Some(constraint) = db.constraint() {
            return StoreError::Constraint(constraint.to_owned());
        }
        // SQLite reports the columns, not the constraint name, for UNIQUE violations.
        if db.is_unique_violation() || db.is_check_violation() || db.is_foreign_key_violation() {
            return StoreError::Constraint(db.message().to_owned());
        }
    }
    StoreError::Database(error)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where every write goes, under this process's write turn: on SQLite a pool of one
    /// connection, on PostgreSQL the same pool as reads.
    writer: AnyPool,
    backend: Backend,
    /// SQLite has one writer. Writers of this process take turns here, where a waiter is
    /// woken the moment the turn is free, instead of in SQLite's busy handler, which
    /// polls with sleeps of up to 100 ms. The busy timeout still orders writers of other
    /// processes.
    write_turn: Arc<tokio::sync::Mutex<()>>,
    pending_events: Arc<events::PendingEvents>,
}

/// A write transaction; on SQLite it also holds this process's write turn until it ends.
pub(crate) struct WriteTransaction {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl WriteTransaction {
    /// Placeholders for one statement of this transaction.
    fn placeholders(&self) -> placeholders::Placeholders {
        placeholders::Placeholders::new(self.backend)
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTransaction {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTransaction {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl Store {
    /// Connects and brings the schema up to date. `sqlite://path` creates the file when
    /// missing; `postgres://…` expects the database to exist.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let pool = Self::pool_options(backend)
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .connect_with(options.clone())
            .await?;
        let writer = match backend {
            // The one connection this process writes through (its turns are taken at
            // `write_turn`). Another connection's commit makes SQLite drop a connection's
            // whole page cache, so a writer that is always the same connection keeps the
            // pages it writes to cached from one write to the next, where a writer picked
            // from the pool would read them again each time.
            Backend::Sqlite => {
                Self::pool_options(backend)
                    .max_connections(1)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            Self::prepare_sqlite_connection(conn).await?;
                            conn.execute("PRAGMA cache_size = -65536").await?;
                            // A statement that writes many rows keeps the pages it
                            // changes in a statement journal, in case it must be undone;
                            // past 64 KiB SQLite spills that journal to a temporary file,
                            // one write call per page, unless temporary data stays in
                            // memory.
                            conn.execute("PRAGMA temp_store = MEMORY").await?;
                            // Checkpoints copy each page changed since the last one back
                            // into the database; fewer of them copy a page that is written
                            // again and again (an index's upper levels) fewer times. The
                            // log grows to about 32 MiB between them instead of 4 MiB.
                            conn.execute("PRAGMA wal_autocheckpoint = 8000").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => pool.clone(),
        };
        MIGRATOR.run(&writer).await?;
        Ok(Self {
            pool,
            writer,
            backend,
            write_turn: Arc::default(),
            pending_events: Arc::default(),
        })
    }

    fn pool_options(backend: Backend) -> AnyPoolOptions {
        AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(30))
            // A SQLite connection is a file handle in this process and cannot go stale
            // the way a network connection can; pinging it on every acquire would double
            // the hand-offs to its worker thread.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        Self::prepare_sqlite_connection(conn).await?;
                    }
                    Ok(())
                })
            })
    }

    async fn prepare_sqlite_connection(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
        // WAL lets readers run beside the one writer; the busy timeout makes concurrent
        // writers (of other processes) queue instead of failing.
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute("PRAGMA busy_timeout = 10000").await?;
        conn.execute("PRAGMA foreign_keys = ON").await?;
        conn.execute("PRAGMA synchronous = NORMAL").await?;
        // Reads from the shared page cache of a mapped file instead of a pread per page
        // missing from each connection's own small cache.
        conn.execute("PRAGMA mmap_size = 268435456").await?;
        Ok(())
    }

    /// A transaction that will write. On SQLite it takes the write lock at `BEGIN
    /// IMMEDIATE`, so concurrent writers queue on the busy timeout instead of failing with
    /// `SQLITE_BUSY` when a read lock cannot be upgraded; PostgreSQL's row locks need nothing
    /// of the kind.
    pub(crate) async fn begin_write(&self) -> Result<WriteTransaction, sqlx::Error> {
        let turn = self.write_turn().await;
        let tx = match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        };
        Ok(WriteTransaction {
            tx,
            backend: self.backend,
            _turn: turn,
        })
    }

    /// Placeholders for one statement.
    fn placeholders(&self) -> placeholders::Placeholders {
        placeholders::Placeholders::new(self.backend)
    }

    /// This process's write turn on SQLite, to hold around a single-statement write (made
    /// on `writer`); nothing on PostgreSQL.
    pub(crate) async fn write_turn(&self) -> Option<OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_turn.clone().lock_owned().await),
            Backend::Postgres => None,
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

pub(crate) fn to_millis(instant: DateTime<Utc>) -> i64 {
    instant.timestamp_millis()
}

pub(crate) fn from_millis(millis: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {millis} out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sqlite_writer_keeps_temporary_data_in_memory_and_checkpoints_seldom() {
        let path = std::env::temp_dir().join(format!(
            "boxoffice-store-{}.sqlite",
            uuid::Uuid::new_v4().simple()
        ));
        let store = Store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let pragma = |name: &'static str| {
            let writer = store.writer.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
                    .fetch_one(&writer)
                    .await
                    .unwrap()
            }
        };
        // 2 is MEMORY.
        assert_eq!(pragma("temp_store").await, 2);
        assert_eq!(pragma("wal_autocheckpoint").await, 8000);
        store.writer.close().await;
        store.pool.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
