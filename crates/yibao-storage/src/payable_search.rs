//! Searches: a person's payables as a channel sees them (查询), and payables by identifier,
//! written once for both backends over a [`Dialect`] (issue 13).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use std::collections::HashMap;

use yibao_domain::{IdNumber, RegionCode};

use crate::collection::PayableView;
use crate::cover_history::{read_stored_covers, StoredCover};
use crate::dialect::{Dialect, Statement};
use crate::locate::person_regions;
use crate::rows::{record, PAYABLE_VIEW_SELECT};
use crate::StorageError;

/// Payables as channels find them: by person, by identifier.
#[async_trait]
pub trait PayableSearch: Send + Sync {
    /// A person's current payables (not superseded or cancelled) by ID number, in the regions given.
    async fn payables_by_person(
        &self,
        id_number: &str,
        regions: &[String],
        fee_year: Option<i32>,
    ) -> Result<Vec<PayableView>, StorageError>;

    async fn payables_by_id(
        &self,
        payable_ids: &[String],
    ) -> Result<Vec<PayableView>, StorageError>;

    /// A channel's search (查询) on one connection: the person's regions among `regions`, their
    /// current payables there, and what is stored of them for the 2025 rules in each region
    /// where something is unpaid or held (three statements, one pool acquire and release instead
    /// of three).
    async fn search_person(
        &self,
        id_number: &IdNumber,
        regions: &[String],
        fee_year: Option<i32>,
    ) -> Result<FoundPayables, StorageError>;

    /// Several searches at once (channels' searches gathered, issue 14), each answered as
    /// [`PayableSearch::search_person`] answers it alone, in the order given. On one PostgreSQL
    /// or SQLite: one connection, one statement for the payables of them all and one per region
    /// for what is stored of their holders; where regions live on different nodes, each
    /// search's own statements on that connection.
    async fn search_persons(
        &self,
        searches: &[PersonQuery],
    ) -> Result<Vec<FoundPayables>, StorageError>;

    /// Whether [`PayableSearch::search_persons`] reads searches together (one PostgreSQL or
    /// SQLite), not one after another (a Citus cluster, where each search goes to its own
    /// shards and gathering would only queue them).
    async fn gathers_searches(&self) -> Result<bool, StorageError>;

    /// Payables by identifier, as [`PayableSearch::payables_by_id`], and what is stored of their
    /// holders for the 2025 rules in their regions (a payment report's reads before it is
    /// decided), on one connection: one statement per region for each.
    async fn payables_with_cover(
        &self,
        payable_ids: &[String],
    ) -> Result<FoundPayables, StorageError>;
}

/// One search of [`PayableSearch::search_persons`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonQuery {
    pub id_number: IdNumber,
    /// The regions searched (those the channel serves, or the one it named).
    pub regions: Vec<String>,
    pub fee_year: Option<i32>,
}

/// Searches gathered into one [`PayableSearch::search_persons`] at most.
pub const MAX_GATHERED_SEARCHES: usize = 200;

/// What [`PayableSearch::search_person`] and [`PayableSearch::payables_with_cover`] found.
#[derive(Debug, Default)]
pub struct FoundPayables {
    /// The payables: a search's current ones by fee year, region and bought-back year.
    pub views: Vec<PayableView>,
    /// What is stored of their holders where the 2025 rules are asked: for a search, in each
    /// region where a payable (not a back-payment) is unpaid or held; by identifier, in each
    /// region of a payable found.
    pub stored: HashMap<(RegionCode, IdNumber), StoredCover>,
}

