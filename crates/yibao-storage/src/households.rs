//! Households (户, issue 17): memberships written with the persons of a roster batch or on
//! their own from the console, and read back as a person's or a household's history. What a
//! placement changes is decided by [`yibao_domain::household::plan_placements`]; the two rules
//! (one current household per person, one current head per household) are the partial unique
//! indexes of `household_members`.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row as _, Type};
use yibao_domain::household::{plan_placements, HouseholdNumber, Membership, Placement, Relation};
use yibao_domain::{IdNumber, RegionCode};

use crate::dialect::{Dialect, Statement};
use crate::records::ChangeSource;
use crate::{ConstraintKind, StorageError};

/// Most membership rows a household's or a person's history lists.
pub const MAX_MEMBERSHIPS_SHOWN: i64 = 200;

/// One membership as stored: current while `left_at_ms` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRecord {
    pub id_number: IdNumber,
    /// The person's name as on record in the region (read with the membership); `None` for a
    /// record gone since (a move to another region).
    pub name: Option<yibao_domain::PersonName>,
    /// The person's service station (服务站) as on record, read with the membership.
    pub station_code: Option<String>,
    pub number: HouseholdNumber,
    pub relation: Option<Relation>,
    /// Unix milliseconds.
    pub joined_at_ms: i64,
    pub joined_by: String,
    /// What made it: `roster:<file>`, `console`.
    pub joined_source: String,
    pub left_at_ms: Option<i64>,
    pub left_by: Option<String>,
}

impl MembershipRecord {
    pub fn is_current(&self) -> bool {
        self.left_at_ms.is_none()
    }

    pub fn is_head(&self) -> bool {
        self.is_current() && self.relation.as_ref().is_some_and(Relation::is_head)
    }
}

