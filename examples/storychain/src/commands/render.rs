//! Printing read models readably: tables, a chapter tree, events.

use crate::app::Written;
use crate::readmodel::{ChapterRow, Notification, ProfileRow, StoryRow};
use std::collections::BTreeMap;

/// A stream id shortened for reading: category and the end of the id.
pub(crate) fn short(stream: &str) -> String {
    match stream.split_once('-') {
        Some((category, id)) if id.len() > 12 => format!("{category}-…{}", &id[id.len() - 8..]),
        _ => stream.to_owned(),
    }
}

/// The events a command wrote, one per line with stream version.
pub(crate) fn print_written(written: &Written) {
    for e in &written.events {
        println!(
            "      {:<28} v{:<3} {}",
            short(&e.stream),
            e.version,
            e.event_type
        );
    }
}

/// The catalogue as a table.
pub(crate) fn print_catalogue(rows: &[StoryRow]) {
    println!(
        "  {:<34} {:<9} {:<14} {:<10} {:>5} {:>8} {:>8}",
        "title", "genre", "author", "status", "votes", "chapters", "branches"
    );
    for r in rows {
        let title: String = r.title.chars().take(34).collect();
        println!(
            "  {:<34} {:<9} {:<14} {:<10} {:>5} {:>8} {:>8}",
            title, r.genre, r.author, r.status, r.votes, r.chapters, r.branches
        );
    }
}

/// A story's chapters drawn as a tree from its root.
pub(crate) fn print_tree(title: &str, rows: &[ChapterRow]) {
    println!("  {title}");
    let mut children: BTreeMap<Option<&str>, Vec<&ChapterRow>> = BTreeMap::new();
    for r in rows {
        children.entry(r.parent.as_deref()).or_default().push(r);
    }
    let roots = children.get(&None).cloned().unwrap_or_default();
    for (i, root) in roots.iter().enumerate() {
        draw(root, &children, "  ", i + 1 == roots.len());
    }
}

fn draw(
    node: &ChapterRow,
    children: &BTreeMap<Option<&str>, Vec<&ChapterRow>>,
    prefix: &str,
    last: bool,
) {
    let branch = if node.branched { "  ⑂ branch" } else { "" };
    let published = if node.published { "" } else { "  (draft)" };
    let votes = if node.votes != 0 {
        format!("  ▲{}", node.votes)
    } else {
        String::new()
    };
    println!(
        "{prefix}{}{} — {}, {} words{votes}{branch}{published}",
        if last { "└── " } else { "├── " },
        node.title,
        node.author,
        node.words
    );
    let next = format!("{prefix}{}", if last { "    " } else { "│   " });
    let kids = children
        .get(&Some(node.chapter_id.as_str()))
        .cloned()
        .unwrap_or_default();
    for (i, child) in kids.iter().enumerate() {
        draw(child, children, &next, i + 1 == kids.len());
    }
}

/// Profiles with XP, level and badges.
pub(crate) fn print_profiles(rows: &[ProfileRow]) {
    println!(
        "  {:<14} {:>5} {:>5}  {:>7} {:>8} {:>8} {:>6} {:>7} {:>9}  badges",
        "user", "xp", "level", "stories", "chapters", "branches", "merged", "upvotes", "followers"
    );
    for p in rows {
        let [stories, chapters, branches, merged, upvotes, followers] = p.counts;
        println!(
            "  {:<14} {:>5} {:>5}  {:>7} {:>8} {:>8} {:>6} {:>7} {:>9}  {}",
            p.username,
            p.xp,
            p.level,
            stories,
            chapters,
            branches,
            merged,
            upvotes,
            followers,
            p.badges.join(", ")
        );
    }
}

/// One user's inbox.
pub(crate) fn print_inbox(username: &str, notes: &[Notification]) {
    println!("  {username} ({} notifications)", notes.len());
    for n in notes {
        println!("    [{:<15}] {}", n.kind, n.message);
    }
}
