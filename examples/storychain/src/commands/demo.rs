//! `storychain demo`: a scripted scenario, told as it runs, then the read models.

use super::render::{print_catalogue, print_inbox, print_profiles, print_tree, print_written};
use super::CliResult;
use crate::app::{AppError, StoryChain, Written};
use crate::domain::{Genre, Role, Target, Verdict, Visibility};
use crate::readmodel::{CatalogueQuery, ReadModels, Sort};
use std::path::Path;

/// Prints each command and what it wrote (or why it was refused).
struct Narrator {
    step: u32,
}

impl Narrator {
    fn tell(&mut self, what: &str, result: Result<Written, AppError>) -> Result<String, AppError> {
        self.step += 1;
        println!("  {:>2}. {what}", self.step);
        match result {
            Ok(written) => {
                print_written(&written);
                Ok(written.id)
            }
            Err(e) if e.is_rejection() => {
                println!("      ✗ refused: {e}");
                Ok(String::new())
            }
            Err(e) => Err(e),
        }
    }
}

/// The demo's cast: user ids by name.
struct Cast {
    names: Vec<String>,
    ids: Vec<String>,
}

impl Cast {
    fn id(&self, i: usize) -> &str {
        &self.ids[i]
    }
}

/// Runs the demo on the database at `db` (deleted first with `fresh`).
pub async fn demo(db: &Path, fresh: bool) -> CliResult {
    let database = super::database(db)?;
    if fresh && matches!(database, crate::Database::Postgres(_)) {
        return Err("--fresh deletes a SQLite file; with DATABASE_URL, run the demo on an empty PostgreSQL database instead".into());
    }
    if fresh {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
    let app = crate::StoryChain::open_database(&database).await?;
    println!("StoryChain demo on {database}\n");
    let mut n = Narrator { step: 0 };
    println!("Users register and follow each other");
    let cast = register(&app, &mut n).await?;
    println!("\nStories and chapters");
    let (orchard, root, second) = write_stories(&app, &mut n, &cast).await?;
    println!("\nA pull request, reviewed and merged");
    pull_request(&app, &mut n, &cast, &orchard, &second).await?;
    println!("\nReaders vote, read, comment");
    engage(&app, &mut n, &cast, &orchard, &root).await?;
    let settled = app.settle().await?;
    println!(
        "\nProcess managers handled {} events; projections handled {}.",
        settled.processed, settled.projected
    );
    show(&app, &cast, &orchard).await
}

async fn register(app: &StoryChain, n: &mut Narrator) -> Result<Cast, AppError> {
    let base = ["ada", "bruno", "chen", "dara", "eli"];
    let full = [
        "Ada Quill",
        "Bruno Vale",
        "Chen Mirelle",
        "Dara Finch",
        "Eli Rowan",
    ];
    // A second run on the same database picks fresh names: usernames are unique for good.
    let mut suffix = String::new();
    let mut k = 1;
    while app.user_id_of(&format!("ada{suffix}")).await?.is_some() {
        k += 1;
        suffix = format!("_{k}");
    }
    let mut cast = Cast {
        names: Vec::new(),
        ids: Vec::new(),
    };
    for (name, display) in base.iter().zip(full) {
        let username = format!("{name}{suffix}");
        let id = n.tell(
            &format!("register {username}"),
            app.register(&username, display).await,
        )?;
        cast.names.push(username);
        cast.ids.push(id);
    }
    let taken = app.register(&cast.names[0], "Impostor").await;
    n.tell(&format!("register {} again", cast.names[0]), taken)?;
    for (a, b) in [(1, 0), (2, 0), (3, 0), (0, 2), (4, 1)] {
        let what = format!("{} follows {}", cast.names[a], cast.names[b]);
        n.tell(&what, app.follow(cast.id(a), cast.id(b)).await)?;
    }
    Ok(cast)
}

async fn write_stories(
    app: &StoryChain,
    n: &mut Narrator,
    c: &Cast,
) -> Result<(String, String, String), AppError> {
    let (ada, bruno, chen, dara, eli) = (c.id(0), c.id(1), c.id(2), c.id(3), c.id(4));
    let title = "The Clockwork Orchard";
    let orchard = n.tell(
        "ada creates “The Clockwork Orchard” (fantasy, public)",
        app.create_story(ada, title, Genre::Fantasy, Visibility::Public)
            .await,
    )?;
    let text = "The orchard ticked at dawn, every apple a small brass heart keeping time.";
    let root = n.tell(
        "ada writes the first chapter",
        app.add_chapter(&orchard, ada, "Seeds of Brass", text, None)
            .await,
    )?;
    let second = n.tell(
        "ada continues it",
        app.add_chapter(
            &orchard,
            ada,
            "The Gardener's Key",
            "A key grew where a pear should have been.",
            Some(&root),
        )
        .await,
    )?;
    n.tell(
        "chen continues the first chapter differently: a branch",
        app.add_chapter(
            &orchard,
            chen,
            "Winter Gears",
            "Frost seized the cogs and the trees fell silent.",
            Some(&root),
        )
        .await,
    )?;
    n.tell(
        "dara continues ada's second chapter",
        app.add_chapter(
            &orchard,
            dara,
            "Rust and Blossom",
            "Blossoms bloomed orange with rust.",
            Some(&second),
        )
        .await,
    )?;
    n.tell(
        "eli branches the first chapter again",
        app.add_chapter(
            &orchard,
            eli,
            "The Thief of Minutes",
            "Someone was stealing the orchard's minutes.",
            Some(&root),
        )
        .await,
    )?;
    n.tell(
        "ada publishes the story",
        app.publish_story(&orchard, ada).await,
    )?;
    let europa = n.tell(
        "bruno creates “Signal from Europa” (sci-fi, private)",
        app.create_story(
            bruno,
            "Signal from Europa",
            Genre::SciFi,
            Visibility::Private,
        )
        .await,
    )?;
    let europa_root = n.tell(
        "bruno writes its first chapter",
        app.add_chapter(
            &europa,
            bruno,
            "Ice Echo",
            "The signal repeated every 47 minutes under the ice.",
            None,
        )
        .await,
    )?;
    n.tell(
        "bruno invites chen as editor",
        app.invite(&europa, bruno, chen, Role::Editor).await,
    )?;
    n.tell("chen joins", app.join(&europa, chen).await)?;
    n.tell(
        "chen (editor) invites dara as writer",
        app.invite(&europa, chen, dara, Role::Writer).await,
    )?;
    n.tell("dara joins", app.join(&europa, dara).await)?;
    n.tell(
        "dara continues the private story",
        app.add_chapter(
            &europa,
            dara,
            "Descent",
            "The probe dropped into the dark water.",
            Some(&europa_root),
        )
        .await,
    )?;
    n.tell(
        "eli, not a collaborator, tries to write in it",
        app.add_chapter(&europa, eli, "Gatecrash", "Hello?", Some(&europa_root))
            .await,
    )?;
    n.tell(
        "dara (writer) tries to invite eli",
        app.invite(&europa, dara, eli, Role::Writer).await,
    )?;
    Ok((orchard, root, second))
}

async fn pull_request(
    app: &StoryChain,
    n: &mut Narrator,
    c: &Cast,
    orchard: &str,
    base: &str,
) -> Result<(), AppError> {
    let (ada, bruno, chen) = (c.id(0), c.id(1), c.id(2));
    let text = "Beneath the roots, the gardener kept a second orchard that ran backwards.";
    let pr = n.tell(
        "bruno opens a pull request continuing “The Gardener's Key”",
        app.open_pr(orchard, base, bruno, "The Backward Orchard", text)
            .await,
    )?;
    n.tell(
        "bruno tries to review his own pull request",
        app.review_pr(&pr, bruno, Verdict::Approve, "lgtm").await,
    )?;
    n.tell(
        "chen requests changes",
        app.review_pr(&pr, chen, Verdict::RequestChanges, "Name the gardener?")
            .await,
    )?;
    n.tell("ada tries to merge", app.merge_pr(&pr, ada).await)?;
    n.tell(
        "chen approves",
        app.review_pr(&pr, chen, Verdict::Approve, "Lovely now")
            .await,
    )?;
    n.tell(
        "chen (not a maintainer of this story) tries to merge",
        app.merge_pr(&pr, chen).await,
    )?;
    n.tell(
        "ada approves",
        app.review_pr(&pr, ada, Verdict::Approve, "Yes").await,
    )?;
    n.tell("ada merges", app.merge_pr(&pr, ada).await)?;
    n.tell(
        "ada tries to reject the merged pull request",
        app.reject_pr(&pr, ada, "changed my mind").await,
    )?;
    Ok(())
}

async fn engage(
    app: &StoryChain,
    n: &mut Narrator,
    c: &Cast,
    orchard: &str,
    root: &str,
) -> Result<(), AppError> {
    let story = Target::story(orchard);
    for i in 0..5 {
        let what = format!("{} up-votes the orchard", c.names[i]);
        n.tell(&what, app.vote(c.id(i), &story, 1).await)?;
    }
    n.tell(
        "dara changes her vote to a down-vote",
        app.vote(c.id(3), &story, -1).await,
    )?;
    n.tell("dara votes down again", app.vote(c.id(3), &story, -1).await)?;
    let chapter = Target::chapter(orchard, root);
    n.tell(
        "bruno up-votes the first chapter",
        app.vote(c.id(1), &chapter, 1).await,
    )?;
    n.tell(
        "eli comments",
        app.comment(c.id(4), &chapter, "The brass hearts!").await,
    )?;
    n.tell(
        "chen bookmarks the orchard",
        app.bookmark(c.id(2), &story).await,
    )?;
    for (i, pct) in (1..5)
        .flat_map(|i| [(i, 50u8), (i, 100)])
        .chain([(0, 60), (0, 100)])
    {
        let what = format!("{} reads {pct}% of the first chapter", c.names[i]);
        n.tell(&what, app.read(c.id(i), &chapter, pct).await)?;
    }
    Ok(())
}

async fn show(app: &StoryChain, cast: &Cast, orchard: &str) -> CliResult {
    let models = ReadModels::open(app.store()).await?;
    println!("\nCatalogue (by votes)");
    print_catalogue(
        &models
            .catalogue(&CatalogueQuery {
                sort: Sort::Votes,
                limit: 8,
                ..Default::default()
            })
            .await?,
    );
    println!("\nChapter tree");
    print_tree(
        "The Clockwork Orchard",
        &models.chapter_tree(orchard).await?,
    );
    println!("\nProfiles");
    print_profiles(&models.profiles(&cast.ids, 10).await?);
    println!("\nInboxes");
    for (name, id) in cast.names.iter().zip(&cast.ids) {
        print_inbox(name, &models.inbox(id, 20).await?);
    }
    println!("\nEvents by type");
    for s in models.stats().await?.iter().take(12) {
        println!("  {:<26} {:>6}", s.event_type, s.count);
    }
    println!("\nStory milestones: see `storychain events --type story.milestone_reached --db …`");
    Ok(())
}
