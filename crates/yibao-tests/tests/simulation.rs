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
