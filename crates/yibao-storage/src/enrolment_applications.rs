//! 参保登记 submitted online (issue 11): a signed-in resident's application for a first enrolment
//! or a newborn's, and the service station's queue that approves or refuses it. Written once for
//! both backends as generic code over sqlx; [`crate::Storage::enrolment_applications`] hands out
//! the pool as an [`EnrolmentApplications`].

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};

use yibao_domain::{IdNumber, RegionCode};

use crate::StorageError;

/// Most applications a list reads.
pub const MAX_APPLICATIONS_LISTED: i64 = 200;

/// An application as submitted and, once decided, as decided.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EnrolmentApplication {
    #[sqlx(rename = "region_code", try_from = "String")]
    pub region: RegionCode,
    pub application_no: String,
    /// `first` (首次参保) or `newborn` (新生儿).
    pub kind: String,
    #[sqlx(try_from = "String")]
    pub id_number: IdNumber,
    pub name: String,
    /// `local_registration` or `residence_permit`.
    pub household: String,
    pub permit_since: Option<NaiveDate>,
    #[sqlx(rename = "station_code")]
    pub station: String,
    pub phone: Option<String>,
    pub guardian_id_number: Option<String>,
    pub guardian_name: Option<String>,
    /// The ID number of the resident who submitted it (their own, or a parent's for a newborn).
    pub submitted_by: String,
    pub submitted_at: i64,
    /// `submitted`, `approved` or `refused`.
    #[sqlx(try_from = "String")]
    pub status: yibao_domain::ApplicationStatus,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub reason: Option<String>,
}

impl std::fmt::Debug for EnrolmentApplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolmentApplication")
            .field("region", &self.region)
            .field("application_no", &self.application_no)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Which applications a queue lists.
#[derive(Debug, Clone, Copy)]
pub struct ApplicationQuery<'a> {
    /// `None`: every region (the administrator).
    pub region: Option<&'a str>,
    /// `None`: every station of the region.
    pub station: Option<&'a str>,
    pub status: &'a str,
    pub limit: i64,
}

#[async_trait]
pub trait EnrolmentApplications: Send + Sync {
    /// Stores a new application; `false` when the person already has an open one in the region
    /// (the database's unique index decides).
    async fn submit_application(&self, a: &EnrolmentApplication) -> Result<bool, StorageError>;
    /// The applications a resident submitted, newest first.
    async fn applications_submitted_by(
        &self,
        submitted_by: &str,
    ) -> Result<Vec<EnrolmentApplication>, StorageError>;
    /// A station's (or a region's, or every) queue, oldest first.
    async fn applications(
        &self,
        query: &ApplicationQuery<'_>,
    ) -> Result<Vec<EnrolmentApplication>, StorageError>;
    async fn application(
        &self,
        region: &str,
        application_no: &str,
    ) -> Result<Option<EnrolmentApplication>, StorageError>;
    /// Decides an open application (`approved`, or `refused` with the reason); `false` when it
    /// was decided already.
    async fn decide_application(
        &self,
        region: &str,
        application_no: &str,
        status: &str,
        reason: Option<&str>,
        decided_by: &str,
        now: i64,
    ) -> Result<bool, StorageError>;
    /// Puts an application approved a moment ago back in the queue: the registration its
    /// approval started failed (the approval is claimed first, so that two staff cannot both
    /// decide it).
    async fn reopen_application(
        &self,
        region: &str,
        application_no: &str,
    ) -> Result<(), StorageError>;
    /// The service stations of a region (those its persons are registered at), for the form.
    async fn stations_of(&self, region: &str) -> Result<Vec<String>, StorageError>;
}

const COLUMNS: &str =
    "region_code, application_no, kind, id_number, name, household, permit_since, \
     station_code, phone, guardian_id_number, guardian_name, submitted_by, submitted_at, status, \
     decided_by, decided_at, reason";

