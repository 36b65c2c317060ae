//! Roster import (花名册导入): a CSV or XLSX file into persons and enrolments, with a rejection
//! report naming row, column and reason for every row not taken.
//!
//! Two passes over the streamed file: the first reads it whole and stops at any file-level fault
//! (bad encoding, too many rows, broken XLSX) before anything is written, so such a file leaves no
//! partial data; the second parses and stores rows in batches. Re-importing the same file changes
//! nothing: unchanged persons are not written and existing enrolments are kept.
//!
//! Scope: a row may create a person, or change one stored where the uploader may change people
//! ([`Staff::may_change`], the rule of `PUT /persons`, applied to the row's new region and station
//! here and to the stored ones inside the storage's write transaction); any other row is a
//! rejected row. In a workbook the roster sheet is the first whose header holds the required
//! columns, so a first sheet of instructions (填表说明) is passed over.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::Read;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use chrono::NaiveDate;
use futures_util::stream::{FuturesOrdered, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use yibao_domain::roster::{
    parse_household, parse_row, ColumnSuggestion, HeaderMatch, RosterColumn, RosterHeader,
    REJECTION_COLUMNS,
};
use yibao_domain::{
    check_eligibility, covered_from, enrolment_fee_year, EnrolmentRefusal, FeePolicy, FeeYear,
    PersonNameError, RegionCode, StationCode,
};
use yibao_roster_file::{HeaderFit, Limits, RosterReader};
use yibao_storage::{
    AuditEntry, ChangeSource, EnrolmentOutcome, EnrolmentRequest, GrowingTables, ImportSummary,
    PersonChange, PersonUpsert, Storage, UpsertOutcome,
};

use crate::auth::Staff;
use crate::error::{ErrorCode, ServiceError};
use crate::services::statistics::GrowthRefresh;

/// Rejections kept in the report; beyond this only the count grows.
pub const MAX_REPORTED_REJECTIONS: usize = 200_000;

/// Cell text of rejected rows kept for the rejection file, in all. Rows rejected beyond it are
/// listed in the file with their reasons but without their cells.
pub const MAX_REJECTED_ROW_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rejection {
    /// Row number as Excel shows it (the header is row 1).
    pub row: usize,
    /// The column's Chinese name, or empty when the whole row is concerned.
    pub column: String,
    /// Stable, for scripts: a cell's own code (`INVALID_NAME`, `NAME_CHARACTER_LOST` for a `?`
    /// standing where an encoding lost a character, `INVALID_ID_NUMBER`, `INVALID_REGION`,
    /// `INVALID_PERSON`, `INVALID_HOUSEHOLD` for 户号 or 与户主关系), `DUPLICATE_ID_NUMBER` (the same
    /// person twice in the file), `FORBIDDEN`
    /// (outside the uploader's scope), `HOUSEHOLD_HEAD_ELSEWHERE` (the row imported but its 户号 and
    /// 与户主关系 not: they would replace a head at a station out of the uploader's scope), or the
    /// enrolment refusal's code (`EMPLOYEE_INSURED`,
    /// `RESIDENCE_PERMIT_TOO_RECENT`, `ENROLLED_ELSEWHERE`, `NO_OPEN_FEE_YEAR`).
    pub code: String,
    pub reason: String,
}

/// Added to the reason of a name with a `?` where a character was lost (`NAME_CHARACTER_LOST`):
/// the file, not the clerk's typing, is the usual cause.
pub const LOST_CHARACTER_ADVICE: &str = "花名册如是CSV文件，请用Excel另存为“CSV UTF-8（逗号分隔）”或GB18030编码（不要存为GBK或“ANSI”编码，它们容纳不了生僻字），或保存为 .xlsx，改回原字后重新上传";

/// [`Rejection::code`] of a row whose ID number came earlier in the same file.
pub const DUPLICATE_ID_NUMBER: &str = "DUPLICATE_ID_NUMBER";

/// The document's shape of [`ColumnSuggestion`] (the domain crate knows no OpenAPI).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ColumnSuggestionBody {
    /// The header as found.
    found: String,
    /// Our column name it probably means.
    expected: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    #[serde(flatten)]
    pub summary: ImportSummary,
    /// The CSV encoding detected: `utf8`, `utf8_bom` or `gb18030` (GBK files, Excel's plain “CSV”
    /// on Chinese Windows, are GB 18030's subset and reported as `gb18030`); `utf8` for XLSX.
    pub encoding: &'static str,
    /// The worksheet read from an XLSX file, by the name on its tab; `null` for CSV.
    pub sheet: Option<String>,
    /// Columns ignored (the rejection file's 行号, 错误列, 错误代码, 错误原因 are ignored silently).
    pub unknown_columns: Vec<String>,
    /// Ignored columns whose names are close to one of ours, with the name they probably mean.
    #[schema(value_type = Vec<ColumnSuggestionBody>)]
    pub column_suggestions: Vec<ColumnSuggestion>,
    pub rejections: Vec<Rejection>,
    /// True when more rows were rejected than [`MAX_REPORTED_REJECTIONS`].
    pub rejections_truncated: bool,
    /// The file's header row as read, for [`rejections_csv`].
    #[serde(skip)]
    pub header: Vec<String>,
    /// Each rejected row's own cells by row number (within [`MAX_REJECTED_ROW_BYTES`]), for
    /// [`rejections_csv`]. Personal data: never logged.
    #[serde(skip)]
    pub rejected_rows: BTreeMap<usize, Vec<String>>,
}

