//! Roster import (花名册导入): a CSV or XLSX file into persons and enrolments, with a rejection
//! report naming row, column and reason for every row not taken.
//!
//! Two passes over the streamed file: the first reads it whole and stops at any file-level fault
//! (bad encoding, too many rows, broken XLSX) before anything is written, so such a file leaves no
//! partial data; the second parses and stores rows in batches. Re-importing the same file changes
//! nothing: unchanged persons are not written and existing enrolments are kept.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};
use yibao_domain::roster::{parse_row, RosterColumn, RosterHeader};
use yibao_domain::{
    check_eligibility, covered_from, enrolment_fee_year, EnrolmentRefusal, FeePolicy, FeeYear,
    RegionCode, StationCode,
};
use yibao_roster_file::{Limits, RosterReader};
use yibao_storage::records::MAX_UPSERT_BATCH;
use yibao_storage::{
    AuditEntry, ChangeSource, EnrolmentOutcome, EnrolmentRequest, ImportSummary, PersonChange,
    PersonUpsert, Storage,
};

use crate::error::{ApiError, ErrorCode};

/// Rejections kept in the report; beyond this only the count grows.
pub const MAX_REPORTED_REJECTIONS: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rejection {
    /// Row number as Excel shows it (the header is row 1).
    pub row: usize,
    /// The column's Chinese name, or empty when the whole row is concerned.
    pub column: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    #[serde(flatten)]
    pub summary: ImportSummary,
    /// `utf8`, `utf8_bom`, `gbk`.
    pub encoding: &'static str,
    pub unknown_columns: Vec<String>,
    pub rejections: Vec<Rejection>,
    /// True when more rows were rejected than [`MAX_REPORTED_REJECTIONS`].
    pub rejections_truncated: bool,
}

/// Who imports, and what they may touch.
#[derive(Debug, Clone)]
pub struct ImportScope {
    pub actor: String,
    /// A station operator imports their own station's people only.
    pub station: Option<(RegionCode, StationCode)>,
    /// A staff account bound to one region imports that region's rows only.
    pub region: Option<RegionCode>,
}

pub fn open_reader(path: &Path, limits: Limits) -> Result<RosterReader, ApiError> {
    RosterReader::open(path, limits)
        .map_err(|e| ApiError::new(ErrorCode::BadRosterFile, e.to_string()))
}

fn sha256_of(path: &Path) -> Result<String, ApiError> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| ApiError::new(ErrorCode::BadRosterFile, format!("无法打开文件：{e}")))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| ApiError::new(ErrorCode::BadRosterFile, format!("无法读取文件：{e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The fee year each region's rows enrol in, looked up once per region.
struct RegionYears<'a> {
    storage: &'a dyn Storage,
    today: NaiveDate,
    forced: Option<FeeYear>,
    cache: HashMap<RegionCode, Result<Option<FeePolicy>, String>>,
}

impl RegionYears<'_> {
    /// `Err(reason)` when the region is unknown; `Ok(None)` when it has no open fee year.
    async fn policy(
        &mut self,
        region: RegionCode,
    ) -> Result<Result<Option<FeePolicy>, String>, ApiError> {
        if let Some(hit) = self.cache.get(&region) {
            return Ok(hit.clone());
        }
        let found = if self.storage.get_region(region).await?.is_none() {
            Err(format!("参保地区 {region} 未在本系统登记为统筹区"))
        } else {
            let policies = self.storage.list_fee_policies(region).await?;
            Ok(match self.forced {
                Some(year) => policies.into_iter().find(|p| p.fee_year() == year),
                None => enrolment_fee_year(&policies, self.today).cloned(),
            })
        };
        self.cache.insert(region, found.clone());
        Ok(found)
    }
}

fn encoding_name(e: yibao_roster_file::Encoding) -> &'static str {
    match e {
        yibao_roster_file::Encoding::Utf8 => "utf8",
        yibao_roster_file::Encoding::Utf8Bom => "utf8_bom",
        yibao_roster_file::Encoding::Gbk => "gbk",
    }
}

