//! The database connection shared by the queue and the application.
//!
//! It lives here, not in the application, because the queue must speak both
//! backends and the application depends on the queue, never the reverse.

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};

/// One connection to either backend, chosen by the database URL's scheme.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL (`postgres://` or `postgresql://`).
    Pg(diesel::PgConnection),
    /// SQLite (a file path, `sqlite://path` or `:memory:`).
    Sqlite(diesel::SqliteConnection),
}

/// The r2d2 pool of [`DbConnection`]s.
pub type DbPool = Pool<ConnectionManager<DbConnection>>;
/// A connection checked out of a [`DbPool`].
pub type PooledConn = PooledConnection<ConnectionManager<DbConnection>>;

/// Which SQL dialect a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    /// The dialect a database URL selects: `postgres://` and `postgresql://`
    /// select PostgreSQL, anything else is an SQLite path.
    pub fn from_url(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        }
    }
}

impl DbConnection {
    /// The dialect of this connection.
    pub fn dialect(&self) -> Dialect {
        match self {
            DbConnection::Pg(_) => Dialect::Postgres,
            DbConnection::Sqlite(_) => Dialect::Sqlite,
        }
    }
}

/// Runs `f` in a write transaction: `BEGIN IMMEDIATE` on SQLite (so the write
/// lock is taken up front and concurrent writers queue on `busy_timeout`
/// instead of failing with `SQLITE_BUSY` on upgrade), a plain transaction on
/// PostgreSQL. Nested calls become savepoints. Rolls back on `Err`.
pub fn write_tx<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let sqlite_outermost = match conn {
        DbConnection::Pg(_) => false,
        DbConnection::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()
            .map_err(E::from)?
            .is_none(),
    };
    if !sqlite_outermost {
        return conn.transaction(f);
    }
    if let DbConnection::Sqlite(c) = conn {
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE").map_err(E::from)?;
    }
    let result = f(conn);
    let DbConnection::Sqlite(c) = conn else {
        unreachable!("the connection's backend does not change inside a transaction")
    };
    match result {
        Ok(value) => match AnsiTransactionManager::commit_transaction(c) {
            Ok(()) => Ok(value),
            Err(e) => {
                let _ = AnsiTransactionManager::rollback_transaction(c);
                Err(E::from(e))
            }
        },
        Err(e) => {
            // A failed rollback leaves the connection broken; r2d2 discards it.
            let _ = AnsiTransactionManager::rollback_transaction(c);
            Err(e)
        }
    }
}

/// Runs a diesel expression against the concrete backend connection, for the
/// few statements MultiBackend cannot express (upserts, row locks, `SKIP LOCKED`).
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Pg($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}
