//! The pull-request merge process manager: chapter created, XP credited, owner notified, in the
//! merge's correlation, caused by the merge event; restarted mid-way it sends nothing twice.

use async_trait::async_trait;
use recount::projection::{
    DeadLetterPolicy, Process, ProcessManager, Runner, RunnerOptions, Steps,
};
use recount::{BoxError, CommandContext, Cursor, EventStore, LogFilter, RecordedEvent, Repository};
use std::sync::atomic::{AtomicBool, Ordering};
use storychain::domain::{
    ChapterAccess, ChapterTree, Genre, NewChapter, PullRequestEvent, Verdict, Visibility,
};
use storychain::process::MergeManager;
use storychain::readmodel::{ReadModels, MERGED_PR_XP};
use storychain::StoryChain;
use uuid::Uuid;

struct Scene {
    _dir: tempfile::TempDir,
    app: StoryChain,
    owner: String,
    author: String,
    story: String,
    merged: RecordedEvent,
}

/// A story by `owner`, a pull request by `author` against its first chapter, approved and merged.
async fn merged_pr() -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let app = StoryChain::open(dir.path().join("storychain.db"))
        .await
        .unwrap();
    let owner = app.register("owner", "Owner").await.unwrap().id;
    let author = app.register("author", "Author").await.unwrap().id;
    let story = app
        .create_story(&owner, "Merged", Genre::Mystery, Visibility::Private)
        .await
        .unwrap()
        .id;
    let root = app
        .add_chapter(&story, &owner, "One", "First.", None)
        .await
        .unwrap()
        .id;
    let pr = app
        .open_pr(&story, &root, &author, "Two", "Second, by a contributor.")
        .await
        .unwrap()
        .id;
    app.review_pr(&pr, &owner, Verdict::Approve, "yes")
        .await
        .unwrap();
    app.merge_pr(&pr, &owner).await.unwrap();
    let merged = app
        .store()
        .read_all(Cursor::START, &LogFilter::all().event_type("pr.merged"), 10)
        .await
        .unwrap()
        .events
        .remove(0);
    Scene {
        _dir: dir,
        app,
        owner,
        author,
        story,
        merged,
    }
}

/// Every event caused by the merge, with the checks every one of them must pass.
async fn caused_by(scene: &Scene) -> Vec<RecordedEvent> {
    let merge_meta = scene.merged.metadata().unwrap();
    let all = scene
        .app
        .store()
        .read_all(scene.merged.cursor, &LogFilter::all(), usize::MAX)
        .await
        .unwrap()
        .events;
    let caused: Vec<_> = all
        .into_iter()
        .filter(|e| e.metadata().unwrap().causation_id == Some(scene.merged.id))
        .collect();
    for e in &caused {
        let meta = e.metadata().unwrap();
        assert_eq!(
            meta.correlation_id, merge_meta.correlation_id,
            "{} keeps the merge's correlation id",
            e.event_type
        );
        assert!(meta.correlation_id.is_some());
    }
    caused
}