/// Who imports, and so whom they may create or change.
#[derive(Debug, Clone)]
pub struct ImportScope {
    pub actor: String,
    /// The signed-in staff member whose rights bound the rows ([`Staff::may_change`]); `None` for
    /// the operator on the server's command line, who may change everybody.
    pub staff: Option<Staff>,
}

impl ImportScope {
    /// The command line on the server (and the demo and benchmarks): every row may be stored.
    pub fn unrestricted(actor: impl Into<String>) -> ImportScope {
        ImportScope {
            actor: actor.into(),
            staff: None,
        }
    }

    /// A signed-in staff member; `FORBIDDEN` when their role may change nobody at all.
    pub fn of_staff(staff: &Staff) -> Result<ImportScope, ServiceError> {
        staff.may_change_anyone()?;
        Ok(ImportScope {
            actor: staff.username().to_owned(),
            staff: Some(staff.clone()),
        })
    }

    /// The one scope rule: [`Staff::may_change`].
    fn may_change(&self, region: RegionCode, station: Option<&StationCode>) -> bool {
        self.staff
            .as_ref()
            .is_none_or(|staff| staff.may_change(region, station).is_ok())
    }

    /// The column and reason of a row whose new region and station are out of scope.
    fn refusal_of_row(&self, region: RegionCode) -> (RosterColumn, String) {
        let account = self.staff.as_ref().map(|s| &s.0);
        match (
            account.and_then(|a| a.region),
            account.and_then(|a| a.station.as_ref()),
        ) {
            (Some(own), _) if own != region => (
                RosterColumn::Region,
                format!("您只能登记统筹区 {own} 的人员"),
            ),
            (_, Some(station)) => (
                RosterColumn::Station,
                format!(
                    "您只能登记本服务站（{}）的人员，请在服务站列填写本站代码",
                    station.as_str()
                ),
            ),
            _ => (RosterColumn::Region, "您没有登记此人员的权限".to_owned()),
        }
    }

    /// The reason for a row whose person is stored where the uploader may not change them.
    fn refusal_of_stored(&self) -> String {
        match self.staff.as_ref().and_then(|s| s.0.station.as_ref()) {
            Some(station) => format!(
                "此人已由其他服务站登记，您只能变更本服务站（{}）的人员；如需转入本站，请联系中心管理员",
                station.as_str()
            ),
            None => "此人已由其他服务站登记，您没有变更的权限；请联系中心管理员".to_owned(),
        }
    }
}

fn header_fit(cells: &[String]) -> HeaderFit {
    match RosterHeader::match_of(cells) {
        HeaderMatch::Complete => HeaderFit::Fits,
        HeaderMatch::Partial => HeaderFit::Resembles,
        HeaderMatch::None => HeaderFit::No,
    }
}

/// Opens a roster; in a workbook, the first sheet whose header holds the required columns.
pub fn open_reader(path: &Path, limits: Limits) -> Result<RosterReader, ServiceError> {
    RosterReader::open_finding(path, limits, &header_fit)
        .map_err(|e| ServiceError::new(ErrorCode::BadRosterFile, e.to_string()))
}

/// Rejections as they are collected: the list (bounded) and the rejected rows' own cells.
#[derive(Default)]
pub(crate) struct Rejections {
    pub(crate) list: Vec<Rejection>,
    pub(crate) truncated: bool,
    pub(crate) rows: BTreeMap<usize, Vec<String>>,
    row_bytes: usize,
}

impl Rejections {
    pub(crate) fn add(
        &mut self,
        row: usize,
        column: &str,
        code: &str,
        reason: String,
        cells: Option<&Vec<String>>,
    ) {
        if self.list.len() < MAX_REPORTED_REJECTIONS {
            self.list.push(Rejection {
                row,
                column: column.to_owned(),
                code: code.to_owned(),
                reason,
            });
        } else {
            self.truncated = true;
            return;
        }
        if let Some(cells) = cells {
            let size: usize = cells.iter().map(|c| c.len() + 1).sum();
            if !self.rows.contains_key(&row) && self.row_bytes + size <= MAX_REJECTED_ROW_BYTES {
                self.row_bytes += size;
                self.rows.insert(row, cells.clone());
            }
        }
    }
}

