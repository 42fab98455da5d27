//! `storychain generate`: a realistic synthetic log written through the repositories, by a
//! few concurrent writers, each with its own users and stories that interact.

use super::{progress_bar, CliResult};
use crate::app::{AppError, StoryChain, Written};
use crate::domain::{Genre, Role, Target, Verdict, Visibility};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const WORDS: [&str; 24] = [
    "brass", "orchard", "winter", "signal", "ember", "tide", "lantern", "hollow", "glass", "raven",
    "clock", "harbor", "silver", "thorn", "echo", "drift", "meadow", "storm", "cipher", "velvet",
    "ash", "comet", "willow", "iron",
];

/// What a `generate` run wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerateReport {
    /// Events written.
    pub events: u64,
    /// Commands accepted.
    pub accepted: u64,
    /// Commands refused by the domain (a realistic share: double votes, outsiders writing in
    /// private stories, …).
    pub refused: u64,
}

/// `storychain generate --events N`: writes about N events, then runs process managers and
/// projections so the read models are live.
pub async fn generate(db: &Path, events: u64, seed: u64, writers: usize) -> CliResult {
    let app = super::open_app(db).await?;
    let bar = progress_bar(
        events,
        "generating [{bar:40}] {pos}/{len} events, {per_sec}, ETA {eta}",
    );
    let started = Instant::now();
    let progress = {
        let bar = bar.clone();
        move |n: u64| bar.set_position(n)
    };
    let report = generate_into(&app, events, seed, writers, progress).await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "generated {} events from {} commands ({} refused by the domain) in {secs:.1}s ({:.0} events/s)",
        report.events, report.accepted, report.refused, report.events as f64 / secs
    );
    let started = Instant::now();
    let settled = app.settle().await?;
    println!(
        "process managers handled {} events, projections {} events, in {:.1}s",
        settled.processed,
        settled.projected,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes about `target` events through `app` with `writers` concurrent writers; `progress`
/// gets the running total.
pub async fn generate_into(
    app: &StoryChain,
    target: u64,
    seed: u64,
    writers: usize,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> Result<GenerateReport, AppError> {
    let total = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(progress);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut tasks = Vec::new();
    for w in 0..writers.max(1) {
        let tag = format!("w{w}{}", &run[..4]);
        let mut world = World::new(app.clone(), tag, seed.wrapping_add(w as u64));
        let (total, progress) = (total.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            while total.load(Ordering::Relaxed) < target {
                let n = world.act().await?;
                progress(total.fetch_add(n, Ordering::Relaxed) + n);
            }
            Ok::<_, AppError>(world.report)
        }));
    }
    let mut report = GenerateReport::default();
    for t in tasks {
        let r = t
            .await
            .map_err(|e| AppError::Store(recount::Error::store(e)))??;
        report.events += r.events;
        report.accepted += r.accepted;
        report.refused += r.refused;
    }
    Ok(report)
}

struct StoryInfo {
    id: String,
    owner: usize,
    private: bool,
    members: Vec<usize>,
    chapters: Vec<String>,
}

/// One writer's users and stories.
struct World {
    app: StoryChain,
    rng: StdRng,
    tag: String,
    users: Vec<String>,
    stories: Vec<StoryInfo>,
    prs: Vec<(String, usize)>,
    reads: HashMap<(usize, String), u8>,
    report: GenerateReport,
}

/// Stories stop growing here, so a chapter tree stays a realistic size to load.
const MAX_CHAPTERS: usize = 40;

impl World {
    fn new(app: StoryChain, tag: String, seed: u64) -> Self {
        World {
            app,
            rng: StdRng::seed_from_u64(seed),
            tag,
            users: Vec::new(),
            stories: Vec::new(),
            prs: Vec::new(),
            reads: HashMap::new(),
            report: GenerateReport::default(),
        }
    }

