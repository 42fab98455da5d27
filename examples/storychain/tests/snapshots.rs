//! A story's chapter tree is one stream that grows with every chapter: it is snapshotted, and
//! a tree loaded from its snapshot equals the tree replayed from every event.

use recount::{Aggregate, EventStore, StreamId};
use storychain::domain::{ChapterTree, ChapterTreeEvent, Genre, Visibility};
use storychain::StoryChain;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_chapter_tree_is_loaded_from_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let app = StoryChain::open(dir.path().join("s.db")).await.unwrap();
    let ada = app.register("ada", "Ada").await.unwrap().id;
    let story = app
        .create_story(&ada, "Long", Genre::Fantasy, Visibility::Public)
        .await
        .unwrap()
        .id;
    let mut parent: Option<String> = None;
    for n in 0..110 {
        let id = app
            .add_chapter(
                &story,
                &ada,
                &format!("Part {n}"),
                "More words.",
                parent.as_deref(),
            )
            .await
            .unwrap()
            .id;
        parent = Some(id);
    }
    let stream = StreamId::new(ChapterTree::CATEGORY, &story).unwrap();
    let snapshot = app
        .store()
        .load_snapshot(&stream)
        .await
        .unwrap()
        .expect("a snapshot after 100 events");
    assert!(snapshot.version >= 100, "{}", snapshot.version);
    assert_eq!(snapshot.tag, ChapterTree::snapshot_tag());
    let events = app
        .store()
        .read_stream(&stream, 1, usize::MAX)
        .await
        .unwrap();
    let replayed = ChapterTree::replayed(
        events
            .iter()
            .map(|e| e.decode::<ChapterTreeEvent>().unwrap()),
    );
    assert_eq!(app.chapter_tree(&story).await.unwrap(), replayed);
    assert_eq!(replayed.chapters.len(), 110);
}
