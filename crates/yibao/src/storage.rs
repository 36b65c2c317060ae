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