#[async_trait]
impl<S> PayableSearch for S
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
    async fn payables_by_person(
        &self,
        id_number: &str,
        regions: &[String],
        fee_year: Option<i32>,
    ) -> Result<Vec<crate::collection::PayableView>, crate::StorageError> {
        let on_nodes = self.regions_on_nodes().await?;
        let mut conn = self.pool().acquire().await?;
        person_payables::<S>(&mut conn, on_nodes, id_number, regions, fee_year).await
    }

    async fn search_person(
        &self,
        id_number: &IdNumber,
        regions: &[String],
        fee_year: Option<i32>,
    ) -> Result<FoundPayables, StorageError> {
        let on_nodes = self.regions_on_nodes().await?;
        let mut conn = self.pool().acquire().await?;
        let views =
            person_payables::<S>(&mut conn, on_nodes, id_number.as_str(), regions, fee_year)
                .await?;
        let mut stored = HashMap::new();
        for region in cover_asked(&views) {
            for (id, cover) in
                read_stored_covers(&mut *conn, region, std::slice::from_ref(id_number)).await?
            {
                stored.insert((region, id), cover);
            }
        }
        Ok(FoundPayables { views, stored })
    }

    async fn gathers_searches(&self) -> Result<bool, StorageError> {
        Ok(!self.regions_on_nodes().await?)
    }

    async fn search_persons(
        &self,
        searches: &[PersonQuery],
    ) -> Result<Vec<FoundPayables>, StorageError> {
        if searches.len() > MAX_GATHERED_SEARCHES {
            return Err(StorageError::Other(
                "too many searches gathered in one read".into(),
            ));
        }
        let on_nodes = self.regions_on_nodes().await?;
        if searches.len() == 1 || on_nodes {
            let mut found = Vec::with_capacity(searches.len());
            for q in searches {
                found.push(
                    self.search_person(&q.id_number, &q.regions, q.fee_year)
                        .await?,
                );
            }
            return Ok(found);
        }
        let mut ids: Vec<String> = Vec::new();
        let mut regions: Vec<String> = Vec::new();
        for q in searches {
            if !ids.iter().any(|id| id == q.id_number.as_str()) {
                ids.push(q.id_number.as_str().to_owned());
            }
            for r in &q.regions {
                if !regions.contains(r) {
                    regions.push(r.clone());
                }
            }
        }
        if ids.is_empty() || regions.is_empty() {
            return Ok(searches.iter().map(|_| FoundPayables::default()).collect());
        }
        let mut conn = self.pool().acquire().await?;
        // Every search's current payables, in one statement, in the order one search gives.
        let mut q = Statement::<S::DB>::new(PAYABLE_VIEW_SELECT);
        q.push("WHERE y.id_number IN (");
        q.push_list(ids);
        q.push(") AND y.status NOT IN ('superseded', 'cancelled') AND y.region_code IN (");
        q.push_list(regions);
        q.push(") ORDER BY y.fee_year, y.region_code, COALESCE(y.buys_back_year, 0)");
        let (sql, args) = q.into_parts()?;
        let rows = sqlx::query_with(&sql, S::arguments(args))
            .fetch_all(&mut *conn)
            .await?;
        let all: Vec<PayableView> = rows
            .iter()
            .map(record::<PayableView, _>)
            .collect::<Result<_, _>>()?;
        let mut found: Vec<FoundPayables> = searches
            .iter()
            .map(|q| FoundPayables {
                views: all
                    .iter()
                    .filter(|v| {
                        let p = &v.payable;
                        p.id_number == q.id_number
                            && q.regions.iter().any(|r| r == p.region.as_str())
                            && q.fee_year.is_none_or(|y| i32::from(p.fee_year.get()) == y)
                    })
                    .cloned()
                    .collect(),
                stored: HashMap::new(),
            })
            .collect();
        // What is stored of them, one statement per region (and MAX_STORED_COVERS persons).
        let mut persons: std::collections::BTreeMap<RegionCode, Vec<IdNumber>> =
            std::collections::BTreeMap::new();
        for (q, f) in searches.iter().zip(&found) {
            for region in cover_asked(&f.views) {
                let ids = persons.entry(region).or_default();
                if !ids.contains(&q.id_number) {
                    ids.push(q.id_number);
                }
            }
        }
        let mut stored: HashMap<(RegionCode, IdNumber), StoredCover> = HashMap::new();
        for (region, ids) in persons {
            for chunk in ids.chunks(crate::cover_history::MAX_STORED_COVERS) {
                for (id, cover) in read_stored_covers(&mut *conn, region, chunk).await? {
                    stored.insert((region, id), cover);
                }
            }
        }
        for (q, f) in searches.iter().zip(found.iter_mut()) {
            for region in cover_asked(&f.views) {
                if let Some(cover) = stored.get(&(region, q.id_number)) {
                    f.stored.insert((region, q.id_number), cover.clone());
                }
            }
        }
        Ok(found)
    }

    async fn payables_by_id(
        &self,
        payable_ids: &[String],
    ) -> Result<Vec<crate::collection::PayableView>, crate::StorageError> {
        if payable_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool().acquire().await?;
        payables_by_id_on::<S>(&mut conn, payable_ids).await
    }

    async fn payables_with_cover(
        &self,
        payable_ids: &[String],
    ) -> Result<FoundPayables, StorageError> {
        if payable_ids.is_empty() {
            return Ok(FoundPayables::default());
        }
        let mut conn = self.pool().acquire().await?;
        let views = payables_by_id_on::<S>(&mut conn, payable_ids).await?;
        let mut persons: std::collections::BTreeMap<RegionCode, Vec<IdNumber>> =
            std::collections::BTreeMap::new();
        for v in &views {
            let ids = persons.entry(v.payable.region).or_default();
            if !ids.contains(&v.payable.id_number) {
                ids.push(v.payable.id_number);
            }
        }
        let mut stored = HashMap::new();
        for (region, ids) in persons {
            for chunk in ids.chunks(crate::cover_history::MAX_STORED_COVERS) {
                for (id, cover) in read_stored_covers(&mut *conn, region, chunk).await? {
                    stored.insert((region, id), cover);
                }
            }
        }
        Ok(FoundPayables { views, stored })
    }
}

