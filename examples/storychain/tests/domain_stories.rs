//! Given/when/then tests of the story and its collaboration.

use chrono::{DateTime, TimeZone, Utc};
use recount::testing::AggregateTest;
use storychain::domain::{
    Collaboration, CollaborationError, CollaborationEvent, Genre, MilestoneKind, Role, Story,
    StoryError, StoryEvent, Visibility,
};

fn t() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
}

fn created() -> StoryEvent {
    StoryEvent::Created {
        story_id: "s1".into(),
        title: "Dune".into(),
        genre: Genre::SciFi,
        author: "ada".into(),
        visibility: Visibility::Public,
        at: t(),
    }
}

#[test]
fn a_story_is_created_once_with_a_title() {
    AggregateTest::<Story>::given_no_events()
        .when(|s| s.create("s1", "Dune", Genre::SciFi, "ada", Visibility::Public, t()))
        .then_events([created()]);
    AggregateTest::<Story>::given([created()])
        .when(|s| s.create("s1", "Dune", Genre::SciFi, "ada", Visibility::Public, t()))
        .then_error(StoryError::AlreadyExists);
    AggregateTest::<Story>::given_no_events()
        .when(|s| s.create("s1", "  ", Genre::SciFi, "ada", Visibility::Public, t()))
        .then_error(StoryError::InvalidTitle);
}

#[test]
fn the_owner_updates_details() {
    AggregateTest::<Story>::given([created()])
        .when(|s| {
            s.update_details(
                "s1",
                "ada",
                "Dune II",
                Genre::Fantasy,
                Visibility::Private,
                t(),
            )
        })
        .then_events([StoryEvent::DetailsUpdated {
            story_id: "s1".into(),
            title: "Dune II".into(),
            genre: Genre::Fantasy,
            visibility: Visibility::Private,
            at: t(),
        }]);
    AggregateTest::<Story>::given([created()])
        .when(|s| s.update_details("s1", "bob", "X", Genre::Fantasy, Visibility::Public, t()))
        .then_error(StoryError::NotOwner);
    AggregateTest::<Story>::given_no_events()
        .when(|s| s.update_details("s1", "ada", "X", Genre::Fantasy, Visibility::Public, t()))
        .then_error(StoryError::NotFound);
}

#[test]
fn publish_and_archive() {
    let published = StoryEvent::Published {
        story_id: "s1".into(),
        title: "Dune".into(),
        genre: Some(Genre::SciFi),
        visibility: Some(Visibility::Public),
        at: t(),
    };
    let archived = StoryEvent::Archived {
        story_id: "s1".into(),
        at: t(),
    };
    AggregateTest::<Story>::given([created()])
        .when(|s| s.publish("s1", "ada", t()))
        .then_events([published.clone()]);
    AggregateTest::<Story>::given([created(), published.clone()])
        .when(|s| s.publish("s1", "ada", t()))
        .then_error(StoryError::AlreadyPublished);
    AggregateTest::<Story>::given([created()])
        .when(|s| s.publish("s1", "bob", t()))
        .then_error(StoryError::NotOwner);
    AggregateTest::<Story>::given([created(), published])
        .when(|s| s.archive("s1", "ada", t()))
        .then_events([archived.clone()]);
    AggregateTest::<Story>::given([created(), archived])
        .when(|s| s.publish("s1", "ada", t()))
        .then_error(StoryError::Archived);
}

#[test]
fn milestones_are_reached_once_at_thresholds() {
    let reached = StoryEvent::MilestoneReached {
        story_id: "s1".into(),
        owner: "ada".into(),
        kind: MilestoneKind::Votes,
        threshold: 10,
        at: t(),
    };
    AggregateTest::<Story>::given([created()])
        .when(|s| s.reach_milestone("s1", MilestoneKind::Votes, 10, t()))
        .then_events([reached.clone()]);
    AggregateTest::<Story>::given([created(), reached])
        .when(|s| s.reach_milestone("s1", MilestoneKind::Votes, 10, t()))
        .then_error(StoryError::MilestoneAlreadyReached(
            MilestoneKind::Votes,
            10,
        ));
    AggregateTest::<Story>::given([created()])
        .when(|s| s.reach_milestone("s1", MilestoneKind::Votes, 7, t()))
        .then_error(StoryError::NotAMilestone(7));
    AggregateTest::<Story>::given_no_events()
        .when(|s| s.reach_milestone("s1", MilestoneKind::Reads, 10, t()))
        .then_error(StoryError::NotFound);
}

fn invited(user: &str, role: Role) -> CollaborationEvent {
    CollaborationEvent::Invited {
        story_id: "s1".into(),
        user_id: user.into(),
        role,
        invited_by: "ada".into(),
        at: t(),
    }
}

