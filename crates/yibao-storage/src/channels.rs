//! Channels (渠道), their regions and sealed secrets, and the nonces of their signed requests,
//! written once for both backends over a [`Dialect`] (issue 13).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::collection::{ChannelRecord, ChannelRow};
use crate::dialect::{Dialect, Statement};
use crate::rows::record;
use crate::StorageError;

/// Channels, their regions and secrets, and the nonces they have used.
#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Registers a channel with its regions, in one transaction.
    async fn create_channel(&self, channel: &ChannelRecord) -> Result<(), StorageError>;

    async fn get_channel(&self, channel_id: &str) -> Result<Option<ChannelRecord>, StorageError>;

    /// Every channel, by id (the secrets stay sealed).
    async fn list_channels(&self) -> Result<Vec<ChannelRecord>, StorageError>;

    /// Sets a channel's rate and the regions it serves (replacing them); `false` when there is no
    /// such channel.
    async fn update_channel(
        &self,
        channel_id: &str,
        rate_per_second: i64,
        regions: &[String],
    ) -> Result<bool, StorageError>;

    /// Enables or disables a channel; `false` when there is no such channel.
    async fn set_channel_enabled(
        &self,
        channel_id: &str,
        enabled: bool,
    ) -> Result<bool, StorageError>;

    /// Replaces a channel's secret; the current one stays accepted until `previous_until` (Unix
    /// seconds; at most [`crate::collection::MAX_SECRET_GRACE_SECONDS`] ahead, or now for no grace). `false` when
    /// there is no such channel.
    async fn rotate_channel_secret(
        &self,
        channel_id: &str,
        new_secret_sealed: &str,
        previous_until: i64,
    ) -> Result<bool, StorageError>;

    /// Records a nonce; `false` when the channel used it before (a replay).
    async fn remember_nonce(
        &self,
        channel_id: &str,
        nonce: &str,
        now: i64,
    ) -> Result<bool, StorageError>;

    /// Records several nonces of one channel in one statement and one commit (the server's nonce
    /// writer gathers the requests that arrive together); for each, `false` when the channel used
    /// it before, earlier in the same list included. At most [`crate::collection::MAX_NONCE_BATCH`].
    async fn remember_nonces(
        &self,
        channel_id: &str,
        nonces: &[String],
        now: i64,
    ) -> Result<Vec<bool>, StorageError>;

    /// Forgets nonces seen before `before`. Returns how many.
    async fn sweep_nonces(&self, before: i64) -> Result<u64, StorageError>;
}

