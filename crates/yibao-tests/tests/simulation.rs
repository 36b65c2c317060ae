//! The channel simulator against a demo server, then the protocol's invariants over the database.

use yibao_server::{AppState, Clock, ServerSettings};
use yibao_tests::{on_each_test_db, TestServer};

#[tokio::test]
async fn the_simulator_plays_against_the_demo_and_the_invariants_hold() {
    on_each_test_db(|db| async move {
        let storage = db.storage.clone();
        let today = Clock::system().today();
        yibao::demo::load(storage.as_ref()).await.unwrap();
        yibao::demo::load_people(storage.as_ref(), today)
            .await
            .unwrap();
        let mut state = AppState::new(storage.clone(), Clock::system());
        state.payment_batcher = Some(yibao_server::channel::batcher::PaymentBatcher::spawn(
            storage.clone(),
            32,
        ));
        let server = TestServer::start_with_state(state, ServerSettings::default()).await;
        let tally = yibao::simulate::run(yibao::simulate::SimulationPlan {
            base_url: server.base_url.clone(),
            channels: yibao::demo::DEMO_CHANNELS
                .iter()
                .map(|(id, _, secret, _)| (id.to_string(), secret.to_string()))
                .collect(),
            residents: yibao::demo::demo_residents(today),
            operations: 240,
            concurrency: 8,
            seed: 7,
        })
        .await
        .unwrap();
        let count = |what: &str| tally.counts.get(what).copied().unwrap_or(0);
        assert!(count("search") >= 240, "{:?}", tally.counts);
        assert!(count("paid") > 0, "{:?}", tally.counts);
        assert_eq!(count("repeat_DIFFERENT_answer"), 0, "{:?}", tally.counts);
        assert_eq!(count("statement"), 3);
        assert!(
            tally.counts.keys().all(|k| !k.starts_with("error:")),
            "{:?}",
            tally.counts
        );
        let report = storage.check_invariants().await.unwrap();
        assert!(report.holds(), "{report:?}");
        assert!(report.payments_checked > 0);
    })
    .await;
}

/// The load generator (`yibao-lab load`) against an in-process server: every operation of the
/// default mix, then its own ledger against the API and the database, and the invariants.
#[tokio::test]
async fn the_load_generator_ledger_matches_the_api_and_the_database() {
    on_each_test_db(|db| async move {
        use yibao_lab::load::{LoadPlan, StopRule};
        let url = yibao_storage::DatabaseUrl::parse(&db.url).unwrap();
        let mut plan = LoadPlan::new(StopRule::Operations(400));
        plan.channels = 3;
        plan.concurrency = 8;
        plan.payers = 500;
        plan.baseline = false;
        let report = yibao_lab::load::run(&url, db.storage.clone(), None, plan)
            .await
            .unwrap();
        assert!(report.ok(), "{:#?}", report.violations);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        for kind in [
            "search",
            "open_order",
            "pay_order",
            "pay",
            "duplicate",
            "paid_again",
            "reversal",
            "reversal_early",
            "late_report",
            "race_report",
        ] {
            assert!(report.count(kind) > 0, "no {kind}: {:?}", report.kinds);
        }
        assert!(report.ledger_transactions > 50, "{report:?}");
        // A second run on the same database finds the first run's payables paid and carries on.
        let mut again = LoadPlan::new(StopRule::Operations(100));
        again.concurrency = 4;
        again.payers = 500;
        again.baseline = false;
        let report = yibao_lab::load::run(&url, db.storage.clone(), None, again)
            .await
            .unwrap();
        assert!(report.ok(), "{:#?}", report.violations);
    })
    .await;
}

/// The reconciliation benchmark (`yibao-lab reconcile`) at a small size, so that it keeps
/// running as the schema moves: every difference class found exactly as the statement was built.
#[tokio::test]
async fn the_reconciliation_benchmark_finds_each_difference_it_planted() {
    on_each_test_db(|db| async move {
        let url = yibao_storage::DatabaseUrl::parse(&db.url).unwrap();
        let figures =
            yibao_lab::bench_reconcile::reconcile_statement(&url, db.storage.as_ref(), 200)
                .await
                .unwrap();
        let s = &figures.summary;
        // 190 payments listed, 10 of them twice, and 10 the platform never saw.
        assert_eq!(figures.lines, 210);
        assert_eq!(
            (
                s.matched,
                s.channel_only,
                s.platform_only,
                s.amount_mismatch,
                s.duplicate
            ),
            (170, 10, 10, 10, 10)
        );
    })
    .await;
}
