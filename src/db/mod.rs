//! Database access: the r2d2 pool over [`DbConnection`], per-connection
//! SQLite pragmas, embedded migrations for both backends, and the schema.

pub mod schema;

pub use guildhall_jobs::db::{write_tx, DbConnection, DbPool, Dialect, PooledConn};

use anyhow::Context as _;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::path::Path;
use std::time::Duration;

/// Migrations for SQLite.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// Migrations for PostgreSQL (same names as the SQLite ones).
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Sets the SQLite pragmas on every new connection. `busy_timeout` comes
/// first so that the others wait for a lock instead of failing.
#[derive(Debug, Clone, Copy)]
struct SqlitePragmas;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(c) = conn {
            c.batch_execute(
                "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Opens a pool on `url` (`postgres://…` or an SQLite path). For SQLite the
/// parent directory is created.
pub fn connect(url: &str, max_size: u32, timeout: Duration) -> anyhow::Result<DbPool> {
    let url = match Dialect::from_url(url) {
        Dialect::Postgres => url.to_owned(),
        Dialect::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            if path != ":memory:" {
                if let Some(parent) = Path::new(path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent)
                            .with_context(|| format!("cannot create {}", parent.display()))?;
                    }
                }
            }
            path.to_owned()
        }
    };
    let pool = Pool::builder()
        .max_size(max_size)
        .connection_timeout(timeout)
        .connection_customizer(Box::new(SqlitePragmas))
        .build(ConnectionManager::<DbConnection>::new(url))
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
    Ok(pool)
}

/// Runs pending migrations for the connection's backend; returns their names.
pub fn migrate(conn: &mut DbConnection) -> anyhow::Result<Vec<String>> {
    let applied = match conn {
        DbConnection::Pg(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
    }
    .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    Ok(applied.iter().map(|m| m.to_string()).collect())
}