/// Imports the roster at `path`. `file_name` is what the user called it (for the record).
#[allow(clippy::too_many_arguments)]
pub async fn import_roster(
    storage: &dyn Storage,
    path: &Path,
    file_name: &str,
    scope: &ImportScope,
    today: NaiveDate,
    fee_year: Option<FeeYear>,
    limits: Limits,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<ImportReport, ApiError> {
    // Pass 1: the file as a whole must be readable before anything is written.
    let mut reader = open_reader(path, limits)?;
    let header = RosterHeader::parse(reader.header())?;
    let encoding = encoding_name(reader.encoding());
    for row in &mut reader {
        row.map_err(|e| ApiError::new(ErrorCode::BadRosterFile, e.to_string()))?;
    }

    let mut summary = ImportSummary {
        import_id: format!("imp{}", uuid::Uuid::new_v4().simple()),
        file_name: file_name.chars().take(200).collect(),
        file_sha256: sha256_of(path)?,
        ..ImportSummary::default()
    };
    let mut rejections = Vec::new();
    let mut truncated = false;
    let mut reject = |rejections: &mut Vec<Rejection>, row: usize, column: &str, reason: String| {
        if rejections.len() < MAX_REPORTED_REJECTIONS {
            rejections.push(Rejection {
                row,
                column: column.to_owned(),
                reason,
            });
        } else {
            truncated = true;
        }
    };
    let source = ChangeSource {
        actor: scope.actor.clone(),
        source: format!("roster:{}", summary.file_name),
    };
    let mut years = RegionYears {
        storage,
        today,
        forced: fee_year,
        cache: HashMap::new(),
    };
    // First row of each ID number in this file, to name duplicates.
    let mut first_seen: HashMap<[u8; 18], usize> = HashMap::new();
    let mut batch: Vec<PersonUpsert> = Vec::with_capacity(MAX_UPSERT_BATCH);

    // Pass 2: parse, check, store.
    let reader = open_reader(path, limits)?;
    for row in reader {
        let row = row.map_err(|e| ApiError::new(ErrorCode::BadRosterFile, e.to_string()))?;
        summary.rows_read += 1;
        let person = match parse_row(&header, &row.cells, today) {
            Ok(p) => p,
            Err(problems) => {
                summary.rejected += 1;
                for p in problems {
                    reject(&mut rejections, row.row_number, p.column, p.reason);
                }
                continue;
            }
        };
        let mut key = [0u8; 18];
        key.copy_from_slice(person.id_number.as_str().as_bytes());
        if let Some(first) = first_seen.get(&key) {
            summary.rejected += 1;
            reject(
                &mut rejections,
                row.row_number,
                RosterColumn::IdNumber.header(),
                format!("与第{first}行是同一身份证号码，重复的行未导入"),
            );
            continue;
        }
        first_seen.insert(key, row.row_number);
        if let Some(region) = scope.region {
            if person.region != region {
                summary.rejected += 1;
                reject(
                    &mut rejections,
                    row.row_number,
                    RosterColumn::Region.header(),
                    format!("您只能登记统筹区 {region} 的人员"),
                );
                continue;
            }
        }
        if let Some((region, station)) = &scope.station {
            if person.region != *region || person.station.as_ref() != Some(station) {
                summary.rejected += 1;
                reject(
                    &mut rejections,
                    row.row_number,
                    RosterColumn::Station.header(),
                    format!(
                        "您只能登记本服务站（{}）的人员，请在服务站列填写本站代码",
                        station.as_str()
                    ),
                );
                continue;
            }
        }
        let policy = match years.policy(person.region).await? {
            Err(reason) => {
                summary.rejected += 1;
                reject(
                    &mut rejections,
                    row.row_number,
                    RosterColumn::Region.header(),
                    reason,
                );
                continue;
            }
            Ok(policy) => policy,
        };
        let enrolment = policy.map(|policy| match check_eligibility(&person, today) {
            Ok(()) => EnrolmentRequest::Enrol {
                fee_year: policy.fee_year(),
                covered_from: covered_from(&person.id_number, &policy, today),
            },
            Err(refusal) => EnrolmentRequest::Refuse {
                fee_year: policy.fee_year(),
                refusal,
            },
        });
        batch.push(PersonUpsert {
            row_number: row.row_number,
            person,
            enrolment,
        });
        if batch.len() == MAX_UPSERT_BATCH {
            store_batch(
                storage,
                &mut batch,
                &source,
                &mut summary,
                &mut rejections,
                &mut reject,
            )
            .await?;
            progress(summary.rows_read);
        }
    }
    store_batch(
        storage,
        &mut batch,
        &source,
        &mut summary,
        &mut rejections,
        &mut reject,
    )
    .await?;
    progress(summary.rows_read);

    storage.record_import(&summary, &scope.actor).await?;
    if summary.enrolled + summary.updated > 0 {
        crate::services::assessment::refresh_statistics(storage).await;
    }
    storage
        .append_audit(&AuditEntry {
            actor: scope.actor.clone(),
            action: "roster.import".into(),
            region: scope.region.map(|r| r.to_string()),
            target: summary.file_name.clone(),
            detail: serde_json::json!({
                "import_id": summary.import_id, "sha256": summary.file_sha256,
                "rows_read": summary.rows_read, "enrolled": summary.enrolled, "updated": summary.updated,
                "unchanged": summary.unchanged, "rejected": summary.rejected,
            }),
        })
        .await?;
    Ok(ImportReport {
        summary,
        encoding,
        unknown_columns: header.unknown_columns.clone(),
        rejections,
        rejections_truncated: truncated,
    })
}

async fn store_batch(
    storage: &dyn Storage,
    batch: &mut Vec<PersonUpsert>,
    source: &ChangeSource,
    summary: &mut ImportSummary,
    rejections: &mut Vec<Rejection>,
    reject: &mut impl FnMut(&mut Vec<Rejection>, usize, &str, String),
) -> Result<(), ApiError> {
    if batch.is_empty() {
        return Ok(());
    }
    let outcomes = storage.upsert_persons(batch, source).await?;
    for outcome in outcomes {
        match outcome.person {
            PersonChange::Created => {}
            PersonChange::Updated => summary.updated += 1,
            PersonChange::Unchanged => summary.unchanged += 1,
        }
        match outcome.enrolment {
            EnrolmentOutcome::Enrolled => summary.enrolled += 1,
            EnrolmentOutcome::Refused(refusal) => {
                summary.rejected += 1;
                reject(
                    rejections,
                    outcome.row_number,
                    refusal_column(&refusal),
                    refusal.to_string(),
                );
            }
            EnrolmentOutcome::KeptBecauseAssessed(refusal) => {
                summary.rejected += 1;
                reject(
                    rejections,
                    outcome.row_number,
                    refusal_column(&refusal),
                    format!("{refusal}；此人已核定，参保状态未改变，如需变更请先处理其应缴费信息"),
                );
            }
            EnrolmentOutcome::NotAttempted => {
                summary.rejected += 1;
                reject(
                    rejections,
                    outcome.row_number,
                    "",
                    EnrolmentRefusal::NoOpenFeeYear.to_string(),
                );
            }
            EnrolmentOutcome::AlreadyEnrolled => {}
        }
    }
    batch.clear();
    Ok(())
}

fn refusal_column(refusal: &EnrolmentRefusal) -> &'static str {
    match refusal {
        EnrolmentRefusal::EmployeeInsured => RosterColumn::EmployeeInsured.header(),
        EnrolmentRefusal::ResidencePermitTooRecent { .. } => RosterColumn::PermitSince.header(),
        EnrolmentRefusal::EnrolledElsewhere { .. } => RosterColumn::IdNumber.header(),
        EnrolmentRefusal::NoOpenFeeYear => RosterColumn::Region.header(),
    }
}

/// The rejection report as CSV (UTF-8 with BOM so Excel opens it): 行号, 列, 原因.
pub fn rejections_csv(report: &ImportReport) -> String {
    let mut out = String::from("\u{feff}行号,列,原因\n");
    for r in &report.rejections {
        out.push_str(&format!(
            "{},{},{}\n",
            r.row,
            csv_field(&r.column),
            csv_field(&r.reason)
        ));
    }
    if report.rejections_truncated {
        out.push_str(&format!(",,（仅列出前{MAX_REPORTED_REJECTIONS}条）\n"));
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The downloadable template: every column, with one example row.
pub fn template_csv() -> String {
    let header: Vec<_> = RosterColumn::ALL.iter().map(|c| c.header()).collect();
    let example: Vec<_> = RosterColumn::ALL.iter().map(|c| c.example()).collect();
    format!("\u{feff}{}\n{}\n", header.join(","), example.join(","))
}