#[async_trait]
impl<DB> EnrolmentApplications for Pool<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<NaiveDate>: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'r> NaiveDate: Decode<'r, DB> + Type<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn submit_application(&self, a: &EnrolmentApplication) -> Result<bool, StorageError> {
        let stored: Option<(String,)> = sqlx::query_as(
            "INSERT INTO enrolment_applications (region_code, application_no, kind, id_number, name, \
             household, permit_since, station_code, phone, guardian_id_number, guardian_name, \
             submitted_by, submitted_at, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'submitted') \
             ON CONFLICT DO NOTHING RETURNING application_no",
        )
        .bind(a.region.as_str().to_owned())
        .bind(a.application_no.clone())
        .bind(a.kind.clone())
        .bind(a.id_number.as_str().to_owned())
        .bind(a.name.clone())
        .bind(a.household.clone())
        .bind(a.permit_since)
        .bind(a.station.clone())
        .bind(a.phone.clone())
        .bind(a.guardian_id_number.clone())
        .bind(a.guardian_name.clone())
        .bind(a.submitted_by.clone())
        .bind(a.submitted_at)
        .fetch_optional(self)
        .await?;
        Ok(stored.is_some())
    }

    async fn applications_submitted_by(
        &self,
        submitted_by: &str,
    ) -> Result<Vec<EnrolmentApplication>, StorageError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM enrolment_applications WHERE submitted_by = $1 \
             ORDER BY submitted_at DESC, application_no LIMIT $2"
        ))
        .bind(submitted_by.to_owned())
        .bind(MAX_APPLICATIONS_LISTED)
        .fetch_all(self)
        .await?;
        rows.iter()
            .map(crate::rows::record::<EnrolmentApplication, _>)
            .collect()
    }

    async fn applications(
        &self,
        query: &ApplicationQuery<'_>,
    ) -> Result<Vec<EnrolmentApplication>, StorageError> {
        // An empty text stands for "any": one statement whatever is chosen.
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM enrolment_applications \
             WHERE ($1 = '' OR region_code = $1) AND ($2 = '' OR station_code = $2) AND status = $3 \
             ORDER BY submitted_at, application_no LIMIT $4"
        ))
        .bind(query.region.unwrap_or_default().to_owned())
        .bind(query.station.unwrap_or_default().to_owned())
        .bind(query.status.to_owned())
        .bind(query.limit.clamp(1, MAX_APPLICATIONS_LISTED))
        .fetch_all(self)
        .await?;
        rows.iter()
            .map(crate::rows::record::<EnrolmentApplication, _>)
            .collect()
    }

    async fn application(
        &self,
        region: &str,
        application_no: &str,
    ) -> Result<Option<EnrolmentApplication>, StorageError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM enrolment_applications \
             WHERE region_code = $1 AND application_no = $2"
        ))
        .bind(region.to_owned())
        .bind(application_no.to_owned())
        .fetch_optional(self)
        .await?;
        row.as_ref()
            .map(crate::rows::record::<EnrolmentApplication, _>)
            .transpose()
    }

    async fn decide_application(
        &self,
        region: &str,
        application_no: &str,
        status: &str,
        reason: Option<&str>,
        decided_by: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        let decided: Option<(String,)> = sqlx::query_as(
            "UPDATE enrolment_applications SET status = $3, reason = $4, decided_by = $5, \
             decided_at = $6 WHERE region_code = $1 AND application_no = $2 \
             AND status = 'submitted' RETURNING application_no",
        )
        .bind(region.to_owned())
        .bind(application_no.to_owned())
        .bind(status.to_owned())
        .bind(reason.map(str::to_owned))
        .bind(decided_by.to_owned())
        .bind(now)
        .fetch_optional(self)
        .await?;
        Ok(decided.is_some())
    }

    async fn reopen_application(
        &self,
        region: &str,
        application_no: &str,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE enrolment_applications SET status = 'submitted', decided_by = NULL, \
             decided_at = NULL, reason = NULL \
             WHERE region_code = $1 AND application_no = $2 AND status = 'approved'",
        )
        .bind(region.to_owned())
        .bind(application_no.to_owned())
        .execute(self)
        .await?;
        Ok(())
    }

    async fn stations_of(&self, region: &str) -> Result<Vec<String>, StorageError> {
        // A region has a few dozen stations and up to millions of persons: the stations are
        // read by skipping along the index of persons by region and station, one index probe
        // a station, never the region's persons (a `SELECT DISTINCT` read them all: 551 ms a
        // region at 1 000 000 persons, on every view of the public form).
        let rows: Vec<(Option<String>,)> = sqlx::query_as(
            "WITH RECURSIVE stations (station_code, n) AS ( \
                 SELECT MIN(station_code), 1 FROM persons \
                 WHERE region_code = $1 AND station_code IS NOT NULL \
               UNION ALL \
                 SELECT (SELECT MIN(p.station_code) FROM persons p \
                         WHERE p.region_code = $1 AND p.station_code > s.station_code), s.n + 1 \
                 FROM stations s WHERE s.station_code IS NOT NULL AND s.n < $2 \
             ) \
             SELECT station_code FROM stations WHERE station_code IS NOT NULL ORDER BY n",
        )
        .bind(region.to_owned())
        .bind(MAX_APPLICATIONS_LISTED)
        .fetch_all(self)
        .await?;
        Ok(rows.into_iter().filter_map(|(s,)| s).collect())
    }
}
