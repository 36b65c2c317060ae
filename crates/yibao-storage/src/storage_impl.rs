//! The one implementation of [`Storage`], for every backend's [`Dialect`] (issue 13). Each
//! method forwards to the aggregate that holds its SQL: regions and policies
//! ([`crate::region_setup`]), persons ([`crate::persons`]), assessment ([`crate::assessment`]),
//! staff ([`crate::staff_accounts`]), the console's records and reads
//! ([`crate::campaign_records`], [`crate::console_reads`]), the citizen site
//! ([`crate::citizen_accounts`], [`crate::citizen_reads`], [`crate::enrolment_applications`]).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};

use crate::campaign_records::CampaignRecords;
use crate::citizen_accounts::CitizenAccounts;
use crate::collection::CollectionStorage;
use crate::cover_history::CoverHistoryStore;
use crate::dialect::Dialect;
use crate::enrolment_applications::EnrolmentApplications;
use crate::region_setup::RegionSetup;
use crate::settlement::SettlementStorage;
use crate::staff_accounts::StaffAccounts;
use crate::Storage;

#[async_trait]
impl<S> Storage for S
where
    S: Dialect
        + Clone
        + crate::persons::PersonStore
        + crate::assessment::AssessmentStore
        + CollectionStorage
        + SettlementStorage,
    Pool<S::DB>: RegionSetup
        + StaffAccounts
        + CampaignRecords
        + CitizenAccounts
        + EnrolmentApplications
        + CoverHistoryStore,
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
    async fn health(&self) -> Result<(), crate::StorageError> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    async fn operations_snapshot(
        &self,
        today: chrono::NaiveDate,
    ) -> Result<crate::OperationsSnapshot, crate::StorageError> {
        let sql = crate::operations_snapshot_sql(S::OUTBOX_PENDING, S::OUTBOX_DEAD);
        let row: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(&sql)
            .bind(today)
            .fetch_one(self.pool())
            .await?;
        Ok(row.into())
    }

    fn pool_status(&self) -> crate::PoolStatus {
        crate::PoolStatus {
            open: self.pool().size(),
            idle: u32::try_from(self.pool().num_idle()).unwrap_or(u32::MAX),
            max: self.pool().options().get_max_connections(),
        }
    }

    async fn upsert_region(
        &self,
        region: &yibao_domain::PoolingRegion,
    ) -> Result<(), crate::StorageError> {
        crate::region_setup::RegionSetup::upsert_region(self.pool(), region).await
    }

    async fn get_region(
        &self,
        code: yibao_domain::RegionCode,
    ) -> Result<Option<yibao_domain::PoolingRegion>, crate::StorageError> {
        crate::region_setup::RegionSetup::get_region(self.pool(), code).await
    }

    async fn list_regions(&self) -> Result<Vec<yibao_domain::PoolingRegion>, crate::StorageError> {
        crate::region_setup::RegionSetup::list_regions(self.pool()).await
    }

    async fn put_fee_policy(
        &self,
        policy: &yibao_domain::FeePolicy,
    ) -> Result<(), crate::StorageError> {
        crate::region_setup::RegionSetup::put_fee_policy(self.pool(), policy).await
    }

    async fn get_fee_policy(
        &self,
        region: yibao_domain::RegionCode,
        fee_year: yibao_domain::FeeYear,
    ) -> Result<Option<yibao_domain::FeePolicy>, crate::StorageError> {
        Ok(
            crate::region_setup::RegionSetup::fee_policies(self.pool(), region, Some(fee_year))
                .await?
                .into_iter()
                .next(),
        )
    }

    async fn list_fee_policies(
        &self,
        region: yibao_domain::RegionCode,
    ) -> Result<Vec<yibao_domain::FeePolicy>, crate::StorageError> {
        crate::region_setup::RegionSetup::fee_policies(self.pool(), region, None).await
    }

    async fn put_cover_history(
        &self,
        region: yibao_domain::RegionCode,
        rows: &[yibao_domain::cover_history_file::HistoryRow],
        imported_at: i64,
    ) -> Result<u64, crate::StorageError> {
        CoverHistoryStore::put_cover_history(self.pool(), region, rows, imported_at).await
    }

    async fn put_cover_situations(
        &self,
        region: yibao_domain::RegionCode,
        rows: &[yibao_domain::cover_history_file::SituationRow],
        imported_at: i64,
    ) -> Result<u64, crate::StorageError> {
        CoverHistoryStore::put_cover_situations(self.pool(), region, rows, imported_at).await
    }

    async fn stored_cover(
        &self,
        region: yibao_domain::RegionCode,
        id_number: &yibao_domain::IdNumber,
    ) -> Result<crate::cover_history::StoredCover, crate::StorageError> {
        CoverHistoryStore::stored_cover(self.pool(), region, id_number).await
    }

    async fn stored_covers(
        &self,
        region: yibao_domain::RegionCode,
        id_numbers: &[yibao_domain::IdNumber],
    ) -> Result<
        std::collections::HashMap<yibao_domain::IdNumber, crate::cover_history::StoredCover>,
        crate::StorageError,
    > {
        CoverHistoryStore::stored_covers(self.pool(), region, id_numbers).await
    }

    async fn put_cover_claims(
        &self,
        region: yibao_domain::RegionCode,
        rows: &[yibao_domain::cover_history_file::ClaimRow],
        imported_at: i64,
    ) -> Result<u64, crate::StorageError> {
        CoverHistoryStore::put_cover_claims(self.pool(), region, rows, imported_at).await
    }

    async fn put_family_bindings(
        &self,
        region: yibao_domain::RegionCode,
        rows: &[yibao_domain::family_account::FamilyBinding],
        imported_at: i64,
    ) -> Result<u64, crate::StorageError> {
        CoverHistoryStore::put_family_bindings(self.pool(), region, rows, imported_at).await
    }

    async fn family_bindings(
        &self,
        region: yibao_domain::RegionCode,
        employee: &yibao_domain::IdNumber,
        relatives: &[yibao_domain::IdNumber],
    ) -> Result<Vec<yibao_domain::family_account::FamilyBinding>, crate::StorageError> {
        CoverHistoryStore::family_bindings(self.pool(), region, employee, relatives).await
    }

    async fn family_bindings_of(
        &self,
        region: yibao_domain::RegionCode,
        relative: &yibao_domain::IdNumber,
    ) -> Result<Vec<yibao_domain::family_account::FamilyBinding>, crate::StorageError> {
        CoverHistoryStore::family_bindings_of(self.pool(), region, relative).await
    }

    async fn place_in_household(
        &self,
        region: yibao_domain::RegionCode,
        id_number: &yibao_domain::IdNumber,
        placement: Option<yibao_domain::household::Placement>,
        source: &crate::records::ChangeSource,
        may_change: crate::MayChange<'_>,
    ) -> Result<crate::households::PlaceOutcome, crate::StorageError> {
        crate::households::place(self, region, id_number, placement, source, may_change).await
    }

    async fn put_village_agent(
        &self,
        agent: &yibao_domain::village_agent::VillageAgent,
        actor: &str,
    ) -> Result<bool, crate::StorageError> {
        crate::village_agents::put_agent(self, agent, actor).await
    }

    async fn village_agent(
        &self,
        channel_id: &str,
        code: &yibao_domain::village_agent::AgentCode,
    ) -> Result<Option<yibao_domain::village_agent::VillageAgent>, crate::StorageError> {
        crate::village_agents::agent(self, channel_id, code).await
    }

    async fn channel_has_agents(&self, channel_id: &str) -> Result<bool, crate::StorageError> {
        crate::village_agents::channel_has_agents(self, channel_id).await
    }

    async fn village_agents(
        &self,
        region: yibao_domain::RegionCode,
    ) -> Result<Vec<yibao_domain::village_agent::VillageAgent>, crate::StorageError> {
        crate::village_agents::agents(self, region).await
    }

    async fn agent_day_lines(
        &self,
        region: yibao_domain::RegionCode,
        channel_id: &str,
        code: &yibao_domain::village_agent::AgentCode,
        day: chrono::NaiveDate,
    ) -> Result<Vec<crate::village_agents::AgentPaymentLine>, crate::StorageError> {
        crate::village_agents::day_lines(self, region, channel_id, code, day).await
    }

    async fn agent_day_totals(
        &self,
        region: yibao_domain::RegionCode,
        day: chrono::NaiveDate,
    ) -> Result<Vec<crate::village_agents::AgentDayTotal>, crate::StorageError> {
        crate::village_agents::day_totals(self, region, day).await
    }

    async fn put_agent_hand_in(
        &self,
        agent: &yibao_domain::village_agent::VillageAgent,
        day: chrono::NaiveDate,
        amount_fen: i64,
        actor: &str,
    ) -> Result<(), crate::StorageError> {
        crate::village_agents::put_hand_in(self, agent, day, amount_fen, actor).await
    }

    async fn agent_hand_ins(
        &self,
        region: yibao_domain::RegionCode,
        day: chrono::NaiveDate,
    ) -> Result<Vec<crate::village_agents::HandInRecord>, crate::StorageError> {
        crate::village_agents::hand_ins(self, region, day).await
    }

    async fn mark_sandbox_region(
        &self,
        region: yibao_domain::RegionCode,
    ) -> Result<bool, crate::StorageError> {
        crate::sandbox::mark_sandbox(self, region).await
    }

    async fn is_sandbox_region(
        &self,
        region: yibao_domain::RegionCode,
    ) -> Result<bool, crate::StorageError> {
        crate::sandbox::is_sandbox(self, region).await
    }

    async fn hold_sandbox_payable(
        &self,
        region: yibao_domain::RegionCode,
        payable_id: &str,
        locked_by: &str,
    ) -> Result<bool, crate::StorageError> {
        crate::sandbox::hold(self, region, payable_id, locked_by).await
    }

    async fn persons_on_record(
        &self,
        region: yibao_domain::RegionCode,
    ) -> Result<i64, crate::StorageError> {
        crate::sandbox::persons_on_record(self, region).await
    }

    async fn record_sandbox_scenarios(
        &self,
        region: yibao_domain::RegionCode,
        channel_id: &str,
        scenarios: &[&str],
        now: i64,
    ) -> Result<(), crate::StorageError> {
        crate::sandbox::record_scenarios(self, region, channel_id, scenarios, now).await
    }

    async fn sandbox_scenarios(
        &self,
    ) -> Result<Vec<crate::sandbox::ScenarioRecord>, crate::StorageError> {
        crate::sandbox::scenarios(self).await
    }

    async fn current_household(
        &self,
        region: yibao_domain::RegionCode,
        person: &yibao_domain::IdNumber,
    ) -> Result<Vec<yibao_domain::IdNumber>, crate::StorageError> {
        crate::households::current_household(self, region, person).await
    }

    async fn household_memberships(
        &self,
        region: yibao_domain::RegionCode,
        of: crate::households::MembershipsOf<'_>,
    ) -> Result<Vec<crate::households::MembershipRecord>, crate::StorageError> {
        crate::households::memberships(self, region, of).await
    }

    async fn put_calendar_year(
        &self,
        region: yibao_domain::RegionCode,
        year: &yibao_domain::CalendarYear,
    ) -> Result<(), crate::StorageError> {
        crate::region_setup::RegionSetup::put_calendar_year(self.pool(), region, year).await
    }

    async fn put_national_calendar_year(
        &self,
        region: yibao_domain::RegionCode,
        notice: &yibao_domain::CalendarNotice,
    ) -> Result<(), crate::StorageError> {
        crate::region_setup::RegionSetup::put_national_calendar_year(self.pool(), region, notice)
            .await
    }

    async fn working_calendar(
        &self,
        region: yibao_domain::RegionCode,
    ) -> Result<yibao_domain::WorkingCalendar, crate::StorageError> {
        crate::region_setup::RegionSetup::working_calendar(self.pool(), region).await
    }

    async fn calendar_year_record(
        &self,
        region: yibao_domain::RegionCode,
        year: i32,
    ) -> Result<Option<crate::CalendarYearRecord>, crate::StorageError> {
        crate::region_setup::RegionSetup::calendar_year_record(self.pool(), region, year).await
    }

    // --- The citizen site's reads and accounts (issue 11) ---

    fn citizen_accounts(&self) -> &dyn crate::citizen_accounts::CitizenAccounts {
        self.pool()
    }

    fn enrolment_applications(&self) -> &dyn crate::enrolment_applications::EnrolmentApplications {
        self.pool()
    }

    async fn paid_by(
        &self,
        region: yibao_domain::RegionCode,
        id_number: &yibao_domain::IdNumber,
    ) -> Result<Vec<crate::citizen_reads::PaidBy>, crate::StorageError> {
        crate::citizen_reads::paid_by(self.pool(), region.as_str(), id_number.as_str()).await
    }

    // --- The staff console's reads (issue 16) ---

    async fn money_counts(
        &self,
        query: &crate::console_reads::MoneyCountsQuery<'_>,
    ) -> Result<crate::console_reads::MoneyCounts, crate::StorageError> {
        crate::console_reads::money_counts(self.reads().pool(), query).await
    }

    async fn collection_progress(
        &self,
        region: Option<yibao_domain::RegionCode>,
        fee_year: yibao_domain::FeeYear,
        station: Option<&yibao_domain::StationCode>,
    ) -> Result<Vec<crate::records::ProgressRow>, crate::StorageError> {
        crate::console_reads::collection_progress(self.reads().pool(), region, fee_year, station)
            .await
    }

    async fn find_persons_by_name(
        &self,
        region: yibao_domain::RegionCode,
        name_prefix: &str,
        station: Option<&yibao_domain::StationCode>,
        limit: usize,
    ) -> Result<Vec<crate::records::PersonSummary>, crate::StorageError> {
        crate::console_reads::find_persons_by_name(
            self.reads().pool(),
            Self::NAME_ORDER,
            region,
            name_prefix,
            station,
            limit,
        )
        .await
    }

    // Staff, sessions, the sign-in throttle, the audit log and the import register:
    // ordinary generic code in `staff_accounts.rs`; these only forward.

    async fn create_staff(
        &self,
        account: &crate::records::StaffAccount,
    ) -> Result<(), crate::StorageError> {
        crate::staff_accounts::StaffAccounts::create_staff(self.pool(), account).await
    }

    async fn get_staff(
        &self,
        username: &str,
    ) -> Result<Option<crate::records::StaffAccount>, crate::StorageError> {
        crate::staff_accounts::StaffAccounts::get_staff(self.pool(), username).await
    }

    async fn count_staff(&self) -> Result<i64, crate::StorageError> {
        crate::staff_accounts::StaffAccounts::count_staff(self.pool()).await
    }

    async fn list_staff(&self) -> Result<Vec<crate::records::StaffAccount>, crate::StorageError> {
        crate::staff_accounts::StaffAccounts::list_staff(self.pool()).await
    }

    async fn set_staff_disabled(
        &self,
        username: &str,
        disabled: bool,
    ) -> Result<bool, crate::StorageError> {
        crate::staff_accounts::StaffAccounts::set_staff_disabled(self.pool(), username, disabled)
            .await
    }

    async fn set_staff_password(
        &self,
        username: &str,
        password_hash: &str,
        must_change: bool,
    ) -> Result<bool, crate::StorageError> {
        crate::staff_accounts::StaffAccounts::set_staff_password(
            self.pool(),
            username,
            password_hash,
            must_change,
        )
        .await
    }

    async fn create_session(
        &self,
        token_hash: &str,
        username: &str,
        expires_at: i64,
    ) -> Result<(), crate::StorageError> {
        crate::staff_accounts::StaffAccounts::create_session(
            self.pool(),
            token_hash,
            username,
            expires_at,
        )
        .await
    }

    async fn session_staff(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<crate::records::StaffAccount>, crate::StorageError> {
        crate::staff_accounts::StaffAccounts::session_staff(self.pool(), token_hash, now).await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), crate::StorageError> {
        crate::staff_accounts::StaffAccounts::delete_session(self.pool(), token_hash).await
    }

    async fn admit_login_attempt(
        &self,
        username: &str,
        address: &str,
        now: i64,
    ) -> Result<crate::records::LoginAdmission, crate::StorageError> {
        crate::staff_accounts::StaffAccounts::admit_login_attempt(
            self.pool(),
            username,
            address,
            now,
        )
        .await
    }

    async fn login_succeeded(
        &self,
        username: &str,
        address: &str,
    ) -> Result<(), crate::StorageError> {
        crate::staff_accounts::StaffAccounts::login_succeeded(self.pool(), username, address).await
    }

    async fn append_audit(
        &self,
        entry: &crate::records::AuditEntry,
    ) -> Result<(), crate::StorageError> {
        crate::staff_accounts::StaffAccounts::append_audit(self.pool(), entry).await
    }

    async fn list_audit(
        &self,
        limit: usize,
    ) -> Result<Vec<crate::records::AuditRecord>, crate::StorageError> {
        // The newest entries: the filtered read with no filter.
        self.audit_entries(&crate::records::AuditFilter::default(), limit)
            .await
    }

    async fn audit_entries(
        &self,
        filter: &crate::records::AuditFilter,
        limit: usize,
    ) -> Result<Vec<crate::records::AuditRecord>, crate::StorageError> {
        crate::staff_accounts::StaffAccounts::audit_entries(self.reads().pool(), filter, limit)
            .await
    }

    async fn record_import(
        &self,
        summary: &crate::records::ImportSummary,
        actor: &str,
    ) -> Result<(), crate::StorageError> {
        crate::staff_accounts::StaffAccounts::record_import(self.pool(), summary, actor).await
    }

    // --- The console's campaign records (issue 16): ordinary generic code in
    // `campaign_records.rs` and `console_reads.rs`; these only forward. ---

    async fn put_rejection_file(
        &self,
        file: &crate::records::RejectionFile,
    ) -> Result<(), crate::StorageError> {
        crate::campaign_records::CampaignRecords::put_rejection_file(self.pool(), file).await
    }

    async fn get_rejection_file(
        &self,
        region: &str,
        import_id: &str,
    ) -> Result<Option<crate::records::RejectionFile>, crate::StorageError> {
        crate::campaign_records::CampaignRecords::get_rejection_file(self.pool(), region, import_id)
            .await
    }

    async fn unpaid_after(
        &self,
        query: &crate::console_reads::UnpaidBatchQuery<'_>,
    ) -> Result<Vec<crate::records::UnpaidRow>, crate::StorageError> {
        crate::console_reads::unpaid_after(self.reads().pool(), query).await
    }

    async fn unpaid_page(
        &self,
        region: yibao_domain::RegionCode,
        fee_year: yibao_domain::FeeYear,
        station: Option<&yibao_domain::StationCode>,
        offset: usize,
        limit: usize,
    ) -> Result<crate::records::UnpaidPage, crate::StorageError> {
        crate::campaign_records::CampaignRecords::unpaid_page(
            self.reads().pool(),
            region,
            fee_year,
            station,
            offset,
            limit,
        )
        .await
    }

    async fn add_follow_up(
        &self,
        f: &crate::records::NewFollowUp,
    ) -> Result<i64, crate::StorageError> {
        crate::campaign_records::CampaignRecords::add_follow_up(self.pool(), f).await
    }

    async fn follow_ups(
        &self,
        region: yibao_domain::RegionCode,
        fee_year: yibao_domain::FeeYear,
        id_number: &yibao_domain::IdNumber,
    ) -> Result<Vec<crate::records::FollowUpRecord>, crate::StorageError> {
        crate::campaign_records::CampaignRecords::follow_ups(
            self.pool(),
            region,
            fee_year,
            id_number,
        )
        .await
    }

    async fn submit_uninsured(
        &self,
        u: &crate::records::UninsuredSubmission,
    ) -> Result<(), crate::StorageError> {
        crate::campaign_records::CampaignRecords::submit_uninsured(self.pool(), u).await
    }

    async fn uninsured_submission(
        &self,
        region: yibao_domain::RegionCode,
        fee_year: yibao_domain::FeeYear,
        station: &yibao_domain::StationCode,
    ) -> Result<Option<crate::records::UninsuredSubmission>, crate::StorageError> {
        crate::console_reads::uninsured_submission(self.pool(), region, fee_year, station.as_str())
            .await
    }

    async fn uninsured_submissions(
        &self,
        region: yibao_domain::RegionCode,
        fee_year: yibao_domain::FeeYear,
    ) -> Result<Vec<crate::records::UninsuredSubmission>, crate::StorageError> {
        crate::campaign_records::CampaignRecords::uninsured_submissions(
            self.reads().pool(),
            region,
            fee_year,
        )
        .await
    }

    async fn prune_rejection_files(&self, before: i64) -> Result<u64, crate::StorageError> {
        crate::campaign_records::CampaignRecords::prune_rejection_files(self.pool(), before).await
    }

    // --- What each backend does its own way (its Dialect) ---

    fn backend(&self) -> crate::Backend {
        S::BACKEND
    }

    async fn refresh_statistics(&self) -> Result<(), crate::StorageError> {
        Dialect::refresh_statistics(self).await
    }

    async fn refresh_statistics_of(
        &self,
        tables: crate::GrowingTables,
    ) -> Result<(), crate::StorageError> {
        for table in tables.tables() {
            sqlx::raw_sql(&format!("ANALYZE {table}"))
                .execute(self.pool())
                .await?;
        }
        Dialect::share_statistics(self).await
    }

    async fn housekeeping(&self) -> Result<crate::Housekeeping, crate::StorageError> {
        Dialect::housekeeping(self).await
    }

    fn with_own_connections(&self, connections: u32) -> Option<std::sync::Arc<dyn Storage>> {
        Dialect::with_own_connections(self, connections)
    }

    fn handle(&self) -> std::sync::Arc<dyn Storage> {
        std::sync::Arc::new(self.clone())
    }

    async fn bound_wal(&self) -> Result<crate::Housekeeping, crate::StorageError> {
        Dialect::bound_wal(self).await
    }

    fn replica_pool_status(&self) -> Option<crate::PoolStatus> {
        Dialect::replica_pool_status(self)
    }

    fn replica_state(&self) -> Option<crate::read_routing::ReplicaState> {
        Dialect::replica_state(self)
    }

    async fn check_replica(
        &self,
    ) -> Result<Option<(crate::read_routing::ReplicaState, bool)>, crate::StorageError> {
        Dialect::check_replica(self).await
    }
}