#[async_trait]
impl<S> ChannelStore for S
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> &'q str: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> Option<&'q str>: Encode<'q, S::DB>,
    for<'q> Option<String>: Encode<'q, S::DB>,
    for<'q> Option<i64>: Encode<'q, S::DB>,
    for<'q> Option<i32>: Encode<'q, S::DB>,
    for<'q> Option<NaiveDate>: Encode<'q, S::DB>,
    for<'q> bool: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i32: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'a> &'a str: ColumnIndex<<S::DB as Database>::Row>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    async fn create_channel(
        &self,
        channel: &crate::collection::ChannelRecord,
    ) -> Result<(), crate::StorageError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO channels (channel_id, kind, secret_sealed, rate_per_second, enabled, test_mode) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(&channel.channel_id)
                    .bind(&channel.kind)
                    .bind(&channel.secret_sealed)
                    .bind(channel.rate_per_second)
                    .bind(channel.enabled)
                    .bind(channel.test_mode)
                    .execute(&mut *tx)
                    .await?;
        for region in &channel.regions {
            sqlx::query(
                "INSERT INTO channel_regions (channel_id, region_code, test_mode) VALUES ($1, $2, $3)",
            )
            .bind(&channel.channel_id)
            .bind(region)
            .bind(channel.test_mode)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.channel_cache().forget(&channel.channel_id);
        Ok(())
    }

    async fn get_channel(
        &self,
        channel_id: &str,
    ) -> Result<Option<crate::collection::ChannelRecord>, crate::StorageError> {
        // Every channel request reads its channel: from memory while fresh (channel_cache).
        let generation = match self.channel_cache().lookup(channel_id) {
            crate::memo::Lookup::Known(record) => return Ok(record),
            crate::memo::Lookup::Unknown(generation) => generation,
        };
        let row = sqlx::query("SELECT channel_id, kind, secret_sealed, CAST(rate_per_second AS BIGINT) AS rate, enabled, \
                                         previous_secret_sealed, CAST(previous_secret_until AS BIGINT) AS previous_until, test_mode \
                                         FROM channels WHERE channel_id = $1")
                    .bind(channel_id)
                    .fetch_optional(self.pool())
                    .await?;
        let record = match row {
            None => None,
            Some(r) => {
                let regions: Vec<String> = sqlx::query_scalar("SELECT region_code FROM channel_regions WHERE channel_id = $1 ORDER BY region_code")
                            .bind(channel_id)
                            .fetch_all(self.pool())
                            .await?;
                Some(record::<ChannelRow, _>(&r)?.with_regions(regions))
            }
        };
        self.channel_cache()
            .store(channel_id.to_owned(), record.clone(), generation);
        Ok(record)
    }

    async fn list_channels(
        &self,
    ) -> Result<Vec<crate::collection::ChannelRecord>, crate::StorageError> {
        use sqlx::Row as _;
        let rows = sqlx::query("SELECT channel_id, kind, secret_sealed, CAST(rate_per_second AS BIGINT) AS rate, enabled, \
                                          previous_secret_sealed, CAST(previous_secret_until AS BIGINT) AS previous_until, test_mode \
                                          FROM channels ORDER BY channel_id")
                    .fetch_all(self.pool())
                    .await?;
        let region_rows = sqlx::query(
            "SELECT channel_id, region_code FROM channel_regions ORDER BY channel_id, region_code",
        )
        .fetch_all(self.pool())
        .await?;
        let mut regions: std::collections::BTreeMap<String, Vec<String>> =
            std::collections::BTreeMap::new();
        for r in &region_rows {
            regions
                .entry(r.try_get("channel_id")?)
                .or_default()
                .push(r.try_get("region_code")?);
        }
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("channel_id")?;
                record::<ChannelRow, _>(r)
                    .map(|c| c.with_regions(regions.remove(&id).unwrap_or_default()))
            })
            .collect()
    }

    async fn update_channel(
        &self,
        channel_id: &str,
        rate_per_second: i64,
        regions: &[String],
    ) -> Result<bool, crate::StorageError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE channels SET rate_per_second = $1 WHERE channel_id = $2")
            .bind(rate_per_second)
            .bind(channel_id)
            .execute(&mut *tx)
            .await?;
        if S::rows_affected(&done) != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM channel_regions WHERE channel_id = $1")
            .bind(channel_id)
            .execute(&mut *tx)
            .await?;
        for region in regions {
            // The channel's own mode: the foreign keys refuse a sandbox region for a channel in
            // production and any other region for a test channel.
            sqlx::query(
                "INSERT INTO channel_regions (channel_id, region_code, test_mode) \
                 SELECT channel_id, $2, test_mode FROM channels WHERE channel_id = $1",
            )
            .bind(channel_id)
            .bind(region)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.channel_cache().forget(channel_id);
        Ok(true)
    }

    async fn set_channel_enabled(
        &self,
        channel_id: &str,
        enabled: bool,
    ) -> Result<bool, crate::StorageError> {
        let done = sqlx::query("UPDATE channels SET enabled = $1 WHERE channel_id = $2")
            .bind(enabled)
            .bind(channel_id)
            .execute(self.pool())
            .await?;
        self.channel_cache().forget(channel_id);
        Ok(S::rows_affected(&done) == 1)
    }

    async fn rotate_channel_secret(
        &self,
        channel_id: &str,
        new_secret_sealed: &str,
        previous_until: i64,
    ) -> Result<bool, crate::StorageError> {
        // One statement: the current secret becomes the previous one as it is replaced.
        let done = sqlx::query("UPDATE channels SET previous_secret_sealed = secret_sealed, previous_secret_until = $1, \
                                          secret_sealed = $2 WHERE channel_id = $3")
                    .bind(previous_until)
                    .bind(new_secret_sealed)
                    .bind(channel_id)
                    .execute(self.pool())
                    .await?;
        self.channel_cache().forget(channel_id);
        Ok(S::rows_affected(&done) == 1)
    }

    async fn remember_nonce(
        &self,
        channel_id: &str,
        nonce: &str,
        now: i64,
    ) -> Result<bool, crate::StorageError> {
        let done = sqlx::query("INSERT INTO channel_nonces (channel_id, nonce, seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(channel_id)
                    .bind(nonce)
                    .bind(now)
                    .execute(self.pool())
                    .await?;
        Ok(S::rows_affected(&done) == 1)
    }

    async fn remember_nonces(
        &self,
        channel_id: &str,
        nonces: &[String],
        now: i64,
    ) -> Result<Vec<bool>, crate::StorageError> {
        let nonces: Vec<(&str, &str)> = nonces.iter().map(|n| (channel_id, n.as_str())).collect();
        let mut conn = self.pool().acquire().await?;
        insert_nonces::<S>(&mut conn, &nonces, now).await
    }

    async fn sweep_nonces(&self, before: i64) -> Result<u64, crate::StorageError> {
        let done = sqlx::query("DELETE FROM channel_nonces WHERE seen_at < $1")
            .bind(before)
            .execute(self.pool())
            .await?;
        Ok(S::rows_affected(&done))
    }
}