fn sha256_of(path: &Path) -> Result<String, ServiceError> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| ServiceError::new(ErrorCode::BadRosterFile, format!("无法打开文件：{e}")))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).map_err(|e| {
            ServiceError::new(ErrorCode::BadRosterFile, format!("无法读取文件：{e}"))
        })?;
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
    ) -> Result<Result<Option<FeePolicy>, String>, ServiceError> {
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
        yibao_roster_file::Encoding::Gb18030 => "gb18030",
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
    progress: &(dyn Fn(super::Progress) + Send + Sync),
) -> Result<ImportReport, ServiceError> {
    // Pass 1: the file as a whole must be readable before anything is written.
    let mut reader = open_reader(path, limits)?;
    let sheet = reader.sheet_name().map(str::to_owned);
    let header = RosterHeader::parse(reader.header()).map_err(|e| {
        let read = match &sheet {
            Some(name) => format!("（读取的是工作表“{name}”）"),
            None => String::new(),
        };
        ServiceError::new(ErrorCode::BadRosterHeader, format!("{e}{read}"))
    })?;
    let header_cells = reader.header().to_vec();
    let encoding = encoding_name(reader.encoding());
    let mut rows_total = 0u64;
    for row in &mut reader {
        row.map_err(|e| ServiceError::new(ErrorCode::BadRosterFile, e.to_string()))?;
        rows_total += 1;
    }
    let report_progress = |done: u64| {
        progress(super::Progress {
            done,
            total: Some(rows_total),
        })
    };
    report_progress(0);

    let mut summary = ImportSummary {
        import_id: format!("imp{}", uuid::Uuid::new_v4().simple()),
        file_name: file_name.chars().take(200).collect(),
        file_sha256: sha256_of(path)?,
        ..ImportSummary::default()
    };
    let mut rejections = Rejections::default();
    let source = Arc::new(ChangeSource {
        actor: scope.actor.clone(),
        source: format!("roster:{}", summary.file_name),
    });
    // What each batch's task owns: the storage (its pools shared) and who imports.
    let (shared, shared_scope) = (storage.handle(), Arc::new(scope.clone()));
    let mut years = RegionYears {
        storage,
        today,
        forced: fee_year,
        cache: HashMap::new(),
    };
    // First row of each ID number in this file, to name duplicates.
    let mut first_seen: HashMap<[u8; 18], usize> = HashMap::new();
    let batch_size = storage.backend().persons_per_batch();
    let mut batch: Vec<PersonUpsert> = Vec::with_capacity(batch_size);
    // The batch's rows' own cells, for the rejection file.
    let mut batch_cells: HashMap<usize, Vec<String>> = HashMap::new();
    // Batches being stored, oldest first; their outcomes are counted in file order.
    let mut storing = FuturesOrdered::new();
    let in_flight = batches_in_flight(storage);
    // The statistics of the tables the persons go into are refreshed as they grow, so that
    // the next batches' reads and foreign-key checks are planned for tables with people in
    // them (see `Storage::refresh_statistics_of`).
    let mut growth = GrowthRefresh::new(storage, GrowingTables::Enrolment);

    // Pass 2: parse, check, store.
    let reader = open_reader(path, limits)?;
    for row in reader {
        let row = row.map_err(|e| ServiceError::new(ErrorCode::BadRosterFile, e.to_string()))?;
        summary.rows_read += 1;
        let number = row.row_number;
        let parsed = match (
            parse_row(&header, &row.cells, today),
            parse_household(&header, &row.cells),
        ) {
            (Ok(person), Ok(household)) => Ok((person, household)),
            (Err(mut problems), Err(more)) => {
                problems.extend(more);
                Err(problems)
            }
            (Err(problems), Ok(_)) | (Ok(_), Err(problems)) => Err(problems),
        };
        let (person, household) = match parsed {
            Ok(p) => p,
            Err(problems) => {
                summary.rejected += 1;
                for p in problems {
                    let reason = if p.code == PersonNameError::LOST_CHARACTER_CODE {
                        format!("{}；{LOST_CHARACTER_ADVICE}", p.reason)
                    } else {
                        p.reason
                    };
                    rejections.add(number, p.column, p.code, reason, Some(&row.cells));
                }
                continue;
            }
        };
        let mut key = [0u8; 18];
        key.copy_from_slice(person.id_number.as_str().as_bytes());
        if let Some(first) = first_seen.get(&key) {
            summary.rejected += 1;
            rejections.add(
                number,
                RosterColumn::IdNumber.header(),
                DUPLICATE_ID_NUMBER,
                format!("与第{first}行是同一身份证号码，重复的行未导入"),
                Some(&row.cells),
            );
            continue;
        }
        first_seen.insert(key, number);
        if !scope.may_change(person.region, person.station.as_ref()) {
            summary.rejected += 1;
            let (column, reason) = scope.refusal_of_row(person.region);
            let forbidden = ErrorCode::Forbidden.as_str();
            rejections.add(number, column.header(), forbidden, reason, Some(&row.cells));
            continue;
        }
        let policy = match years.policy(person.region).await? {
            Err(reason) => {
                summary.rejected += 1;
                rejections.add(
                    number,
                    RosterColumn::Region.header(),
                    RosterColumn::Region.error_code(),
                    reason,
                    Some(&row.cells),
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
            row_number: number,
            person,
            enrolment,
            household,
        });
        batch_cells.insert(number, row.cells);
        if batch.len() == batch_size {
            let rows = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
            let cells = std::mem::take(&mut batch_cells);
            storing.push_back(StoringTask::spawn(store_batch(
                shared.clone(),
                shared_scope.clone(),
                rows,
                cells,
                source.clone(),
                summary.rows_read,
            )));
            while storing.len() >= in_flight {
                if let Some(stored) = storing.next().await {
                    count_outcomes(
                        scope,
                        stored?,
                        &mut summary,
                        &mut rejections,
                        &report_progress,
                    );
                }
            }
            // On SQLite no batch is under way here (one at a time, just counted); on
            // PostgreSQL those left under way hold only rows, which ANALYZE does not wait for.
            let written = summary.enrolled + summary.updated;
            if growth.due(written) {
                growth.refresh(storage, written).await;
            }
        }
    }
    if !batch.is_empty() {
        let cells = std::mem::take(&mut batch_cells);
        storing.push_back(StoringTask::spawn(store_batch(
            shared.clone(),
            shared_scope.clone(),
            batch,
            cells,
            source.clone(),
            summary.rows_read,
        )));
    }
    while let Some(stored) = storing.next().await {
        count_outcomes(
            scope,
            stored?,
            &mut summary,
            &mut rejections,
            &report_progress,
        );
    }
    report_progress(summary.rows_read);

    // A row refused when read is listed at once, one refused when stored once its batch is
    // written: listed by row, as the file has them (past MAX_REPORTED_REJECTIONS, the rows
    // kept are those listed first, so a later row may be kept and an earlier one not).
    rejections.list.sort_by_key(|r| r.row);
    storage.record_import(&summary, &scope.actor).await?;
    if summary.enrolled + summary.updated > 0 {
        crate::services::statistics::refresh_statistics(storage).await;
    }
    storage
        .append_audit(&AuditEntry {
            actor: scope.actor.clone(),
            action: "roster.import".into(),
            region: scope
                .staff
                .as_ref()
                .and_then(|s| s.0.region)
                .map(|r| r.to_string()),
            target: summary.file_name.clone(),
            detail: serde_json::json!({
                "import_id": summary.import_id, "sha256": summary.file_sha256, "sheet": sheet,
                "rows_read": summary.rows_read, "enrolled": summary.enrolled, "updated": summary.updated,
                "unchanged": summary.unchanged, "rejected": summary.rejected,
            }),
        })
        .await?;
    Ok(ImportReport {
        summary,
        encoding,
        sheet,
        unknown_columns: header.unknown_columns.clone(),
        column_suggestions: header.suggestions.clone(),
        rejections: rejections.list,
        rejections_truncated: rejections.truncated,
        header: header_cells,
        rejected_rows: rejections.rows,
    })
}

/// How many batches an import keeps under way: three where the backend's writers run
/// concurrently, otherwise one. On PostgreSQL on the 2-core machine kind a third gained nothing
/// while every batch's rows locked their region's row (a foreign key per row); since those are
/// checked per statement (migration 0049), 1 000 000 rows took 26.5-26.7 s with three against
/// 29.3-30.5 s with two, and a fourth gained nothing more; nor did it once each batch ran on a
/// task of its own ([`StoringTask`]), which (with migrations 0054 and 0055) took 24.5-27.9 s to
/// 21.6-22.6 s, most of it the tasks' (BENCHMARKS.md, session 37).
/// A batch makes progress while the import reads its next rows. A batch that fails ends the
/// import with its error; the batches stored beside it are stopped, each one's transaction
/// written whole or not at all, as the batches before it were written (importing the file again
/// changes nothing already stored). Two rows of one file that name different heads for one household,
/// in batches stored at once, are settled in the order the batches commit, not in file order
/// (the later one is refused on `household_members`' unique index and tried again).
fn batches_in_flight(storage: &dyn Storage) -> usize {
    if storage.backend().writers_run_concurrently() {
        3
    } else {
        1
    }
}

/// A batch written: its rows' outcomes, their cells for the rejection file, and the rows read
/// from the file up to its last.
struct StoredBatch {
    outcomes: Vec<UpsertOutcome>,
    cells: HashMap<usize, Vec<String>>,
    rows_read: u64,
}

/// A batch being stored by a task of its own, so that it goes on while the import reads the
/// next rows and while the other batches' statements run: their work (the rows' text for
/// COPY, the history's records, each statement's encoding) shares the runtime's threads
/// instead of waiting for the import's one. Dropped before it is done (the import ended with
/// another batch's error), the task is aborted: its transaction is rolled back.
struct StoringTask(tokio::task::JoinHandle<Result<StoredBatch, ServiceError>>);

impl StoringTask {
    fn spawn(
        batch: impl Future<Output = Result<StoredBatch, ServiceError>> + Send + 'static,
    ) -> StoringTask {
        StoringTask(tokio::spawn(batch))
    }
}

impl Future for StoringTask {
    type Output = Result<StoredBatch, ServiceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(stored) => stored,
            // A panic in the batch is the import's, as it was when the batch ran in it.
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => Err(ServiceError::new(
                ErrorCode::InternalError,
                "导入的一批数据未能写完（后台任务被取消），请重新导入该文件",
            )),
        })
    }
}