async fn check_outcome(scene: &Scene) {
    let caused = caused_by(scene).await;
    let types: Vec<&str> = caused.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "chapter.created",
            "user.xp_credited",
            "notification.sent",
            "notification.sent"
        ],
        "each step once"
    );
    let PullRequestEvent::Merged { chapter_id, .. } = scene.merged.decode().unwrap() else {
        panic!()
    };
    let tree = scene.app.chapter_tree(&scene.story).await.unwrap();
    assert_eq!(
        tree.chapters[&chapter_id].author, scene.author,
        "the chapter exists, by the PR's author"
    );
    scene.app.settle().await.unwrap();
    let models = ReadModels::open(scene.app.store()).await.unwrap();
    let profile = models
        .profiles(std::slice::from_ref(&scene.author), 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        profile.xp,
        i64::from(MERGED_PR_XP) + 20,
        "merged-PR XP credited once, plus the chapter's"
    );
    assert!(profile.badges.contains(&"first-merged-pr".to_owned()));
    let inbox = models.inbox(&scene.owner, 50).await.unwrap();
    assert_eq!(
        inbox.iter().filter(|n| n.kind == "pr_merged").count(),
        1,
        "owner notified once: {inbox:?}"
    );
    assert!(models
        .chapter_tree(&scene.story)
        .await
        .unwrap()
        .iter()
        .any(|c| c.chapter_id == chapter_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_creates_the_chapter_credits_xp_and_notifies_in_the_merge_correlation() {
    let scene = merged_pr().await;
    let store = scene.app.store().clone();
    let runner = Runner::new(
        store.clone(),
        Process::new(store, MergeManager::new(scene.app.clone())),
    );
    assert_eq!(runner.catch_up().await.unwrap(), 1);
    check_outcome(&scene).await;
    // `settle` ran the managers meanwhile (and moved this one's checkpoint): a runner that
    // starts now, like a restarted process, finds nothing left to handle.
    let store = scene.app.store().clone();
    let restarted = Runner::new(
        store.clone(),
        Process::new(store, MergeManager::new(scene.app.clone())),
    );
    assert_eq!(
        restarted.catch_up().await.unwrap(),
        0,
        "nothing handled twice"
    );
}

/// Crashes after the inner manager sent its commands but before the runner saved its
/// position: the next run handles the same event again.
struct CrashOnce {
    inner: MergeManager,
    crashed: AtomicBool,
}

#[async_trait]
impl ProcessManager for CrashOnce {
    type State = ();

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn filter(&self) -> LogFilter {
        self.inner.filter()
    }

    async fn handle(
        &self,
        state: &mut (),
        event: &RecordedEvent,
        steps: &mut Steps,
    ) -> Result<(), BoxError> {
        self.inner.handle(state, event, steps).await?;
        if !self.crashed.swap(true, Ordering::SeqCst) {
            return Err("crash before the position is saved".into());
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_manager_restarted_mid_way_sends_no_command_twice() {
    let scene = merged_pr().await;
    // A first run died right after step 0: the chapter was written with step 0's command id.
    let PullRequestEvent::Merged { chapter_id, at, .. } = scene.merged.decode().unwrap() else {
        panic!()
    };
    let pr = scene
        .app
        .pull_request(scene.merged.stream.id())
        .await
        .unwrap();
    let ctx = CommandContext::caused_by(&scene.merged)
        .unwrap()
        .with_command_id(Uuid::new_v5(&scene.merged.id, b"pr-merge:step-0"));
    let chapter = NewChapter {
        chapter_id,
        author: scene.author.clone(),
        title: pr.title,
        content: pr.content,
        parent: Some(pr.base_chapter),
    };
    let access = ChapterAccess {
        story_open: true,
        may_write: true,
    };
    let chapters = Repository::<ChapterTree, _>::new(scene.app.store().clone());
    chapters
        .execute(&scene.story, &ctx, |t| {
            t.create(&scene.story, access, &chapter, at)
        })
        .await
        .unwrap();
    // The restarted manager handles the event in full, then crashes before saving; the next
    // start handles it yet again.
    let manager = CrashOnce {
        inner: MergeManager::new(scene.app.clone()),
        crashed: AtomicBool::new(false),
    };
    // One attempt, then stop: the crash ends this run as a crash would end the process.
    let options = RunnerOptions {
        max_attempts: 1,
        dead_letters: Some(DeadLetterPolicy::Stop),
        ..RunnerOptions::default()
    };
    let store = scene.app.store().clone();
    let runner = Runner::with_options(store.clone(), Process::new(store, manager), options);
    assert!(
        runner.catch_up().await.is_err(),
        "the crash stopped the runner"
    );
    assert_eq!(
        runner.catch_up().await.unwrap(),
        1,
        "the event is handled again after the restart"
    );
    check_outcome(&scene).await;
}