/// The regions where a search asks what is stored of the person for the 2025 rules: those where
/// a payable (not a back-payment) is unpaid or held.
fn cover_asked(views: &[PayableView]) -> Vec<RegionCode> {
    let mut asked: Vec<RegionCode> = Vec::new();
    for v in views {
        let p = &v.payable;
        let open = matches!(
            p.status,
            yibao_domain::PayableStatus::Unpaid | yibao_domain::PayableStatus::Locked
        );
        if open && p.buys_back_year.is_none() && !asked.contains(&p.region) {
            asked.push(p.region);
        }
    }
    asked
}

/// Payables by identifier on one connection.
async fn payables_by_id_on<S>(
    conn: &mut sqlx::pool::PoolConnection<S::DB>,
    payable_ids: &[String],
) -> Result<Vec<PayableView>, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i32: Decode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Decode<'q, S::DB> + Type<S::DB>,
    for<'q> bool: Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Decode<'q, S::DB> + Type<S::DB>,
    for<'a> &'a str: ColumnIndex<<S::DB as Database>::Row>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    // One statement per region the identifiers carry (one shard each); identifiers issued
    // before they carried a region, in one statement over all shards.
    let mut by_region: std::collections::BTreeMap<Option<&str>, Vec<&String>> =
        std::collections::BTreeMap::new();
    for id in payable_ids {
        by_region
            .entry(crate::regional_id::region_in_id(id))
            .or_default()
            .push(id);
    }
    let mut views = Vec::with_capacity(payable_ids.len());
    for (region, ids) in by_region {
        let mut q = Statement::<S::DB>::new(PAYABLE_VIEW_SELECT);
        q.push("WHERE ");
        if let Some(region) = region {
            q.push("y.region_code = ")
                .push_bind(region.to_owned())
                .push(" AND ");
        }
        q.push("y.payable_id IN (");
        q.push_list(ids.into_iter().cloned());
        // In one order whatever else a gathered read asks (a payment's region is its first
        // payable's).
        q.push(") ORDER BY y.region_code, y.payable_id");
        let (sql, args) = q.into_parts()?;
        for r in sqlx::query_with(&sql, S::arguments(args))
            .fetch_all(&mut **conn)
            .await?
        {
            views.push(record::<PayableView, _>(&r)?);
        }
    }
    Ok(views)
}

/// A person's current payables in `regions`, on one connection: one statement, or two where
/// regions live `on_nodes` (the person directory first, so that only their regions' shards are
/// read).
async fn person_payables<S>(
    conn: &mut sqlx::pool::PoolConnection<S::DB>,
    on_nodes: bool,
    id_number: &str,
    regions: &[String],
    fee_year: Option<i32>,
) -> Result<Vec<PayableView>, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> &'q str: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i32: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Decode<'q, S::DB> + Type<S::DB>,
    for<'q> bool: Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Decode<'q, S::DB> + Type<S::DB>,
    for<'a> &'a str: ColumnIndex<<S::DB as Database>::Row>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let regions = if on_nodes {
        person_regions(&mut **conn, id_number, regions).await?
    } else {
        regions.to_vec()
    };
    if regions.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = Statement::<S::DB>::new(PAYABLE_VIEW_SELECT);
    q.push("WHERE y.id_number = ")
        .push_bind(id_number.to_owned());
    q.push(" AND y.status NOT IN ('superseded', 'cancelled') AND y.region_code IN (");
    q.push_list(regions);
    q.push(")");
    if let Some(year) = fee_year {
        q.push(" AND y.fee_year = ").push_bind(year);
    }
    q.push(" ORDER BY y.fee_year, y.region_code, COALESCE(y.buys_back_year, 0)");
    let (sql, args) = q.into_parts()?;
    let rows = sqlx::query_with(&sql, S::arguments(args))
        .fetch_all(&mut **conn)
        .await?;
    rows.iter().map(record::<PayableView, _>).collect()
}