impl Drop for StoringTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn store_batch(
    storage: Arc<dyn Storage>,
    scope: Arc<ImportScope>,
    batch: Vec<PersonUpsert>,
    cells: HashMap<usize, Vec<String>>,
    source: Arc<ChangeSource>,
    rows_read: u64,
) -> Result<StoredBatch, ServiceError> {
    let may_change =
        |region: RegionCode, station: Option<&StationCode>| scope.may_change(region, station);
    // A concurrent change of the same household (another import, a clerk, or another batch of
    // this import) refuses the batch on a unique index of household_members, and another import
    // creating the same new person at once on the key of persons or of the person directory,
    // nothing written: the batch is tried again, and finds what the other wrote. On a Citus
    // cluster two such imports may instead deadlock: each copies its directory rows to many
    // shards at once, over a connection per node, and each may come to wait for the other's
    // rows on another node. The cluster then cancels one whole transaction (a distributed
    // deadlock, 40P01, which storage answers as unavailable): tried again as well. So is a
    // batch that met a database gone for a moment; a third failure ends the import.
    let mut attempt = 0;
    let outcomes = loop {
        attempt += 1;
        match storage
            .upsert_persons_checked(&batch, &source, &may_change)
            .await
        {
            Err(yibao_storage::StorageError::Constraint {
                kind: yibao_storage::ConstraintKind::Unique,
                detail,
            }) if attempt < 3
                && ["household_members", "persons_pkey", "person_directory"]
                    .iter()
                    .any(|table| detail.contains(table)) =>
            {
                continue
            }
            Err(yibao_storage::StorageError::Unavailable(_)) if attempt < 3 => continue,
            other => break other?,
        }
    };
    Ok(StoredBatch {
        outcomes,
        cells,
        rows_read,
    })
}

