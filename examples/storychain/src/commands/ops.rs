//! Operator commands: rebuild, projections, events, catalogue.

use super::render::print_catalogue;
use super::{progress_bar, CliResult};
use crate::readmodel::{CatalogueQuery, ReadModels, Sort};
use recount::{Cursor, EventStore, LogFilter, StreamId};
use std::path::Path;
use std::time::Instant;

/// `storychain rebuild <projection>`: builds version v+1 beside v with a progress bar
/// (done / total, events/s, ETA), switches readers, drops v. With `verify`, v is first caught
/// up with the log, then v+1 is compared row by row with it before v is dropped; a
/// difference fails the command and keeps both.
pub async fn rebuild(db: &Path, name: &str, batch: usize, verify: bool) -> CliResult {
    let app = super::open_app(db).await?;
    let bar = progress_bar(
        0,
        "{msg} [{bar:40}] {pos}/{len} events, {per_sec}, ETA {eta}",
    );
    bar.set_message(format!("rebuilding {name}"));
    let started = Instant::now();
    let progress = |p: recount::projection::Progress| {
        bar.set_length(p.done + p.remaining);
        bar.set_position(p.done);
    };
    let (from, to, n, rows) = if verify {
        // The live version first catches up with the log, so that both versions end at the
        // same event (run it with no writers, or they will not).
        let caught_up = app.projection_runner(name).await?.catch_up().await?;
        if caught_up > 0 {
            println!("{name}: the live version caught up with {caught_up} events");
        }
        let (from, to, n) = app.rebuild_beside(name, batch, progress).await?;
        (from, to, n, Some(()))
    } else {
        let (from, to, n) = app.rebuild(name, batch, progress).await?;
        (from, to, n, None)
    };
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let rate = n as f64 / secs;
    if rows.is_none() {
        println!("rebuilt {name}: v{from} -> v{to}, {n} events in {secs:.2}s ({rate:.0} events/s); readers now use v{to}, v{from} dropped");
        return Ok(());
    }
    println!("rebuilt {name}: v{from} -> v{to}, {n} events in {secs:.2}s ({rate:.0} events/s); readers now use v{to}");
    let models = ReadModels::open(app.store()).await?;
    let (old, new) = (models.dump(name, from).await?, models.dump(name, to).await?);
    if let Some(i) = (0..old.len().max(new.len())).find(|&i| old.get(i) != new.get(i)) {
        return Err(format!(
            "v{to} differs from v{from} ({} rows against {}); first difference: v{from} {:?}, v{to} {:?}; both kept",
            new.len(),
            old.len(),
            old.get(i),
            new.get(i)
        )
        .into());
    }
    app.drop_version(name, from).await?;
    println!(
        "verified: v{to} holds the same {} rows as v{from}; v{from} dropped",
        new.len()
    );
    Ok(())
}

/// `storychain projections`: version, checkpoint and lag of each.
pub async fn projections(db: &Path, catch_up: bool) -> CliResult {
    let app = super::open_app(db).await?;
    if catch_up {
        let settled = app.settle().await?;
        println!(
            "caught up: {} events projected, {} handled by process managers",
            settled.projected, settled.processed
        );
    }
    println!(
        "{:<12} {:>7} {:>12} {:>8}",
        "projection", "version", "checkpoint", "lag"
    );
    for s in app.projection_status().await? {
        let checkpoint = s
            .checkpoint
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        println!(
            "{:<12} {:>7} {:>12} {:>8}",
            s.name,
            format!("v{}", s.version),
            checkpoint,
            s.lag
        );
    }
    Ok(())
}

/// `storychain events`: the log, or one stream, filtered by type or category.
pub async fn events(
    db: &Path,
    stream: Option<String>,
    event_type: Option<String>,
    category: Option<String>,
    limit: usize,
) -> CliResult {
    let app = super::open_app(db).await?;
    let store = app.store();
    let events = match stream {
        Some(s) => {
            let mut events = store.read_stream(&StreamId::parse(&s)?, 1, limit).await?;
            events.retain(|e| event_type.as_deref().is_none_or(|t| e.event_type == t));
            events
        }
        None => {
            let mut filter = LogFilter::all();
            if let Some(t) = event_type {
                filter = filter.event_type(t);
            }
            if let Some(c) = category {
                filter = filter.category(c);
            }
            store.read_all(Cursor::START, &filter, limit).await?.events
        }
    };
    for e in &events {
        let meta = e.metadata()?;
        let user = meta.user_id.as_deref().unwrap_or("-");
        let user = &user[user.len().saturating_sub(8)..];
        println!(
            "{:>8} {} {:<48} v{:<4} {:<26} by …{user} {}",
            e.cursor.to_string(),
            e.recorded_at.format("%H:%M:%S%.3f"),
            e.stream.as_str(),
            e.version,
            e.event_type,
            e.payload.chars().take(80).collect::<String>()
        );
    }
    println!("({} events)", events.len());
    Ok(())
}

/// `storychain catalogue`: the story catalogue, filtered and sorted.
pub async fn catalogue(
    db: &Path,
    genre: Option<String>,
    author: Option<String>,
    status: Option<String>,
    sort: &str,
    limit: usize,
) -> CliResult {
    let sort = match sort {
        "votes" => Sort::Votes,
        "recent" => Sort::Recent,
        other => return Err(format!("unknown sort `{other}` (votes or recent)").into()),
    };
    if let Some(g) = &genre {
        g.parse::<crate::domain::Genre>()?;
    }
    if let Some(s) = &status {
        s.parse::<crate::domain::StoryStatus>()?;
    }
    let app = super::open_app(db).await?;
    app.run_projections().await?;
    let models = ReadModels::open(app.store()).await?;
    print_catalogue(
        &models
            .catalogue(&CatalogueQuery {
                genre,
                author,
                status,
                sort,
                limit,
                offset: 0,
            })
            .await?,
    );
    Ok(())
}