/// Writes `placements` of one region (in order; `None` leaves the household) inside `tx`: reads
/// the current memberships of the persons and of the heads of the households named (one
/// statement), then ends and begins what changed (one statement each). Returns how many persons'
/// memberships changed.
pub(crate) async fn write_placements<S>(
    tx: &mut sqlx::Transaction<'static, S::DB>,
    region: RegionCode,
    placements: &[(IdNumber, Option<Placement>)],
    source: &ChangeSource,
    may_change: crate::MayChange<'_>,
) -> Result<Written, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> Option<String>: Encode<'q, S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> bool: Encode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    if placements.is_empty() {
        return Ok(Written::default());
    }
    let ids: Vec<String> = placements
        .iter()
        .map(|(id, _)| id.as_str().to_owned())
        .collect();
    let mut heads: Vec<String> = placements
        .iter()
        .filter_map(|(_, p)| p.as_ref().filter(|p| p.is_head()))
        .map(|p| p.number.as_str().to_owned())
        .collect();
    heads.sort_unstable();
    heads.dedup();
    let mut q = Statement::<S::DB>::new(
        "SELECT m.id_number, m.household_number, m.relation, p.station_code \
         FROM household_members m LEFT JOIN persons p \
         ON p.region_code = m.region_code AND p.id_number = m.id_number \
         WHERE m.left_at IS NULL AND m.region_code = ",
    );
    q.push_bind(region.as_str().to_owned());
    q.push(" AND (m.id_number");
    S::push_id_list(&mut q, &ids);
    if !heads.is_empty() {
        q.push(" OR (m.is_head AND m.household_number");
        S::push_id_list(&mut q, &heads);
        q.push(")");
    }
    q.push(")");
    let (sql, args) = q.into_parts()?;
    let rows = sqlx::query_with(&sql, S::arguments(args))
        .fetch_all(&mut **tx)
        .await?;
    let mut stations: Vec<(IdNumber, Option<yibao_domain::StationCode>)> = Vec::new();
    let current = rows
        .iter()
        .map(|r| {
            let id =
                IdNumber::try_from(r.try_get::<String, _>(0)?).map_err(StorageError::corrupt)?;
            let station = r
                .try_get::<Option<String>, _>(3)?
                .map(|s| yibao_domain::StationCode::parse(&s).map_err(StorageError::corrupt))
                .transpose()?;
            stations.push((id, station));
            Ok(Membership {
                id_number: IdNumber::try_from(r.try_get::<String, _>(0)?)
                    .map_err(StorageError::corrupt)?,
                number: HouseholdNumber::parse(&r.try_get::<String, _>(1)?)
                    .map_err(StorageError::corrupt)?,
                relation: r
                    .try_get::<Option<String>, _>(2)?
                    .map(|t| Relation::parse(&t).map_err(StorageError::corrupt))
                    .transpose()?,
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    // A new head would end the current head's membership: refused (the placement left out) when
    // that head is at a station the caller may not change.
    let placed: Vec<&IdNumber> = placements.iter().map(|(id, _)| id).collect();
    let mut refused: Vec<IdNumber> = Vec::new();
    let allowed: Vec<(IdNumber, Option<Placement>)> = placements
        .iter()
        .filter(|(id, placement)| {
            let Some(placement) = placement.as_ref().filter(|p| p.is_head()) else {
                return true;
            };
            let head_elsewhere = current.iter().any(|m| {
                m.id_number != *id
                    && !placed.contains(&&m.id_number)
                    && m.number == placement.number
                    && m.relation.as_ref().is_some_and(Relation::is_head)
                    && !may_change(
                        region,
                        stations
                            .iter()
                            .find(|(s, _)| *s == m.id_number)
                            .and_then(|(_, st)| st.as_ref()),
                    )
            });
            if head_elsewhere {
                refused.push(*id);
            }
            !head_elsewhere
        })
        .cloned()
        .collect();
    let changes = plan_placements(&allowed, &current);
    if changes.is_empty() {
        return Ok(Written {
            changed: Vec::new(),
            refused,
        });
    }
    let now = chrono::Utc::now().timestamp_millis();
    if !changes.end.is_empty() {
        let ended: Vec<String> = changes
            .end
            .iter()
            .map(|id| id.as_str().to_owned())
            .collect();
        // Never before it began: a concurrent transaction's clock may have read a little later.
        let mut q = Statement::<S::DB>::new(
            "UPDATE household_members SET left_at = CASE WHEN joined_at > ",
        );
        q.push_bind(now)
            .push(" THEN joined_at ELSE ")
            .push_bind(now)
            .push(" END, left_by = ")
            .push_bind(source.actor.clone())
            .push(" WHERE left_at IS NULL AND region_code = ")
            .push_bind(region.as_str().to_owned())
            .push(" AND id_number");
        S::push_id_list(&mut q, &ended);
        let (sql, args) = q.into_parts()?;
        sqlx::query_with(&sql, S::arguments(args))
            .execute(&mut **tx)
            .await?;
    }
    if !changes.begin.is_empty() {
        let mut q = Statement::<S::DB>::new(
            "INSERT INTO household_members (region_code, household_number, id_number, relation, \
             is_head, joined_at, joined_by, joined_source)",
        );
        q.push_values(changes.begin.iter(), |row, m| {
            row.push_bind(region.as_str().to_owned())
                .push_bind(m.number.as_str().to_owned())
                .push_bind(m.id_number.as_str().to_owned())
                .push_bind(m.relation.as_ref().map(|r| r.as_str().to_owned()))
                .push_bind(m.relation.as_ref().is_some_and(Relation::is_head))
                .push_bind(now)
                .push_bind(source.actor.clone())
                .push_bind(source.source.clone());
        });
        let (sql, args) = q.into_parts()?;
        sqlx::query_with(&sql, S::arguments(args))
            .execute(&mut **tx)
            .await?;
    }
    let mut changed: Vec<IdNumber> = changes
        .end
        .iter()
        .copied()
        .chain(changes.begin.iter().map(|m| m.id_number))
        .collect();
    changed.sort_unstable();
    changed.dedup();
    Ok(Written { changed, refused })
}

/// What [`write_placements`] did: whose memberships changed (a demoted head among them), and
/// whose placement was refused (it would have ended the membership of a head out of the caller's
/// scope).
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub changed: Vec<IdNumber>,
    pub refused: Vec<IdNumber>,
}

/// What a placement on its own did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceOutcome {
    /// Written; the persons whose memberships changed (a head replaced among them), none when
    /// it was as asked already.
    Placed { changed: Vec<IdNumber> },
    /// Refused whole: making the person head would end the membership of a head at a station
    /// `may_change` refuses.
    HeadOutOfScope,
}

/// One person's placement on its own (the console), in one transaction, with the caller's scope
/// checked there on the current head it would replace; a concurrent change of the same person or
/// head (a unique index refusing this one) is tried again, up to ten times, so the later change
/// wins as it would have one after the other.
pub(crate) async fn place<S>(
    storage: &S,
    region: RegionCode,
    id_number: &IdNumber,
    placement: Option<Placement>,
    source: &ChangeSource,
    may_change: crate::MayChange<'_>,
) -> Result<PlaceOutcome, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> Option<String>: Encode<'q, S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> bool: Encode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let placements = [(*id_number, placement)];
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = storage.begin_write().await?;
        let written = write_placements::<S>(&mut tx, region, &placements, source, may_change).await;
        let result = match written {
            Ok(written) if !written.refused.is_empty() => {
                return Ok(PlaceOutcome::HeadOutOfScope);
            }
            Ok(written) => tx
                .commit()
                .await
                .map(|()| written.changed)
                .map_err(StorageError::from),
            Err(e) => Err(e),
        };
        match result {
            Err(StorageError::Constraint {
                kind: ConstraintKind::Unique,
                ..
            }) if attempt < 10 => continue,
            other => return other.map(|changed| PlaceOutcome::Placed { changed }),
        }
    }
}