    fn words(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| WORDS[self.rng.gen_range(0..WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn user(&mut self) -> usize {
        self.rng.gen_range(0..self.users.len())
    }

    fn story(&mut self) -> Option<usize> {
        (!self.stories.is_empty()).then(|| self.rng.gen_range(0..self.stories.len()))
    }

    /// Counts an outcome: events written, or a refusal. Store failures stop the run.
    fn count(&mut self, r: Result<Written, AppError>) -> Result<(u64, String), AppError> {
        match r {
            Ok(w) => {
                self.report.accepted += 1;
                self.report.events += w.events.len() as u64;
                Ok((w.events.len() as u64, w.id))
            }
            Err(e) if e.is_rejection() => {
                self.report.refused += 1;
                Ok((0, String::new()))
            }
            Err(e) => Err(e),
        }
    }

    /// One command, picked at random with realistic weights; returns events written.
    async fn act(&mut self) -> Result<u64, AppError> {
        let roll = self.rng.gen_range(0..100);
        if self.users.len() < 5 || roll < 4 {
            return self.register().await;
        }
        match (roll, self.story()) {
            (4..=11, _) => self.follow().await,
            (12..=16, _) | (_, None) => self.create_story().await,
            (17..=36, Some(s)) => self.add_chapter(s).await,
            (37..=71, Some(s)) => self.vote(s).await,
            (72..=76, Some(s)) => self.engage(s, roll).await,
            (77..=86, Some(s)) => self.read(s).await,
            (87..=89, Some(s)) => self.publish(s).await,
            (90..=95, Some(s)) => self.pull_request(s).await,
            (_, Some(s)) => self.invite(s).await,
        }
    }

    async fn register(&mut self) -> Result<u64, AppError> {
        let name = format!(
            "{}_{}{}",
            self.tag,
            WORDS[self.rng.gen_range(0..WORDS.len())],
            self.users.len()
        );
        let display = self.words(2);
        let r = self.app.register(&name, &display).await;
        let (n, id) = self.count(r)?;
        if n > 0 {
            self.users.push(id);
        }
        Ok(n)
    }

    async fn follow(&mut self) -> Result<u64, AppError> {
        let (a, b) = (self.user(), self.user());
        let r = self.app.follow(&self.users[a], &self.users[b]).await;
        Ok(self.count(r)?.0)
    }

    async fn create_story(&mut self) -> Result<u64, AppError> {
        let owner = self.user();
        let genre = Genre::ALL[self.rng.gen_range(0..Genre::ALL.len())];
        let private = self.rng.gen_bool(0.2);
        let visibility = if private {
            Visibility::Private
        } else {
            Visibility::Public
        };
        let title = self.words(3);
        let r = self
            .app
            .create_story(&self.users[owner], &title, genre, visibility)
            .await;
        let (n, id) = self.count(r)?;
        if n > 0 {
            self.stories.push(StoryInfo {
                id,
                owner,
                private,
                members: Vec::new(),
                chapters: Vec::new(),
            });
        }
        Ok(n)
    }

    async fn add_chapter(&mut self, s: usize) -> Result<u64, AppError> {
        let info = &self.stories[s];
        if info.chapters.len() >= MAX_CHAPTERS {
            return self.vote(s).await;
        }
        let insiders: Vec<usize> = std::iter::once(info.owner)
            .chain(info.members.iter().copied())
            .collect();
        let (first, private) = (info.chapters.is_empty(), info.private);
        let parent =
            (!first).then(|| info.chapters[self.rng.gen_range(0..info.chapters.len())].clone());
        let author = if first || (private && self.rng.gen_bool(0.9)) {
            insiders[self.rng.gen_range(0..insiders.len())]
        } else {
            self.user()
        };
        let (title, text) = (self.words(2), self.words(60));
        let story_id = self.stories[s].id.clone();
        let r = self
            .app
            .add_chapter(
                &story_id,
                &self.users[author],
                &title,
                &text,
                parent.as_deref(),
            )
            .await;
        let (n, id) = self.count(r)?;
        if n > 0 {
            self.stories[s].chapters.push(id);
        }
        Ok(n)
    }

    fn target(&mut self, s: usize) -> Target {
        let info = &self.stories[s];
        match info.chapters.len() {
            0 => Target::story(&info.id),
            k if self.rng.gen_bool(0.5) => {
                Target::chapter(&info.id, &info.chapters[self.rng.gen_range(0..k)])
            }
            _ => Target::story(&info.id),
        }
    }

    async fn vote(&mut self, s: usize) -> Result<u64, AppError> {
        let (user, target) = (self.user(), self.target(s));
        let value = if self.rng.gen_bool(0.85) { 1 } else { -1 };
        let r = self.app.vote(&self.users[user], &target, value).await;
        Ok(self.count(r)?.0)
    }

    async fn engage(&mut self, s: usize, roll: u32) -> Result<u64, AppError> {
        let (user, target) = (self.user(), self.target(s));
        let r = if roll % 2 == 0 {
            let text = self.words(12);
            self.app.comment(&self.users[user], &target, &text).await
        } else {
            self.app.bookmark(&self.users[user], &target).await
        };
        Ok(self.count(r)?.0)
    }

    async fn read(&mut self, s: usize) -> Result<u64, AppError> {
        let info = &self.stories[s];
        if info.chapters.is_empty() {
            return self.vote(s).await;
        }
        let chapter = info.chapters[self.rng.gen_range(0..info.chapters.len())].clone();
        let target = Target::chapter(&info.id, &chapter);
        let user = self.user();
        let done = self
            .reads
            .get(&(user, chapter.clone()))
            .copied()
            .unwrap_or(0);
        if done >= 100 {
            return self.vote(s).await;
        }
        let percent = (done + self.rng.gen_range(10..=60)).min(100);
        let r = self.app.read(&self.users[user], &target, percent).await;
        self.reads.insert((user, chapter), percent);
        Ok(self.count(r)?.0)
    }

    async fn publish(&mut self, s: usize) -> Result<u64, AppError> {
        let (id, owner) = (self.stories[s].id.clone(), self.stories[s].owner);
        let r = self.app.publish_story(&id, &self.users[owner]).await;
        Ok(self.count(r)?.0)
    }

    /// Opens a pull request, or moves a pending one on: approved, then merged (or rejected).
    async fn pull_request(&mut self, s: usize) -> Result<u64, AppError> {
        if let Some((pr, owner)) =
            (!self.prs.is_empty() && self.rng.gen_bool(0.6)).then(|| self.prs.swap_remove(0))
        {
            let owner_id = self.users[owner].clone();
            let r = self
                .app
                .review_pr(&pr, &owner_id, Verdict::Approve, "Nice")
                .await;
            let (mut n, _) = self.count(r)?;
            let r = if self.rng.gen_bool(0.8) {
                self.app.merge_pr(&pr, &owner_id).await
            } else {
                self.app.reject_pr(&pr, &owner_id, "Not this time").await
            };
            n += self.count(r)?.0;
            return Ok(n);
        }
        let info = &self.stories[s];
        if info.chapters.is_empty() {
            return self.vote(s).await;
        }
        let (owner, story_id) = (info.owner, info.id.clone());
        let base = info.chapters[self.rng.gen_range(0..info.chapters.len())].clone();
        let author = self.user();
        if author == owner {
            return self.vote(s).await;
        }
        let (title, text) = (self.words(2), self.words(50));
        let r = self
            .app
            .open_pr(&story_id, &base, &self.users[author], &title, &text)
            .await;
        let (n, id) = self.count(r)?;
        if n > 0 {
            self.prs.push((id, owner));
        }
        Ok(n)
    }

    async fn invite(&mut self, s: usize) -> Result<u64, AppError> {
        let (id, owner) = (self.stories[s].id.clone(), self.stories[s].owner);
        let user = self.user();
        let role = if self.rng.gen_bool(0.3) {
            Role::Editor
        } else {
            Role::Writer
        };
        let r = self
            .app
            .invite(&id, &self.users[owner], &self.users[user], role)
            .await;
        let (mut n, _) = self.count(r)?;
        if n > 0 {
            let r = self.app.join(&id, &self.users[user]).await;
            n += self.count(r)?.0;
            self.stories[s].members.push(user);
        }
        Ok(n)
    }
}
