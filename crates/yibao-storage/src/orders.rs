//! Orders (订单): a channel holds payables while its payer pays; cancelled, expired or paid.
//! Written once for both backends over a [`Dialect`] (issue 13).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use yibao_domain::{OrderStatus, PayableStatus};

use crate::collection::{NewOrder, OrderOutcome, OrderRecord};
use crate::dialect::Dialect;
use crate::locate::region_of;
use crate::status_moves::{order, payable};
use crate::StorageError;

/// Orders that hold payables while a payer pays.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Opens an order and locks its payables until `expires_at`, atomically: all or none.
    async fn open_order(&self, order: &NewOrder) -> Result<OrderOutcome, StorageError>;

    /// Cancels an open order of this channel and releases its payables. Idempotent.
    async fn cancel_order(
        &self,
        channel_id: &str,
        order_no: &str,
    ) -> Result<Option<OrderRecord>, StorageError>;

    /// The order's payable ids, if the order belongs to the channel.
    async fn order_payables(
        &self,
        channel_id: &str,
        order_no: &str,
    ) -> Result<Option<Vec<String>>, StorageError>;

    /// Marks open orders past their hold time expired and releases their locks.
    async fn expire_orders(&self, now: i64) -> Result<u64, StorageError>;

    /// An order of this channel by its own number, with the fingerprint of the request that opened it.
    async fn find_order(
        &self,
        channel_id: &str,
        channel_order_no: &str,
    ) -> Result<Option<(OrderRecord, String)>, StorageError>;
}

