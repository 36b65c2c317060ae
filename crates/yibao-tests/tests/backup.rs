//! `yibao backup` of a SQLite database under load, and the restore: the copy opens as a database
//! of its own, and the invariants that `yibao check` asserts hold on it.

use std::time::Duration;

use yibao_lab::load::{LoadPlan, StopRule};
use yibao_storage::payments::PaymentStore;
use yibao_storage::{DatabaseUrl, Storage};
use yibao_storage_sqlite::SqliteStorage;
use yibao_tests::fresh_sqlite;

#[tokio::test]
async fn a_backup_taken_under_load_restores_and_its_invariants_hold() {
    let db = fresh_sqlite().await;
    let url = DatabaseUrl::parse(&db.db.url).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = db.db.storage.clone();
    let load = tokio::spawn({
        let url = url.clone();
        let storage = storage.clone();
        async move {
            let mut plan = LoadPlan::new(StopRule::Operations(1500));
            plan.channels = 3;
            plan.concurrency = 8;
            plan.payers = 500;
            plan.baseline = false;
            yibao_lab::load::run(&url, storage, None, plan).await
        }
    });
    // Wait for payments to be flowing, then copy twice while the load goes on.
    let mut backups = Vec::new();
    for _ in 0..600 {
        if load.is_finished() {
            break;
        }
        let report = storage.check_invariants().await.unwrap();
        if report.payments_checked > 20 {
            let file = dir.path().join(format!("backup-{}.db", backups.len()));
            let done = yibao::backup::backup(&url, &file).await.unwrap();
            assert!(done.bytes > 0);
            backups.push((file, report.payments_checked));
            if backups.len() == 2 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = load.await.unwrap().unwrap();
    assert!(report.ok(), "{:#?}", report.violations);
    assert_eq!(
        backups.len(),
        2,
        "the load ended before two backups were taken"
    );
    let finished = storage.check_invariants().await.unwrap().payments_checked;

    for (file, seen_before) in &backups {
        let restored = SqliteStorage::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        let check = restored.check_invariants().await.unwrap();
        assert!(check.holds(), "{}: {check:?}", file.display());
        assert!(
            check.payments_checked >= *seen_before,
            "the copy lost payments: {} < {seen_before}",
            check.payments_checked
        );
        assert!(
            check.payments_checked <= finished,
            "{check:?} vs {finished}"
        );
        assert!(!restored.list_regions().await.unwrap().is_empty());
    }
    db.cleanup().await;
}

#[tokio::test]
async fn a_backup_never_overwrites_and_postgresql_is_pointed_to_its_tools() {
    let db = fresh_sqlite().await;
    let url = DatabaseUrl::parse(&db.db.url).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("copy.db");
    std::fs::write(&file, b"precious").unwrap();
    let err = yibao::backup::backup(&url, &file).await.unwrap_err();
    assert!(err.to_string().contains("已存在"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");

    let postgres = DatabaseUrl::parse("postgres://postgres@127.0.0.1:5432/postgres").unwrap();
    let err = yibao::backup::backup(&postgres, &dir.path().join("pg.db"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("pg_dump"), "{err}");
    assert!(err.to_string().contains("docs/operations.md"), "{err}");
    db.cleanup().await;
}