/// Counts a stored batch's outcomes into the summary and its refused rows into the rejections.
fn count_outcomes(
    scope: &ImportScope,
    stored: StoredBatch,
    summary: &mut ImportSummary,
    rejections: &mut Rejections,
    report_progress: &dyn Fn(u64),
) {
    let StoredBatch {
        outcomes,
        cells: batch_cells,
        rows_read,
    } = stored;
    for outcome in outcomes {
        let row = outcome.row_number;
        let cells = batch_cells.get(&row);
        if outcome.household_refused {
            rejections.add(
                row,
                RosterColumn::Relation.header(),
                HOUSEHOLD_HEAD_ELSEWHERE,
                format!(
                    "{}；本行户号和与户主关系未导入，其余信息已导入",
                    yibao_domain::household::HouseholdError::HeadElsewhere
                ),
                cells,
            );
        }
        match outcome.person {
            PersonChange::Created => {}
            PersonChange::Updated => summary.updated += 1,
            PersonChange::Unchanged => summary.unchanged += 1,
            PersonChange::OutOfScope => {
                summary.rejected += 1;
                rejections.add(
                    row,
                    RosterColumn::Station.header(),
                    ErrorCode::Forbidden.as_str(),
                    scope.refusal_of_stored(),
                    cells,
                );
                continue;
            }
        }
        match outcome.enrolment {
            EnrolmentOutcome::Enrolled => summary.enrolled += 1,
            EnrolmentOutcome::Refused(refusal) => {
                summary.rejected += 1;
                rejections.add(
                    row,
                    refusal_column(&refusal),
                    refusal.code(),
                    refusal.to_string(),
                    cells,
                );
            }
            EnrolmentOutcome::KeptBecauseAssessed(refusal) => {
                summary.rejected += 1;
                rejections.add(
                    row,
                    refusal_column(&refusal),
                    refusal.code(),
                    format!("{refusal}；此人已核定，参保状态未改变，如需变更请先处理其应缴费信息"),
                    cells,
                );
            }
            EnrolmentOutcome::NotAttempted => {
                summary.rejected += 1;
                let refusal = EnrolmentRefusal::NoOpenFeeYear;
                rejections.add(row, "", refusal.code(), refusal.to_string(), cells);
            }
            EnrolmentOutcome::AlreadyEnrolled => {}
        }
    }
    report_progress(rows_read);
}

