//! Given/when/then tests of the chapter tree, pull requests, engagement and the inbox.

use chrono::{DateTime, TimeZone, Utc};
use recount::testing::AggregateTest;
use storychain::domain::{
    ChapterAccess, ChapterError, ChapterTree, ChapterTreeEvent, Engagement, EngagementError,
    EngagementEvent, Inbox, InboxError, InboxEvent, NewChapter, PrStatus, Proposal, PullRequest,
    PullRequestError, PullRequestEvent, Target, Verdict, Visibility,
};

fn t() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
}

const OPEN: ChapterAccess = ChapterAccess {
    story_open: true,
    may_write: true,
};

fn chapter(id: &str, author: &str, parent: Option<&str>) -> NewChapter {
    NewChapter {
        chapter_id: id.into(),
        author: author.into(),
        title: format!("Title {id}"),
        content: "Once upon a time".into(),
        parent: parent.map(Into::into),
    }
}

fn created(id: &str, author: &str, parent: Option<&str>) -> ChapterTreeEvent {
    let c = chapter(id, author, parent);
    ChapterTreeEvent::Created {
        story_id: "s1".into(),
        chapter_id: c.chapter_id,
        author: c.author,
        title: c.title,
        content: c.content,
        parent: c.parent,
        at: t(),
    }
}

#[test]
fn the_first_chapter_is_the_root_and_a_second_child_is_a_branch() {
    AggregateTest::<ChapterTree>::given_no_events()
        .when(|tr| tr.create("s1", OPEN, &chapter("c1", "ada", None), t()))
        .then_events([created("c1", "ada", None)]);
    AggregateTest::<ChapterTree>::given([created("c1", "ada", None)])
        .when(|tr| tr.create("s1", OPEN, &chapter("c2", "bob", Some("c1")), t()))
        .then_events([created("c2", "bob", Some("c1"))]);
    let tree = AggregateTest::<ChapterTree>::given([
        created("c1", "ada", None),
        created("c2", "bob", Some("c1")),
    ])
    .when(|tr| tr.create("s1", OPEN, &chapter("c3", "cy", Some("c1")), t()))
    .then_events([
        created("c3", "cy", Some("c1")),
        ChapterTreeEvent::Branched {
            story_id: "s1".into(),
            chapter_id: "c3".into(),
            parent: "c1".into(),
            author: "cy".into(),
            parent_author: "ada".into(),
            at: t(),
        },
    ]);
    assert_eq!(tree.chapters["c1"].children, 2);
}

#[test]
fn chapters_are_refused_when_the_rules_say_so() {
    let root = || [created("c1", "ada", None)];
    let closed = ChapterAccess {
        story_open: false,
        may_write: true,
    };
    let outsider = ChapterAccess {
        story_open: true,
        may_write: false,
    };
    AggregateTest::<ChapterTree>::given_no_events()
        .when(|tr| tr.create("s1", closed, &chapter("c1", "ada", None), t()))
        .then_error(ChapterError::StoryNotOpen);
    AggregateTest::<ChapterTree>::given(root())
        .when(|tr| tr.create("s1", outsider, &chapter("c2", "eve", Some("c1")), t()))
        .then_error(ChapterError::NotCollaborator);
    AggregateTest::<ChapterTree>::given(root())
        .when(|tr| tr.create("s1", OPEN, &chapter("c1", "ada", Some("c1")), t()))
        .then_error(ChapterError::ChapterExists("c1".into()));
    AggregateTest::<ChapterTree>::given(root())
        .when(|tr| tr.create("s1", OPEN, &chapter("c2", "ada", None), t()))
        .then_error(ChapterError::RootExists);
    AggregateTest::<ChapterTree>::given_no_events()
        .when(|tr| tr.create("s1", OPEN, &chapter("c2", "ada", Some("c1")), t()))
        .then_error(ChapterError::NoRoot);
    AggregateTest::<ChapterTree>::given(root())
        .when(|tr| tr.create("s1", OPEN, &chapter("c2", "ada", Some("zz")), t()))
        .then_error(ChapterError::UnknownParent("zz".into()));
    let mut empty = chapter("c2", "ada", Some("c1"));
    empty.content = " ".into();
    AggregateTest::<ChapterTree>::given(root())
        .when(|tr| tr.create("s1", OPEN, &empty, t()))
        .then_error(ChapterError::Empty);
}