/// A person's memberships in a region, or a household's: the current ones first, then the ended
/// ones newest first, at most [`MAX_MEMBERSHIPS_SHOWN`] (so the current ones are always read).
pub(crate) async fn memberships<S>(
    storage: &S,
    region: RegionCode,
    key: MembershipsOf<'_>,
) -> Result<Vec<MembershipRecord>, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> Option<String>: Encode<'q, S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let (column, value) = match key {
        MembershipsOf::Person(id) => ("m.id_number", id.as_str().to_owned()),
        MembershipsOf::Household(number) => ("m.household_number", number.as_str().to_owned()),
    };
    // The person's row is of the same region (colocated on a Citus cluster).
    let sql = format!(
        "SELECT m.id_number, m.household_number, m.relation, m.joined_at, m.joined_by, \
         m.joined_source, m.left_at, m.left_by, p.name, p.station_code FROM household_members m \
         LEFT JOIN persons p ON p.region_code = m.region_code AND p.id_number = m.id_number \
         WHERE m.region_code = $1 AND {column} = $2 \
         ORDER BY CASE WHEN m.left_at IS NULL THEN 0 ELSE 1 END, m.joined_at DESC, \
         m.left_at DESC, m.id_number \
         LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(region.as_str().to_owned())
        .bind(value)
        .bind(MAX_MEMBERSHIPS_SHOWN)
        .fetch_all(storage.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(MembershipRecord {
                id_number: IdNumber::try_from(r.try_get::<String, _>(0)?)
                    .map_err(StorageError::corrupt)?,
                number: HouseholdNumber::parse(&r.try_get::<String, _>(1)?)
                    .map_err(StorageError::corrupt)?,
                relation: r
                    .try_get::<Option<String>, _>(2)?
                    .map(|t| Relation::parse(&t).map_err(StorageError::corrupt))
                    .transpose()?,
                joined_at_ms: r.try_get(3)?,
                joined_by: r.try_get(4)?,
                joined_source: r.try_get(5)?,
                left_at_ms: r.try_get(6)?,
                left_by: r.try_get(7)?,
                name: r
                    .try_get::<Option<String>, _>(8)?
                    .map(|n| yibao_domain::PersonName::parse(&n).map_err(StorageError::corrupt))
                    .transpose()?,
                station_code: r.try_get(9)?,
            })
        })
        .collect()
}

/// The current members of the household `person` is in now in `region` (themselves included),
/// in one statement; empty when they are in none.
pub(crate) async fn current_household<S>(
    storage: &S,
    region: RegionCode,
    person: &IdNumber,
) -> Result<Vec<IdNumber>, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT m.id_number FROM household_members h JOIN household_members m \
         ON m.region_code = h.region_code AND m.household_number = h.household_number \
         AND m.left_at IS NULL \
         WHERE h.region_code = $1 AND h.id_number = $2 AND h.left_at IS NULL",
    )
    .bind(region.as_str().to_owned())
    .bind(person.as_str().to_owned())
    .fetch_all(storage.pool())
    .await?;
    rows.into_iter()
        .map(|id| IdNumber::try_from(id).map_err(StorageError::corrupt))
        .collect()
}

/// Whose memberships `memberships` reads.
#[derive(Debug, Clone, Copy)]
pub enum MembershipsOf<'a> {
    Person(&'a IdNumber),
    Household(&'a HouseholdNumber),
}