fn refusal_column(refusal: &EnrolmentRefusal) -> &'static str {
    match refusal {
        EnrolmentRefusal::EmployeeInsured => RosterColumn::EmployeeInsured.header(),
        EnrolmentRefusal::ResidencePermitTooRecent { .. } => RosterColumn::PermitSince.header(),
        EnrolmentRefusal::EnrolledElsewhere { .. } => RosterColumn::IdNumber.header(),
        EnrolmentRefusal::NoOpenFeeYear => RosterColumn::Region.header(),
    }
}

/// The code of a roster line whose row was imported without its household: the row would have
/// made someone head of a household whose head is at a station out of the uploader's scope.
pub const HOUSEHOLD_HEAD_ELSEWHERE: &str = "HOUSEHOLD_HEAD_ELSEWHERE";

/// The rejection file (未通过明细) as CSV, UTF-8 with a byte-order mark so that Excel opens it:
/// `行号`, `错误列`, `错误代码`, `错误原因`, then the file's own columns in their original order, one line per
/// rejected row with that row's own cells. A clerk corrects the cells and imports the file again
/// as a roster: the four added columns are recognised and ignored. Cells Excel would turn into
/// numbers or dates and so change (long digit strings such as ID numbers, leading zeros, dates)
/// or run as formulas are written as Excel's text formula `="…"`, which the roster reader
/// unwraps.
pub fn rejections_csv(report: &ImportReport) -> String {
    rejection_file(
        &report.header,
        &report.rejections,
        &report.rejected_rows,
        report.rejections_truncated,
    )
}

