//! A database that goes away (a restart, a crash) is 503 `SERVICE_UNAVAILABLE`, never 500: found by
//! `scripts/chaos`, where PostgreSQL restarts under load answered payment reports and searches with
//! 500 `INTERNAL_ERROR` ("terminating connection due to administrator command", and through group
//! commit every failed batch).

use std::borrow::Cow;
use std::error::Error as StdError;

use yibao_server::error::{ErrorCode, ServiceError};
use yibao_storage::collection::NewPayment;
use yibao_storage::StorageError;
use yibao_tests::on_each_test_db;

/// A database error as PostgreSQL reports it, with a SQLSTATE.
#[derive(Debug)]
struct PgLike {
    code: &'static str,
    message: &'static str,
}

impl std::fmt::Display for PgLike {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message)
    }
}

impl StdError for PgLike {}

impl sqlx::error::DatabaseError for PgLike {
    fn message(&self) -> &str {
        self.message
    }
    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.code))
    }
    fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        match self.code {
            "23505" => sqlx::error::ErrorKind::UniqueViolation,
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}

fn storage_error(code: &'static str, message: &'static str) -> StorageError {
    StorageError::from(sqlx::Error::Database(Box::new(PgLike { code, message })))
}

#[test]
fn a_database_shutting_down_or_unreachable_is_unavailable() {
    for (code, message) in [
        (
            "57P01",
            "terminating connection due to administrator command",
        ),
        (
            "57P02",
            "terminating connection due to crash of another server process",
        ),
        ("57P03", "the database system is starting up"),
        ("08006", "connection failure"),
        ("08001", "could not connect"),
        // Rolled back whole to break a circle of lock waits: the same request again succeeds.
        ("40P01", "deadlock detected"),
    ] {
        let err = storage_error(code, message);
        assert!(
            matches!(err, StorageError::Unavailable(_)),
            "{code}: {err:?}"
        );
        assert_eq!(ServiceError::from(err).code, ErrorCode::ServiceUnavailable);
    }
    // Everything else stays what it was.
    assert!(matches!(
        storage_error("23505", "duplicate key"),
        StorageError::Constraint { .. }
    ));
    assert!(matches!(
        storage_error("42P01", "relation does not exist"),
        StorageError::Other(_)
    ));
    assert!(matches!(
        storage_error("40001", "could not serialize access"),
        StorageError::Other(_)
    ));
}

#[tokio::test]
async fn group_commit_keeps_an_unavailable_database_unavailable() {
    on_each_test_db(|db| async move {
        let batcher = yibao_server::channel::batcher::PaymentBatcher::spawn(db.storage.clone(), 32);
        // The database goes away: every connection closed.
        if let Some(lite) = &db.sqlite {
            lite.pool().close().await;
        }
        if let Some(pg) = &db.postgres {
            pg.pool().close().await;
        }
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        let payment = NewPayment {
            nonce: None,
            region: "320600".parse().unwrap(),
            payment_no: "PMoutage".into(),
            refund_no: "RFoutage".into(),
            channel_id: "bank".into(),
            channel_txn_id: "T-outage".into(),
            order_no: None,
            lock_holder: None,
            refund_all: None,
            payable_ids: vec!["P1".into()],
            amount_fen: yibao_domain::Fen::new(43000).unwrap(),
            paid_at: "2026-11-02T10:15:00+08:00".into(),
            paid_on: today,
            fingerprint: "f".into(),
            refund_due: yibao_domain::DueDate {
                date: today,
                years_without_calendar: Vec::new(),
            },
            issued_on: today,
            now: 0,
            check_codes: vec!["abc123".into()],
            event_ids: vec!["EVoutage".into()],
            cover: Vec::new(),
        };
        let err = batcher.report(payment).await.unwrap_err();
        assert!(matches!(err, StorageError::Unavailable(_)), "{err:?}");
        assert_eq!(ServiceError::from(err).code, ErrorCode::ServiceUnavailable);
    })
    .await;
}