#[test]
fn authors_edit_and_publish_their_chapters() {
    let root = || [created("c1", "ada", None)];
    AggregateTest::<ChapterTree>::given(root())
        .when(|tr| tr.edit("s1", "c1", "ada", "New", "Text", t()))
        .then_events([ChapterTreeEvent::Edited {
            story_id: "s1".into(),
            chapter_id: "c1".into(),
            title: "New".into(),
            content: "Text".into(),
            at: t(),
        }]);
    AggregateTest::<ChapterTree>::given(root())
        .when(|tr| tr.edit("s1", "c1", "bob", "New", "Text", t()))
        .then_error(ChapterError::NotAuthor);
    AggregateTest::<ChapterTree>::given(root())
        .when(|tr| tr.edit("s1", "c9", "ada", "New", "Text", t()))
        .then_error(ChapterError::UnknownChapter("c9".into()));
    AggregateTest::<ChapterTree>::given(root())
        .when(|tr| tr.edit("s1", "c1", "ada", "", "Text", t()))
        .then_error(ChapterError::Empty);
    let published = ChapterTreeEvent::Published {
        story_id: "s1".into(),
        chapter_id: "c1".into(),
        title: "Title c1".into(),
        visibility: Some(Visibility::Private),
        at: t(),
    };
    AggregateTest::<ChapterTree>::given(root())
        .when(|tr| tr.publish("s1", "c1", "ada", Visibility::Private, t()))
        .then_events([published.clone()]);
    AggregateTest::<ChapterTree>::given([created("c1", "ada", None), published])
        .when(|tr| tr.publish("s1", "c1", "ada", Visibility::Private, t()))
        .then_error(ChapterError::AlreadyPublished("c1".into()));
    AggregateTest::<ChapterTree>::given(root())
        .when(|tr| tr.publish("s1", "c1", "bob", Visibility::Private, t()))
        .then_error(ChapterError::NotAuthor);
}

fn proposal() -> Proposal {
    Proposal {
        story_id: "s1".into(),
        base_chapter: "c1".into(),
        author: "bob".into(),
        title: "Twist".into(),
        content: "And then".into(),
    }
}

fn opened() -> PullRequestEvent {
    PullRequestEvent::Opened {
        pr_id: "p1".into(),
        story_id: "s1".into(),
        base_chapter: "c1".into(),
        author: "bob".into(),
        title: "Twist".into(),
        content: "And then".into(),
        at: t(),
    }
}

fn reviewed(verdict: Verdict) -> PullRequestEvent {
    PullRequestEvent::Reviewed {
        pr_id: "p1".into(),
        story_id: "s1".into(),
        author: "bob".into(),
        reviewer: "ada".into(),
        verdict,
        comment: "ok".into(),
        at: t(),
    }
}

#[test]
fn a_pull_request_is_opened_reviewed_and_merged() {
    AggregateTest::<PullRequest>::given_no_events()
        .when(|p| p.open("p1", &proposal(), t()))
        .then_events([opened()]);
    AggregateTest::<PullRequest>::given([opened()])
        .when(|p| p.open("p1", &proposal(), t()))
        .then_error(PullRequestError::AlreadyOpened);
    let mut empty = proposal();
    empty.title = String::new();
    AggregateTest::<PullRequest>::given_no_events()
        .when(|p| p.open("p1", &empty, t()))
        .then_error(PullRequestError::Empty);
    AggregateTest::<PullRequest>::given([opened()])
        .when(|p| p.review("p1", "ada", Verdict::Approve, "ok", t()))
        .then_events([reviewed(Verdict::Approve)]);
    AggregateTest::<PullRequest>::given([opened()])
        .when(|p| p.review("p1", "bob", Verdict::Approve, "ok", t()))
        .then_error(PullRequestError::CannotReviewOwn);
    AggregateTest::<PullRequest>::given_no_events()
        .when(|p| p.review("p1", "ada", Verdict::Approve, "ok", t()))
        .then_error(PullRequestError::NotFound);
    let merged = PullRequestEvent::Merged {
        pr_id: "p1".into(),
        story_id: "s1".into(),
        author: "bob".into(),
        merged_by: "ada".into(),
        chapter_id: "c2".into(),
        visibility: Some(Visibility::Public),
        at: t(),
    };
    let state = AggregateTest::<PullRequest>::given([opened(), reviewed(Verdict::Approve)])
        .when(|p| p.merge("p1", "ada", true, "c2", Visibility::Public, t()))
        .then_events([merged]);
    assert_eq!(state.status, PrStatus::Merged);
}