/// A rejection file for any import read like the roster: the row, the columns, the codes, the
/// reasons, then the row's own cells under the file's own header, so it can be corrected and
/// imported again as it is.
pub fn rejection_file(
    header: &[String],
    rejections: &[Rejection],
    rejected_rows: &BTreeMap<usize, Vec<String>>,
    truncated: bool,
) -> String {
    let kept: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, name)| !REJECTION_COLUMNS.contains(&name.trim()))
        .map(|(index, _)| index)
        .collect();
    let mut out = String::from("\u{feff}");
    let mut line: Vec<String> = REJECTION_COLUMNS.iter().map(|c| csv_field(c)).collect();
    line.extend(kept.iter().map(|&i| csv_field(&header[i])));
    out.push_str(&line.join(","));
    out.push('\n');
    let mut by_row: BTreeMap<usize, Vec<&Rejection>> = BTreeMap::new();
    for r in rejections {
        by_row.entry(r.row).or_default().push(r);
    }
    for (row, problems) in by_row {
        let mut columns: Vec<&str> = Vec::new();
        let mut codes: Vec<&str> = Vec::new();
        for p in &problems {
            if !p.column.is_empty() && !columns.contains(&p.column.as_str()) {
                columns.push(&p.column);
            }
            if !codes.contains(&p.code.as_str()) {
                codes.push(&p.code);
            }
        }
        let mut reasons: Vec<String> = problems
            .iter()
            .map(|p| {
                if p.column.is_empty() {
                    p.reason.clone()
                } else {
                    format!("{}：{}", p.column, p.reason)
                }
            })
            .collect();
        let cells = rejected_rows.get(&row);
        if cells.is_none() {
            reasons.push("（原行内容过多，未附上，请到原文件中修改此行）".to_owned());
        }
        let mut line = vec![
            row.to_string(),
            csv_field(&columns.join("、")),
            csv_field(&codes.join("、")),
            csv_field(&reasons.join("；")),
        ];
        if let Some(cells) = cells {
            line.extend(
                kept.iter()
                    .map(|&i| excel_csv_cell(cells.get(i).map_or("", String::as_str))),
            );
        }
        out.push_str(&line.join(","));
        out.push('\n');
    }
    if truncated {
        out.push_str(&format!(",,,（仅列出前{MAX_REPORTED_REJECTIONS}条）\n"));
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

/// A cell for a CSV file that Excel opens: text Excel would turn into a number or a date (and so
/// change: 18-digit ID numbers, leading zeros, `2020-11-01`) or run as a formula is written as
/// the text formula `="…"`.
fn excel_csv_cell(text: &str) -> String {
    let bytes = text.as_bytes();
    let digits = !text.is_empty() && bytes.iter().all(u8::is_ascii_digit);
    let changed_number = digits && (text.len() > 11 || (text.len() > 1 && text.starts_with('0')));
    let date_like = text.len() >= 8
        && text.len() <= 10
        && bytes
            .iter()
            .all(|b| b.is_ascii_digit() || *b == b'-' || *b == b'/')
        && bytes.iter().filter(|b| !b.is_ascii_digit()).count() == 2;
    let formula_like = text.starts_with(['=', '+', '-', '@']);
    if changed_number || date_like || formula_like {
        if !text.contains('"') {
            return format!("\"=\"\"{text}\"\"\"");
        }
        // A leading apostrophe keeps Excel from running it; the roster reader removes it.
        return csv_field(&format!("'{text}"));
    }
    csv_field(text)
}

/// How long an import's rejection file is kept for download ([`keep_rejection_file`]): 30 days,
/// then the background loop deletes it.
pub const REJECTION_FILE_KEPT_SECONDS: i64 = 30 * 86400;

/// Rejected rows a kept rejection file holds; beyond them the file ends with a note (the page's
/// list and counts stay complete).
pub const MAX_KEPT_REJECTED_ROWS: usize = 10_000;

/// The region a staff member's records are kept under: their own, or the centre's
/// ([`yibao_storage::records::CENTRE_SCOPE`]) for an account bound to no region.
pub fn scope_region(staff: &Staff) -> String {
    staff.0.region.map_or_else(
        || yibao_storage::records::CENTRE_SCOPE.to_owned(),
        |r| r.to_string(),
    )
}

/// The rejection file of `report` as kept: [`rejections_csv`] of its first
/// [`MAX_KEPT_REJECTED_ROWS`] rejected rows, cut at a line to stay within
/// [`yibao_storage::records::MAX_REJECTION_FILE_BYTES`], with a closing note when rows were left
/// out. Answers the CSV and the rows it holds.
pub fn kept_rejections_csv(report: &ImportReport) -> (String, usize) {
    let mut rows: Vec<usize> = report.rejections.iter().map(|r| r.row).collect();
    rows.sort_unstable();
    rows.dedup();
    let all_rows = rows.len();
    rows.truncate(MAX_KEPT_REJECTED_ROWS);
    let last_kept = rows.last().copied().unwrap_or(0);
    let mut kept = report.clone();
    kept.rejections.retain(|r| r.row <= last_kept);
    kept.rejected_rows.retain(|row, _| *row <= last_kept);
    kept.rejections_truncated = false;
    let mut csv = rejections_csv(&kept);
    let mut kept_rows = rows.len();
    // Room for the note.
    let bound = yibao_storage::records::MAX_REJECTION_FILE_BYTES - 1024;
    if csv.len() > bound {
        let cut = csv[..bound].rfind('\n').map_or(0, |i| i + 1);
        kept_rows = kept_rows.saturating_sub(csv[cut..].matches('\n').count());
        csv.truncate(cut);
    }
    if kept_rows < all_rows || report.rejections_truncated {
        csv.push_str(&format!(
            ",,,,（此文件只保存了前{kept_rows}行未通过的记录，其余请到原文件中修改后上传；改正时请删除本行）\n"
        ));
    }
    (csv, kept_rows)
}

/// Keeps an import's rejection file under the uploader's region and station for
/// [`REJECTION_FILE_KEPT_SECONDS`] ([`read_rejection_file`]); nothing when no row was rejected.
pub async fn keep_rejection_file(
    storage: &dyn Storage,
    staff: &Staff,
    report: &ImportReport,
    now: i64,
) -> Result<bool, ServiceError> {
    if report.rejections.is_empty() {
        return Ok(false);
    }
    let (content, rows_kept) = kept_rejections_csv(report);
    storage
        .put_rejection_file(&yibao_storage::RejectionFile {
            region: scope_region(staff),
            import_id: report.summary.import_id.clone(),
            station_code: staff.0.station.as_ref().map(|s| s.as_str().to_owned()),
            uploaded_by: staff.username().to_owned(),
            created_at: now,
            file_name: report.summary.file_name.clone(),
            rows_kept: i64::try_from(rows_kept).unwrap_or(i64::MAX),
            content,
        })
        .await?;
    Ok(true)
}

/// An import's kept rejection file, for the uploader's scope only: the same region (the centre's
/// for an account bound to none) and the same station (none above station level). Another
/// scope's, an expired or an unknown one is `NOT_FOUND` alike, so nothing tells whether it
/// exists. Reading it is reading personal data: audited as `read.roster_rejections`.
pub async fn read_rejection_file(
    storage: &dyn Storage,
    staff: &Staff,
    import_id: &str,
    now: i64,
) -> Result<yibao_storage::RejectionFile, ServiceError> {
    staff.may_change_anyone()?;
    let not_found = || {
        ServiceError::new(
            ErrorCode::NotFound,
            "未通过明细不存在或已超过保存期限（30天），请重新上传花名册",
        )
    };
    if import_id.is_empty() || import_id.len() > 64 {
        return Err(not_found());
    }
    let file = storage
        .get_rejection_file(&scope_region(staff), import_id)
        .await?
        .ok_or_else(not_found)?;
    let own_station = staff.0.station.as_ref().map(|s| s.as_str().to_owned());
    if file.station_code != own_station || file.created_at < now - REJECTION_FILE_KEPT_SECONDS {
        return Err(not_found());
    }
    storage
        .append_audit(&AuditEntry {
            actor: staff.username().to_owned(),
            action: "read.roster_rejections".to_owned(),
            region: staff.0.region.map(|r| r.to_string()),
            target: import_id.to_owned(),
            detail: serde_json::json!({ "rows": file.rows_kept, "file_name": file.file_name }),
        })
        .await?;
    Ok(file)
}

/// The downloadable template: every column, with one example row.
pub fn template_csv() -> String {
    let header: Vec<_> = RosterColumn::ALL.iter().map(|c| c.header()).collect();
    let example: Vec<_> = RosterColumn::ALL.iter().map(|c| c.example()).collect();
    format!("\u{feff}{}\n{}\n", header.join(","), example.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rejected rows' cells are kept up to MAX_REJECTED_ROW_BYTES; rows beyond are listed in the
    /// rejection file with their reason and a note, without cells.
    #[test]
    fn limit_rejected_row_bytes() {
        let mut rejections = Rejections::default();
        let cells = vec!["名".repeat(100); 64];
        let row_size: usize = cells.iter().map(|c| c.len() + 1).sum();
        let fitting = MAX_REJECTED_ROW_BYTES / row_size;
        for row in 2..fitting + 4 {
            rejections.add(row, "姓名", "INVALID_NAME", "原因".into(), Some(&cells));
        }
        assert_eq!(rejections.rows.len(), fitting);
        assert!(rejections.row_bytes <= MAX_REJECTED_ROW_BYTES);
        assert_eq!(rejections.list.len(), fitting + 2);
        let report = ImportReport {
            summary: ImportSummary::default(),
            encoding: "utf8",
            sheet: None,
            unknown_columns: Vec::new(),
            column_suggestions: Vec::new(),
            rejections: rejections.list,
            rejections_truncated: false,
            header: vec!["姓名".into()],
            rejected_rows: rejections.rows,
        };
        let csv = rejections_csv(&report);
        let last = csv.lines().last().unwrap();
        assert!(
            last.starts_with(&format!("{},姓名,", fitting + 3)),
            "{last}"
        );
        assert!(last.contains("原行内容过多"), "{last}");
        assert!(!csv.lines().nth(1).unwrap().contains("原行内容过多"));
    }

    #[test]
    fn excel_cells_keep_their_text() {
        assert_eq!(
            excel_csv_cell("320602198001011235"),
            "\"=\"\"320602198001011235\"\"\""
        );
        assert_eq!(excel_csv_cell("0512"), "\"=\"\"0512\"\"\"");
        assert_eq!(excel_csv_cell("2020-11-01"), "\"=\"\"2020-11-01\"\"\"");
        assert_eq!(excel_csv_cell("=1+1"), "\"=\"\"=1+1\"\"\"");
        assert_eq!(excel_csv_cell("=\"x\""), "\"'=\"\"x\"\"\"");
        assert_eq!(excel_csv_cell("320600"), "320600");
        assert_eq!(excel_csv_cell("13812345678"), "13812345678");
        assert_eq!(excel_csv_cell("张三"), "张三");
        assert_eq!(excel_csv_cell("南通中学,东校区"), "\"南通中学,东校区\"");
        assert_eq!(excel_csv_cell(""), "");
    }
}
