//! Invariants under concurrent commands, held by optimistic concurrency alone.

use recount::{Cursor, EventStore, LogFilter};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use storychain::app::AppError;
use storychain::domain::{EngagementEvent, Genre, Target, UsernameError, Visibility};
use storychain::readmodel::{CatalogueQuery, ReadModels};
use storychain::StoryChain;
use tokio::sync::Barrier;

async fn app() -> (tempfile::TempDir, StoryChain) {
    let dir = tempfile::tempdir().unwrap();
    let app = StoryChain::open(dir.path().join("storychain.db"))
        .await
        .unwrap();
    (dir, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_tasks_racing_to_register_one_username_let_exactly_one_win() {
    let (_dir, app) = app().await;
    for round in 0..10 {
        let name = format!("racer{round}");
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = (0..2)
            .map(|i| {
                let (app, barrier, name) = (app.clone(), barrier.clone(), name.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    app.register(&name, &format!("Racer {i}")).await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        let winners: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        let loser = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
        assert!(
            matches!(loser, AppError::Username(UsernameError::Taken(n)) if *n == name),
            "{loser:?}"
        );
        assert_eq!(
            app.user_id_of(&name).await.unwrap().as_deref(),
            Some(winners[0].id.as_str())
        );
    }
    let reserved = app
        .store()
        .read_all(
            Cursor::START,
            &LogFilter::all().event_type("username.reserved"),
            100,
        )
        .await
        .unwrap();
    assert_eq!(reserved.events.len(), 10, "one reservation per name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_tasks_voting_and_branching_one_story_keep_one_vote_per_user_and_target() {
    let (_dir, app) = app().await;
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(
            app.register(&format!("voter{i}"), "Voter")
                .await
                .unwrap()
                .id,
        );
    }
    let story = app
        .create_story(&users[0], "Crowded", Genre::Horror, Visibility::Public)
        .await
        .unwrap()
        .id;
    let root = app
        .add_chapter(&story, &users[0], "Root", "It begins.", None)
        .await
        .unwrap()
        .id;
    let barrier = Arc::new(Barrier::new(20));
    // Two tasks per user: both vote on the story and on the root chapter at once, with
    // opposite values, and each continues the root chapter.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (app, barrier, user, story, root) = (
                app.clone(),
                barrier.clone(),
                users[i % 10].clone(),
                story.clone(),
                root.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                let value = if i < 10 { 1 } else { -1 };
                let v1 = app.vote(&user, &Target::story(&story), value).await;
                let chapter = app
                    .add_chapter(
                        &story,
                        &user,
                        &format!("Branch {i}"),
                        "Another way.",
                        Some(&root),
                    )
                    .await;
                let v2 = app
                    .vote(&user, &Target::chapter(&story, &root), -value)
                    .await;
                (v1.map(drop), chapter.map(drop), v2.map(drop))
            })
        })
        .collect();
    for t in tasks {
        let (v1, chapter, v2) = t.await.unwrap();
        chapter.expect("every continuation is written, deciding again after conflicts");
        for v in [v1, v2] {
            // The second vote of a user either replaced the first or found it already cast.
            assert!(matches!(v, Ok(()) | Err(AppError::Engagement(_))), "{v:?}");
        }
    }
    assert!(
        app.conflict_retries() > 0,
        "the writers raced: some decided again after a conflict"
    );
    app.settle().await.unwrap();
    let log = app
        .store()
        .read_all(
            Cursor::START,
            &LogFilter::all().category("engagement"),
            usize::MAX,
        )
        .await
        .unwrap()
        .events;
    let mut casts: HashMap<(String, String), u32> = HashMap::new();
    let mut current: BTreeMap<(String, String), i64> = BTreeMap::new();
    for e in &log {
        match e.decode::<EngagementEvent>().unwrap() {
            EngagementEvent::VoteCast {
                user_id,
                target,
                value,
                ..
            } => {
                *casts
                    .entry((user_id.clone(), target.id().to_owned()))
                    .or_default() += 1;
                current.insert((user_id, target.id().to_owned()), value.into());
            }
            EngagementEvent::VoteChanged {
                user_id,
                target,
                value,
                ..
            } => {
                current.insert((user_id, target.id().to_owned()), value.into());
            }
            _ => {}
        }
    }
    assert_eq!(
        casts.len(),
        20,
        "every user voted on the story and the chapter"
    );
    assert!(
        casts.values().all(|n| *n == 1),
        "at most one vote cast per (user, target): {casts:?}"
    );
    let recomputed: i64 = current.values().sum();
    let models = ReadModels::open(app.store()).await.unwrap();
    let row = models
        .catalogue(&CatalogueQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.story_id == story)
        .unwrap();
    assert_eq!(
        row.votes, recomputed,
        "catalogue total equals the total recomputed from the log"
    );
    assert_eq!(
        (row.chapters, row.branches),
        (21, 19),
        "root + 20 continuations, 19 of them branches"
    );
    let tree = app.chapter_tree(&story).await.unwrap();
    assert_eq!(tree.chapters[&root].children, 20);
}