#[test]
fn merges_need_a_maintainer_and_an_approval() {
    AggregateTest::<PullRequest>::given([opened(), reviewed(Verdict::Approve)])
        .when(|p| p.merge("p1", "eve", false, "c2", Visibility::Public, t()))
        .then_error(PullRequestError::NotMaintainer);
    AggregateTest::<PullRequest>::given([opened()])
        .when(|p| p.merge("p1", "ada", true, "c2", Visibility::Public, t()))
        .then_error(PullRequestError::NotApproved);
    AggregateTest::<PullRequest>::given([
        opened(),
        reviewed(Verdict::Approve),
        reviewed(Verdict::RequestChanges),
    ])
    .when(|p| p.merge("p1", "ada", true, "c2", Visibility::Public, t()))
    .then_error(PullRequestError::NotApproved);
}

#[test]
fn a_closed_pull_request_accepts_nothing_more() {
    let rejected = PullRequestEvent::Rejected {
        pr_id: "p1".into(),
        story_id: "s1".into(),
        author: "bob".into(),
        rejected_by: "ada".into(),
        reason: "no".into(),
        at: t(),
    };
    AggregateTest::<PullRequest>::given([opened()])
        .when(|p| p.reject("p1", "ada", true, "no", t()))
        .then_events([rejected.clone()]);
    AggregateTest::<PullRequest>::given([opened()])
        .when(|p| p.reject("p1", "eve", false, "no", t()))
        .then_error(PullRequestError::NotMaintainer);
    let closed = [opened(), rejected];
    AggregateTest::<PullRequest>::given(closed.clone())
        .when(|p| p.review("p1", "ada", Verdict::Approve, "", t()))
        .then_error(PullRequestError::Closed(PrStatus::Rejected));
    AggregateTest::<PullRequest>::given(closed.clone())
        .when(|p| p.merge("p1", "ada", true, "c2", Visibility::Public, t()))
        .then_error(PullRequestError::Closed(PrStatus::Rejected));
    AggregateTest::<PullRequest>::given(closed)
        .when(|p| p.reject("p1", "ada", true, "", t()))
        .then_error(PullRequestError::Closed(PrStatus::Rejected));
    let merged = PullRequestEvent::Merged {
        pr_id: "p1".into(),
        story_id: "s1".into(),
        author: "bob".into(),
        merged_by: "ada".into(),
        chapter_id: "c2".into(),
        visibility: Some(Visibility::Public),
        at: t(),
    };
    AggregateTest::<PullRequest>::given([opened(), reviewed(Verdict::Approve), merged])
        .when(|p| p.reject("p1", "ada", true, "", t()))
        .then_error(PullRequestError::Closed(PrStatus::Merged));
}

#[test]
fn one_vote_per_user_and_target_changing_it_replaces_it() {
    let target = Target::story("s1");
    let cast = EngagementEvent::VoteCast {
        user_id: "u1".into(),
        target: target.clone(),
        value: 1,
        at: t(),
    };
    AggregateTest::<Engagement>::given_no_events()
        .when(|e| e.vote("u1", &target, 1, t()))
        .then_events([cast.clone()]);
    AggregateTest::<Engagement>::given([cast.clone()])
        .when(|e| e.vote("u1", &target, -1, t()))
        .then_events([EngagementEvent::VoteChanged {
            user_id: "u1".into(),
            target: target.clone(),
            value: -1,
            previous: 1,
            at: t(),
        }]);
    AggregateTest::<Engagement>::given([cast])
        .when(|e| e.vote("u1", &target, 1, t()))
        .then_error(EngagementError::SameVote);
    AggregateTest::<Engagement>::given_no_events()
        .when(|e| e.vote("u1", &target, 2, t()))
        .then_error(EngagementError::InvalidVote(2));
}

