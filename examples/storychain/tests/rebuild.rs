//! `generate` a log, build every projection live, rebuild each beside the live one, and
//! compare: the rebuilt read model equals the live one.

use storychain::commands::generate_into;
use storychain::readmodel::{active, ReadModels, PROJECTIONS};
use storychain::StoryChain;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilt_read_models_equal_those_built_live() {
    let dir = tempfile::tempdir().unwrap();
    let app = StoryChain::open(dir.path().join("storychain.db"))
        .await
        .unwrap();
    let report = generate_into(&app, 20_000, 11, 2, |_| {}).await.unwrap();
    assert!(report.events >= 20_000, "{report:?}");
    assert!(
        report.refused > 0,
        "a realistic log includes refused commands"
    );
    app.settle().await.unwrap();
    for name in PROJECTIONS {
        let live = ReadModels::open(app.store())
            .await
            .unwrap()
            .dump(name, 1)
            .await
            .unwrap();
        assert!(live.len() > 10, "{name} has rows");
        let mut calls = Vec::new();
        let (from, to, n) = app.rebuild(name, 500, |p| calls.push(p)).await.unwrap();
        assert_eq!((from, to), (1, 2));
        assert!(n > 0);
        let last = calls.last().unwrap();
        assert_eq!(
            (last.done, last.remaining),
            (n, 0),
            "progress ends at done = total"
        );
        assert!(calls.len() > 2, "progress reported along the way");
        assert_eq!(
            active(app.store(), name).await.unwrap(),
            2,
            "readers switched"
        );
        let models = ReadModels::open(app.store()).await.unwrap();
        assert_eq!(
            models.dump(name, 2).await.unwrap(),
            live,
            "{name}: rebuilt equals live"
        );
        assert!(
            models.dump(name, 1).await.unwrap().is_empty(),
            "{name} v1 dropped"
        );
    }
    let status = app.projection_status().await.unwrap();
    assert!(
        status.iter().all(|s| s.version == 2 && s.lag == 0),
        "{status:?}"
    );
}
