//! Opens the backend that the database URL's scheme names.

use std::sync::Arc;

use yibao_storage::{DatabaseUrl, Storage, StorageError};
use yibao_storage_postgres::PostgresStorage;
use yibao_storage_sqlite::SqliteStorage;

/// Connects and runs the backend's migrations.
pub async fn open_storage(url: &DatabaseUrl) -> Result<Arc<dyn Storage>, StorageError> {
    Ok(match url {
        DatabaseUrl::Sqlite(u) => Arc::new(SqliteStorage::connect(u).await?),
        DatabaseUrl::Postgres(u) => Arc::new(PostgresStorage::connect(u).await?),
    })
}

/// Connects as [`open_storage`] does, and with `replica` (a PostgreSQL streaming replica) sends
/// searches, lists, reports and dashboards to it while it lags at most `max_lag`.
pub async fn open_storage_with_replica(
    url: &DatabaseUrl,
    replica: Option<&DatabaseUrl>,
    max_lag: std::time::Duration,
) -> Result<Arc<dyn Storage>, StorageError> {
    match (url, replica) {
        (DatabaseUrl::Postgres(u), Some(DatabaseUrl::Postgres(r))) => Ok(Arc::new(
            PostgresStorage::connect_with_replica(
                u,
                Some(yibao_storage_postgres::ReplicaSettings { url: r, max_lag }),
            )
            .await?,
        )),
        (_, Some(_)) => Err(StorageError::Other(
            "只读副本只用于 PostgreSQL：database_url 和 read_database_url 都应是 postgres:// 地址"
                .into(),
        )),
        (_, None) => open_storage(url).await,
    }
}