fn joined(user: &str, role: Role) -> CollaborationEvent {
    CollaborationEvent::Joined {
        story_id: "s1".into(),
        user_id: user.into(),
        role,
        at: t(),
    }
}

#[test]
fn owners_and_editors_invite_others_do_not() {
    AggregateTest::<Collaboration>::given_no_events()
        .when(|c| c.invite("s1", "ada", "ada", "bob", Role::Editor, t()))
        .then_events([invited("bob", Role::Editor)]);
    AggregateTest::<Collaboration>::given([
        invited("bob", Role::Editor),
        joined("bob", Role::Editor),
    ])
    .when(|c| c.invite("s1", "ada", "bob", "cy", Role::Writer, t()))
    .then_events([CollaborationEvent::Invited {
        story_id: "s1".into(),
        user_id: "cy".into(),
        role: Role::Writer,
        invited_by: "bob".into(),
        at: t(),
    }]);
    AggregateTest::<Collaboration>::given([
        invited("bob", Role::Writer),
        joined("bob", Role::Writer),
    ])
    .when(|c| c.invite("s1", "ada", "bob", "cy", Role::Writer, t()))
    .then_error(CollaborationError::NotAllowedToInvite);
    AggregateTest::<Collaboration>::given([invited("bob", Role::Editor)])
        .when(|c| c.invite("s1", "ada", "bob", "cy", Role::Writer, t()))
        .then_error(CollaborationError::NotAllowedToInvite);
    AggregateTest::<Collaboration>::given_no_events()
        .when(|c| c.invite("s1", "ada", "ada", "bob", Role::Owner, t()))
        .then_error(CollaborationError::InvalidRole);
    AggregateTest::<Collaboration>::given([invited("bob", Role::Writer)])
        .when(|c| c.invite("s1", "ada", "ada", "bob", Role::Writer, t()))
        .then_error(CollaborationError::AlreadyInvited("bob".into()));
}

#[test]
fn join_leave_and_change_role() {
    AggregateTest::<Collaboration>::given([invited("bob", Role::Writer)])
        .when(|c| c.join("s1", "bob", t()))
        .then_events([joined("bob", Role::Writer)]);
    AggregateTest::<Collaboration>::given_no_events()
        .when(|c| c.join("s1", "bob", t()))
        .then_error(CollaborationError::NotInvited("bob".into()));
    let member = [invited("bob", Role::Writer), joined("bob", Role::Writer)];
    AggregateTest::<Collaboration>::given(member.clone())
        .when(|c| c.join("s1", "bob", t()))
        .then_error(CollaborationError::AlreadyJoined("bob".into()));
    AggregateTest::<Collaboration>::given(member.clone())
        .when(|c| c.leave("s1", "bob", t()))
        .then_events([CollaborationEvent::Left {
            story_id: "s1".into(),
            user_id: "bob".into(),
            at: t(),
        }]);
    AggregateTest::<Collaboration>::given([invited("bob", Role::Writer)])
        .when(|c| c.leave("s1", "bob", t()))
        .then_error(CollaborationError::NotMember("bob".into()));
    AggregateTest::<Collaboration>::given(member.clone())
        .when(|c| c.change_role("s1", "ada", "ada", "bob", Role::Editor, t()))
        .then_events([CollaborationEvent::RoleChanged {
            story_id: "s1".into(),
            user_id: "bob".into(),
            role: Role::Editor,
            changed_by: "ada".into(),
            at: t(),
        }]);
    AggregateTest::<Collaboration>::given(member.clone())
        .when(|c| c.change_role("s1", "ada", "bob", "bob", Role::Editor, t()))
        .then_error(CollaborationError::NotOwner);
    AggregateTest::<Collaboration>::given(member.clone())
        .when(|c| c.change_role("s1", "ada", "ada", "bob", Role::Writer, t()))
        .then_error(CollaborationError::SameRole("bob".into()));
    AggregateTest::<Collaboration>::given(member)
        .when(|c| c.change_role("s1", "ada", "ada", "bob", Role::Owner, t()))
        .then_error(CollaborationError::InvalidRole);
    AggregateTest::<Collaboration>::given_no_events()
        .when(|c| c.change_role("s1", "ada", "ada", "bob", Role::Editor, t()))
        .then_error(CollaborationError::NotMember("bob".into()));
}

#[test]
fn a_story_published_at_version_1_reads_as_not_known_to_be_public() {
    use recount::Event;
    let old = StoryEvent::decode(
        "story.published",
        1,
        r#"{"story_id":"s1","at":"2025-01-02T03:04:05Z"}"#,
    )
    .unwrap();
    assert_eq!(
        old,
        StoryEvent::Published {
            story_id: "s1".into(),
            title: String::new(),
            genre: None,
            visibility: None,
            at: t(),
        }
    );
}