#[test]
fn comments_bookmarks_and_reading_progress() {
    let story = Target::story("s1");
    let chap = Target::chapter("s1", "c1");
    AggregateTest::<Engagement>::given_no_events()
        .when(|e| e.comment("u1", &story, "k1", "Lovely", t()))
        .then_events([EngagementEvent::CommentPosted {
            user_id: "u1".into(),
            target: story.clone(),
            comment_id: "k1".into(),
            text: "Lovely".into(),
            at: t(),
        }]);
    AggregateTest::<Engagement>::given_no_events()
        .when(|e| e.comment("u1", &story, "k1", " ", t()))
        .then_error(EngagementError::InvalidComment);
    let bookmarked = EngagementEvent::BookmarkAdded {
        user_id: "u1".into(),
        target: story.clone(),
        at: t(),
    };
    AggregateTest::<Engagement>::given_no_events()
        .when(|e| e.bookmark("u1", &story, t()))
        .then_events([bookmarked.clone()]);
    AggregateTest::<Engagement>::given([bookmarked])
        .when(|e| e.bookmark("u1", &story, t()))
        .then_error(EngagementError::AlreadyBookmarked);
    let read = EngagementEvent::ReadingRecorded {
        user_id: "u1".into(),
        target: chap.clone(),
        percent: 40,
        at: t(),
    };
    AggregateTest::<Engagement>::given_no_events()
        .when(|e| e.record_progress("u1", &chap, 40, t()))
        .then_events([read.clone()]);
    AggregateTest::<Engagement>::given([read])
        .when(|e| e.record_progress("u1", &chap, 30, t()))
        .then_error(EngagementError::InvalidProgress(30));
    AggregateTest::<Engagement>::given_no_events()
        .when(|e| e.record_progress("u1", &chap, 101, t()))
        .then_error(EngagementError::InvalidProgress(101));
    AggregateTest::<Engagement>::given_no_events()
        .when(|e| e.record_progress("u1", &story, 10, t()))
        .then_error(EngagementError::NotAChapter);
}

#[test]
fn a_notification_is_sent_once_per_key() {
    let sent = InboxEvent::Sent {
        user_id: "u1".into(),
        kind: "pr_merged".into(),
        message: "Merged".into(),
        key: "k".into(),
        at: t(),
    };
    AggregateTest::<Inbox>::given_no_events()
        .when(|i| i.notify("u1", "pr_merged", "Merged", "k", t()))
        .then_events([sent.clone()]);
    AggregateTest::<Inbox>::given([sent])
        .when(|i| i.notify("u1", "pr_merged", "Merged", "k", t()))
        .then_error(InboxError::AlreadySent("k".into()));
    AggregateTest::<Inbox>::given_no_events()
        .when(|i| i.notify("u1", "pr_merged", "", "k", t()))
        .then_error(InboxError::Empty);
}

#[test]
fn published_chapters_and_merges_stored_at_version_1_read_as_not_known_to_be_public() {
    use recount::Event;
    let chapter = ChapterTreeEvent::decode(
        "chapter.published",
        1,
        r#"{"story_id":"s1","chapter_id":"c1","at":"2025-01-02T03:04:05Z"}"#,
    )
    .unwrap();
    assert_eq!(
        chapter,
        ChapterTreeEvent::Published {
            story_id: "s1".into(),
            chapter_id: "c1".into(),
            title: String::new(),
            visibility: None,
            at: t(),
        }
    );
    let merged = PullRequestEvent::decode(
        "pr.merged",
        1,
        r#"{"pr_id":"p1","story_id":"s1","author":"bob","merged_by":"ada","chapter_id":"c2","at":"2025-01-02T03:04:05Z"}"#,
    )
    .unwrap();
    let PullRequestEvent::Merged { visibility, .. } = merged else {
        panic!("not a merge: {merged:?}");
    };
    assert_eq!(visibility, None);
}

#[test]
fn a_published_chapter_carries_its_latest_title() {
    let edited = ChapterTreeEvent::Edited {
        story_id: "s1".into(),
        chapter_id: "c1".into(),
        title: "Renamed".into(),
        content: "Text".into(),
        at: t(),
    };
    AggregateTest::<ChapterTree>::given([created("c1", "ada", None), edited])
        .when(|tr| tr.publish("s1", "c1", "ada", Visibility::Public, t()))
        .then_events([ChapterTreeEvent::Published {
            story_id: "s1".into(),
            chapter_id: "c1".into(),
            title: "Renamed".into(),
            visibility: Some(Visibility::Public),
            at: t(),
        }]);
}
