//! Given/when/then tests of the username reservation and the user: every command's happy
//! path and every typed rejection.

use chrono::{DateTime, TimeZone, Utc};
use recount::testing::AggregateTest;
use storychain::domain::{User, UserError, UserEvent, Username, UsernameError, UsernameEvent};

fn t() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
}

fn registered(id: &str) -> UserEvent {
    UserEvent::Registered {
        user_id: id.into(),
        username: "ada".into(),
        display_name: "Ada".into(),
        at: t(),
    }
}

#[test]
fn a_free_username_is_reserved() {
    AggregateTest::<Username>::given_no_events()
        .when(|u| u.reserve("ada", "u1", t()))
        .then_events([UsernameEvent::Reserved {
            username: "ada".into(),
            user_id: "u1".into(),
            at: t(),
        }]);
}

#[test]
fn a_reserved_username_is_taken() {
    AggregateTest::<Username>::given([UsernameEvent::Reserved {
        username: "ada".into(),
        user_id: "u1".into(),
        at: t(),
    }])
    .when(|u| u.reserve("ada", "u2", t()))
    .then_error(UsernameError::Taken("ada".into()));
}

#[test]
fn an_invalid_username_is_refused() {
    for bad in ["ab", "Ada", "a-b", "x".repeat(31).as_str()] {
        AggregateTest::<Username>::given_no_events()
            .when(|u| u.reserve(bad, "u1", t()))
            .then_error(UsernameError::Invalid(bad.into()));
    }
}

#[test]
fn a_user_registers_once() {
    AggregateTest::<User>::given_no_events()
        .when(|u| u.register("u1", "ada", "Ada", t()))
        .then_events([registered("u1")]);
    AggregateTest::<User>::given([registered("u1")])
        .when(|u| u.register("u1", "ada", "Ada", t()))
        .then_error(UserError::AlreadyRegistered);
    AggregateTest::<User>::given_no_events()
        .when(|u| u.register("u1", "ada", " ", t()))
        .then_error(UserError::InvalidDisplayName);
}

#[test]
fn a_profile_is_updated() {
    AggregateTest::<User>::given([registered("u1")])
        .when(|u| u.update_profile("u1", "Ada L.", "poet", t()))
        .then_events([UserEvent::ProfileUpdated {
            user_id: "u1".into(),
            display_name: "Ada L.".into(),
            bio: "poet".into(),
            at: t(),
        }]);
    AggregateTest::<User>::given_no_events()
        .when(|u| u.update_profile("u1", "Ada", "", t()))
        .then_error(UserError::NotRegistered);
    AggregateTest::<User>::given([registered("u1")])
        .when(|u| u.update_profile("u1", "", "", t()))
        .then_error(UserError::InvalidDisplayName);
}

#[test]
fn follow_and_unfollow() {
    let followed = UserEvent::Followed {
        user_id: "u1".into(),
        followee: "u2".into(),
        at: t(),
    };
    AggregateTest::<User>::given([registered("u1")])
        .when(|u| u.follow("u1", "u2", t()))
        .then_events([followed.clone()]);
    AggregateTest::<User>::given([registered("u1"), followed.clone()])
        .when(|u| u.follow("u1", "u2", t()))
        .then_error(UserError::AlreadyFollowing("u2".into()));
    AggregateTest::<User>::given([registered("u1")])
        .when(|u| u.follow("u1", "u1", t()))
        .then_error(UserError::CannotFollowSelf);
    AggregateTest::<User>::given_no_events()
        .when(|u| u.follow("u1", "u2", t()))
        .then_error(UserError::NotRegistered);
    AggregateTest::<User>::given([registered("u1"), followed])
        .when(|u| u.unfollow("u1", "u2", t()))
        .then_events([UserEvent::Unfollowed {
            user_id: "u1".into(),
            followee: "u2".into(),
            at: t(),
        }]);
    AggregateTest::<User>::given([registered("u1")])
        .when(|u| u.unfollow("u1", "u2", t()))
        .then_error(UserError::NotFollowing("u2".into()));
}

#[test]
fn xp_is_credited_once_per_key() {
    let credited = UserEvent::XpCredited {
        user_id: "u1".into(),
        amount: 100,
        reason: "merge".into(),
        key: "pr-1".into(),
        at: t(),
    };
    AggregateTest::<User>::given([registered("u1")])
        .when(|u| u.credit_xp("u1", 100, "merge", "pr-1", t()))
        .then_events([credited.clone()]);
    AggregateTest::<User>::given([registered("u1"), credited])
        .when(|u| u.credit_xp("u1", 100, "merge", "pr-1", t()))
        .then_error(UserError::AlreadyCredited("pr-1".into()));
    AggregateTest::<User>::given([registered("u1")])
        .when(|u| u.credit_xp("u1", 0, "merge", "pr-1", t()))
        .then_error(UserError::InvalidCredit);
}

#[test]
fn levels_only_go_up_and_badges_are_earned_once() {
    let level = |n: u32| UserEvent::LeveledUp {
        user_id: "u1".into(),
        level: n,
        at: t(),
    };
    let badge = |b: &str| UserEvent::BadgeEarned {
        user_id: "u1".into(),
        badge: b.into(),
        at: t(),
    };
    AggregateTest::<User>::given([registered("u1")])
        .when(|u| u.reach_level("u1", 2, t()))
        .then_events([level(2)]);
    AggregateTest::<User>::given([registered("u1")])
        .when(|u| u.reach_level("u1", 1, t()))
        .then_error(UserError::LevelAlreadyReached(1));
    AggregateTest::<User>::given([registered("u1"), level(3)])
        .when(|u| u.reach_level("u1", 3, t()))
        .then_error(UserError::LevelAlreadyReached(3));
    AggregateTest::<User>::given([registered("u1"), level(3)])
        .when(|u| u.reach_level("u1", 5, t()))
        .then_events([level(5)]);
    AggregateTest::<User>::given_no_events()
        .when(|u| u.reach_level("u1", 2, t()))
        .then_error(UserError::NotRegistered);
    AggregateTest::<User>::given([registered("u1")])
        .when(|u| u.earn_badge("u1", "first-story", t()))
        .then_events([badge("first-story")]);
    AggregateTest::<User>::given([registered("u1"), badge("first-story")])
        .when(|u| u.earn_badge("u1", "first-story", t()))
        .then_error(UserError::BadgeAlreadyEarned("first-story".into()));
    AggregateTest::<User>::given([registered("u1")])
        .when(|u| u.earn_badge("u1", " ", t()))
        .then_error(UserError::BadgeAlreadyEarned(" ".into()));
}