#[async_trait]
impl<S> OrderStore for S
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
    async fn open_order(
        &self,
        order: &crate::collection::NewOrder,
    ) -> Result<crate::collection::OrderOutcome, crate::StorageError> {
        use crate::collection::{OrderOutcome, OrderRecord};
        use sqlx::Row as _;
        let mut tx = self.begin_write().await?;
        // Serialise requests with the same channel_order_no, then look for an earlier one.
        // The key's row (keyed by channel, whatever region) says where an earlier one went.
        let key = sqlx::query(
                    "INSERT INTO channel_keys (channel_id, key, touches) VALUES ($1, $2, 1) \
                     ON CONFLICT (channel_id, key) DO UPDATE SET touches = channel_keys.touches + 1 \
                     RETURNING region_code, target",
                )
                .bind(&order.channel_id)
                .bind(format!("order:{}", order.channel_order_no))
                .fetch_one(&mut *tx)
                .await?;
        let first: (Option<String>, Option<String>) =
            (key.try_get("region_code")?, key.try_get("target")?);
        let existing = match first {
                    (Some(region), Some(order_no)) => sqlx::query("SELECT order_no, fingerprint, response FROM orders WHERE region_code = $1 AND order_no = $2")
                        .bind(&region)
                        .bind(&order_no)
                        .fetch_optional(&mut *tx)
                        .await?,
                    _ => None,
                };
        if let Some(r) = existing {
            let fingerprint: String = r.try_get("fingerprint")?;
            let response: String = r.try_get("response")?;
            let stored: OrderRecord =
                serde_json::from_str(&response).map_err(crate::StorageError::corrupt)?;
            return Ok(OrderOutcome::Existing {
                order: stored,
                same_request: fingerprint == order.fingerprint,
            });
        }
        // Lock every payable or none: the update only takes payables that are free now. In payable
        // order, bytewise, as a payment and a debit run take theirs: two transactions never wait
        // for each other in a circle (PostgreSQL would fail one of them as a deadlock).
        let mut in_lock_order: Vec<&String> = order.payable_ids.iter().collect();
        in_lock_order.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for id in in_lock_order {
            let locked = sqlx::query(
                        &format!(
                        // Unpaid, or held by a hold that has run out (released and taken at once).
                        "UPDATE payables SET {lock}, locked_by = $1, locked_until = $2 \
                         WHERE region_code = $5 AND payable_id = $3 AND ({free} OR ({held} AND locked_until <= $4))",
                        lock = payable::LOCK.set(),
                        free = payable::LOCK.guard(),
                        held = payable::RELEASE.guard(),
                    ),
                    )
                    .bind(&order.order_no)
                    .bind(order.expires_at)
                    .bind(id)
                    .bind(order.now)
                    .bind(order.region.as_str())
                    .execute(&mut *tx)
                    .await?;
            if S::rows_affected(&locked) != 1 {
                let r = sqlx::query("SELECT status, locked_by FROM payables WHERE region_code = $2 AND payable_id = $1")
                            .bind(id)
                            .bind(order.region.as_str())
                            .fetch_optional(&mut *tx)
                            .await?;
                // Not in the order's region: an order holds payables of one region.
                let outcome = OrderOutcome::NotLockable {
                    payable_id: id.clone(),
                    status: r
                        .as_ref()
                        .map(|r| crate::rows::status_from_row(r, "status"))
                        .transpose()?
                        .unwrap_or(PayableStatus::Cancelled),
                    locked_by: r
                        .as_ref()
                        .map(|r| r.try_get("locked_by"))
                        .transpose()?
                        .flatten(),
                };
                tx.rollback().await?;
                return Ok(outcome);
            }
        }
        let record = OrderRecord {
            order_no: order.order_no.clone(),
            amount_fen: order.amount_fen,
            expires_at: order.expires_at,
            status: OrderStatus::Open,
            payable_ids: order.payable_ids.clone(),
        };
        let response = serde_json::to_string(&record).map_err(crate::StorageError::corrupt)?;
        sqlx::query(
                    "INSERT INTO orders (order_no, channel_id, channel_order_no, region_code, amount_fen, payer_name, payer_phone, \
                     status, expires_at, fingerprint, response, card_holder_id_number, card_terminal, agent_code) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $10, $11, $12, $13)",
                )
                .bind(&order.order_no)
                .bind(&order.channel_id)
                .bind(&order.channel_order_no)
                .bind(order.region.as_str())
                .bind(order.amount_fen.as_fen())
                .bind(&order.payer_name)
                .bind(&order.payer_phone)
                .bind(order.expires_at)
                .bind(&order.fingerprint)
                .bind(&response)
                .bind(order.card.map(|c| c.holder.as_str().to_owned()))
                .bind(order.card.map(|c| c.terminal.code()))
                .bind(order.agent_code.clone())
                .execute(&mut *tx)
                .await?;
        for id in &order.payable_ids {
            sqlx::query(
                "INSERT INTO order_items (order_no, payable_id, region_code) VALUES ($1, $2, $3)",
            )
            .bind(&order.order_no)
            .bind(id)
            .bind(order.region.as_str())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE channel_keys SET region_code = $1, target = $2 WHERE channel_id = $3 AND key = $4 AND target IS NULL")
                    .bind(order.region.as_str())
                    .bind(&order.order_no)
                    .bind(&order.channel_id)
                    .bind(format!("order:{}", order.channel_order_no))
                    .execute(&mut *tx)
                    .await?;
        tx.commit().await?;
        Ok(OrderOutcome::Created(record))
    }

    async fn cancel_order(
        &self,
        channel_id: &str,
        order_no: &str,
    ) -> Result<Option<crate::collection::OrderRecord>, crate::StorageError> {
        use sqlx::Row as _;
        let Some(region) = region_of(
            self.pool(),
            order_no,
            "SELECT region_code FROM orders WHERE order_no = $1",
        )
        .await?
        else {
            return Ok(None);
        };
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT response, status FROM orders WHERE region_code = $3 AND order_no = $1 AND channel_id = $2")
                    .bind(order_no)
                    .bind(channel_id)
                    .bind(&region)
                    .fetch_optional(&mut *tx)
                    .await?;
        let Some(r) = row else { return Ok(None) };
        let response: String = r.try_get("response")?;
        let mut record: crate::collection::OrderRecord =
            serde_json::from_str(&response).map_err(crate::StorageError::corrupt)?;
        let status: OrderStatus = crate::rows::status_from_row(&r, "status")?;
        if status == OrderStatus::Open {
            let cancelled = sqlx::query(&format!(
                "UPDATE orders SET {} WHERE region_code = $2 AND order_no = $1 AND {}",
                order::CANCEL.set(),
                order::CANCEL.guard()
            ))
            .bind(order_no)
            .bind(&region)
            .execute(&mut *tx)
            .await?;
            if S::rows_affected(&cancelled) != 1 {
                let now_status: String = sqlx::query_scalar(
                    "SELECT status FROM orders WHERE region_code = $2 AND order_no = $1",
                )
                .bind(order_no)
                .bind(&region)
                .fetch_one(&mut *tx)
                .await?;
                record.status = OrderStatus::from_code(&now_status)
                    .ok_or_else(|| StorageError::corrupt(format!("OrderStatus {now_status}")))?;
                tx.commit().await?;
                return Ok(Some(record));
            }
            sqlx::query(&format!(
                "UPDATE payables SET {}, locked_by = NULL, locked_until = NULL WHERE region_code = $2 AND {} AND locked_by = $1",
                payable::RELEASE.set(),
                payable::RELEASE.guard()
            ))
                        .bind(order_no)
                        .bind(&region)
                        .execute(&mut *tx)
                        .await?;
            record.status = OrderStatus::Cancelled;
        } else {
            record.status = status;
        }
        tx.commit().await?;
        Ok(Some(record))
    }

    async fn order_payables(
        &self,
        channel_id: &str,
        order_no: &str,
    ) -> Result<Option<Vec<String>>, crate::StorageError> {
        let Some(region) = region_of(
            self.pool(),
            order_no,
            "SELECT region_code FROM orders WHERE order_no = $1",
        )
        .await?
        else {
            return Ok(None);
        };
        let exists: Option<String> = sqlx::query_scalar("SELECT order_no FROM orders WHERE region_code = $3 AND order_no = $1 AND channel_id = $2")
                    .bind(order_no)
                    .bind(channel_id)
                    .bind(&region)
                    .fetch_optional(self.pool())
                    .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let ids: Vec<String> = sqlx::query_scalar("SELECT payable_id FROM order_items WHERE region_code = $2 AND order_no = $1 ORDER BY payable_id")
                    .bind(order_no)
                    .bind(&region)
                    .fetch_all(self.pool())
                    .await?;
        Ok(Some(ids))
    }

    async fn expire_orders(&self, now: i64) -> Result<u64, crate::StorageError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(&format!(
            "UPDATE orders SET {} WHERE {} AND expires_at <= $1",
            order::EXPIRE.set(),
            order::EXPIRE.guard()
        ))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE payables SET {}, locked_by = NULL, locked_until = NULL WHERE {} AND locked_until <= $1",
            payable::RELEASE.set(),
            payable::RELEASE.guard()
        ))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
        tx.commit().await?;
        Ok(S::rows_affected(&done))
    }

    async fn find_order(
        &self,
        channel_id: &str,
        channel_order_no: &str,
    ) -> Result<Option<(crate::collection::OrderRecord, String)>, crate::StorageError> {
        use sqlx::Row as _;
        let key: Option<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT region_code, target FROM channel_keys WHERE channel_id = $1 AND key = $2",
        )
        .bind(channel_id)
        .bind(format!("order:{channel_order_no}"))
        .fetch_optional(self.pool())
        .await?;
        let Some((Some(region), Some(order_no))) = key else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT fingerprint, response, status FROM orders WHERE region_code = $1 AND order_no = $2")
                    .bind(&region)
                    .bind(&order_no)
                    .fetch_optional(self.pool())
                    .await?;
        let Some(r) = row else { return Ok(None) };
        let response: String = r.try_get("response")?;
        let mut order: crate::collection::OrderRecord =
            serde_json::from_str(&response).map_err(crate::StorageError::corrupt)?;
        order.status = crate::rows::status_from_row(&r, "status")?;
        Ok(Some((order, r.try_get("fingerprint")?)))
    }
}