/// Removes nonces this transaction recorded (`insert_nonces`) for requests it then failed: one
/// statement each, on the rare path where a report fails on its own.
pub(crate) async fn forget_nonces<S>(
    conn: &mut <S::DB as Database>::Connection,
    nonces: &[(&str, &str)],
) -> Result<(), StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Type<S::DB>,
{
    for (channel_id, nonce) in nonces {
        let mut q = Statement::<S::DB>::new("DELETE FROM channel_nonces WHERE channel_id = ");
        q.push_bind((*channel_id).to_owned())
            .push(" AND nonce = ")
            .push_bind((*nonce).to_owned());
        let (sql, args) = q.into_parts()?;
        sqlx::query_with(&sql, S::arguments(args))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Records nonces, each a channel's, in one statement on `conn` (a pooled connection, or a
/// payment writer's transaction: [`crate::payments::PaymentStore::report_payments`]); for each,
/// `false` when its channel used it before, earlier in the same list included. Sent in order, so
/// that two writers recording the same nonces wait for each other instead of deadlocking. At most
/// [`crate::collection::MAX_NONCE_BATCH`].
pub(crate) async fn insert_nonces<S>(
    conn: &mut <S::DB as Database>::Connection,
    nonces: &[(&str, &str)],
    now: i64,
) -> Result<Vec<bool>, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Type<S::DB>,
    for<'a> &'a str: ColumnIndex<<S::DB as Database>::Row>,
{
    use sqlx::Row as _;
    if nonces.len() > crate::collection::MAX_NONCE_BATCH {
        return Err(StorageError::Other(format!(
            "一次最多记录 {} 个 Nonce",
            crate::collection::MAX_NONCE_BATCH
        )));
    }
    // A nonce twice in the list is a replay the second time: only first ones are sent.
    let mut first: std::collections::HashSet<(&str, &str)> =
        std::collections::HashSet::with_capacity(nonces.len());
    let firsts: Vec<bool> = nonces.iter().map(|n| first.insert(*n)).collect();
    if first.is_empty() {
        return Ok(Vec::new());
    }
    let mut sent: Vec<(&str, &str)> = first.into_iter().collect();
    sent.sort_unstable();
    let mut q = Statement::<S::DB>::new("INSERT INTO channel_nonces (channel_id, nonce, seen_at) ");
    q.push_values(&sent, |row, (channel_id, nonce)| {
        row.push_bind((*channel_id).to_owned())
            .push_bind((*nonce).to_owned())
            .push_bind(now);
    });
    q.push(" ON CONFLICT DO NOTHING RETURNING channel_id, nonce");
    let (sql, args) = q.into_parts()?;
    let mut inserted = std::collections::HashSet::new();
    for row in sqlx::query_with(&sql, S::arguments(args))
        .fetch_all(&mut *conn)
        .await?
    {
        inserted.insert((
            row.try_get::<String, _>("channel_id")?,
            row.try_get::<String, _>("nonce")?,
        ));
    }
    Ok(nonces
        .iter()
        .zip(firsts)
        .map(|((channel_id, nonce), first)| {
            first && inserted.contains(&((*channel_id).to_owned(), (*nonce).to_owned()))
        })
        .collect())
}
