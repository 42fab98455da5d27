//! Users: registration, profile, follows, and XP credited by process managers.

use chrono::{DateTime, Utc};
use recount::aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A user (stream `user-<id>`).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The reserved username (empty until registered).
    pub username: String,
    /// The name shown to others.
    pub display_name: String,
    /// Users this one follows.
    pub following: BTreeSet<String>,
    /// Keys of XP credits already granted (so a credit is never granted twice).
    pub credits: BTreeSet<String>,
    /// SHA-256 (hex) of the user's API token secret; the token itself is never stored.
    #[serde(default)]
    pub token_hash: String,
    /// The highest level recorded in the log (0: none yet; everyone starts at level 1).
    #[serde(default)]
    pub level: u32,
    /// Badges recorded in the log.
    #[serde(default)]
    pub badges: BTreeSet<String>,
}

/// Why a user command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// Registering twice.
    #[error("the user is already registered")]
    AlreadyRegistered,
    /// A command on a user never registered.
    #[error("the user is not registered")]
    NotRegistered,
    /// A display name that is empty or over 60 characters.
    #[error("the display name must have 1 to 60 characters")]
    InvalidDisplayName,
    /// Following oneself.
    #[error("a user cannot follow themselves")]
    CannotFollowSelf,
    /// Following someone already followed.
    #[error("already following `{0}`")]
    AlreadyFollowing(String),
    /// Unfollowing someone not followed.
    #[error("not following `{0}`")]
    NotFollowing(String),
    /// An XP credit that is not positive.
    #[error("an XP credit must be positive")]
    InvalidCredit,
    /// The same credit (same key) granted again.
    #[error("XP credit `{0}` was already granted")]
    AlreadyCredited(String),
    /// A level at or below the one recorded.
    #[error("level {0} was already reached")]
    LevelAlreadyReached(u32),
    /// A badge recorded twice, or one without a name.
    #[error("badge `{0}` was already earned")]
    BadgeAlreadyEarned(String),
}

#[aggregate(category = "user", error = UserError)]
impl User {
    /// The user registered under a reserved username.
    #[event(name = "user.registered")]
    fn registered(
        &mut self,
        user_id: String,
        username: String,
        display_name: String,
        at: DateTime<Utc>,
    ) {
        self.username = username;
        self.display_name = display_name;
    }

    /// The user changed their profile.
    #[event(name = "user.profile_updated")]
    fn profile_updated(
        &mut self,
        user_id: String,
        display_name: String,
        bio: String,
        at: DateTime<Utc>,
    ) {
        self.display_name = display_name;
    }

    /// The user followed another.
    #[event(name = "user.followed")]
    fn followed(&mut self, user_id: String, followee: String, at: DateTime<Utc>) {
        self.following.insert(followee);
    }

    /// The user stopped following another.
    #[event(name = "user.unfollowed")]
    fn unfollowed(&mut self, user_id: String, followee: String, at: DateTime<Utc>) {
        self.following.remove(&followee);
    }

    /// An API token was issued; only its hash is kept (SHA-256 of the secret, hex). A new
    /// token replaces the old one.
    #[event(name = "user.token_issued")]
    fn token_issued(&mut self, user_id: String, token_hash: String, at: DateTime<Utc>) {
        self.token_hash = token_hash;
    }

    /// XP was credited (by a process manager, e.g. for a merged pull request).
    #[event(name = "user.xp_credited")]
    fn xp_credited(
        &mut self,
        user_id: String,
        amount: u32,
        reason: String,
        key: String,
        at: DateTime<Utc>,
    ) {
        self.credits.insert(key);
    }

    /// The user reached a level: decided by the awards process manager from the XP rules,
    /// recorded so that others can react.
    #[event(name = "user.leveled_up")]
    fn leveled_up(&mut self, user_id: String, level: u32, at: DateTime<Utc>) {
        self.level = self.level.max(level);
    }

    /// The user earned a badge (decided like a level).
    #[event(name = "user.badge_earned")]
    fn badge_earned(&mut self, user_id: String, badge: String, at: DateTime<Utc>) {
        self.badges.insert(badge);
    }

    fn registered_check(&self) -> Result<(), UserError> {
        if self.username.is_empty() {
            return Err(UserError::NotRegistered);
        }
        Ok(())
    }

    /// Registers user `user_id` (its username already reserved).
    pub fn register(
        &self,
        user_id: &str,
        username: &str,
        display_name: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserEvent>, UserError> {
        if !self.username.is_empty() {
            return Err(UserError::AlreadyRegistered);
        }
        check_display_name(display_name)?;
        Ok(vec![UserEvent::Registered {
            user_id: user_id.to_owned(),
            username: username.to_owned(),
            display_name: display_name.to_owned(),
            at: now,
        }])
    }

    /// Registers user `user_id` and issues its first API token (`token_hash`: SHA-256 hex of
    /// the token's secret), in one append.
    pub fn register_with_token(
        &self,
        user_id: &str,
        username: &str,
        display_name: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserEvent>, UserError> {
        let mut events = self.register(user_id, username, display_name, now)?;
        events.push(UserEvent::TokenIssued {
            user_id: user_id.to_owned(),
            token_hash: token_hash.to_owned(),
            at: now,
        });
        Ok(events)
    }

    /// Updates the display name and bio.
    pub fn update_profile(
        &self,
        user_id: &str,
        display_name: &str,
        bio: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserEvent>, UserError> {
        self.registered_check()?;
        check_display_name(display_name)?;
        Ok(vec![UserEvent::ProfileUpdated {
            user_id: user_id.to_owned(),
            display_name: display_name.to_owned(),
            bio: bio.to_owned(),
            at: now,
        }])
    }

    /// Follows `followee`.
    pub fn follow(
        &self,
        user_id: &str,
        followee: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserEvent>, UserError> {
        self.registered_check()?;
        if user_id == followee {
            return Err(UserError::CannotFollowSelf);
        }
        if self.following.contains(followee) {
            return Err(UserError::AlreadyFollowing(followee.to_owned()));
        }
        Ok(vec![UserEvent::Followed {
            user_id: user_id.to_owned(),
            followee: followee.to_owned(),
            at: now,
        }])
    }

    /// Stops following `followee`.
    pub fn unfollow(
        &self,
        user_id: &str,
        followee: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserEvent>, UserError> {
        self.registered_check()?;
        if !self.following.contains(followee) {
            return Err(UserError::NotFollowing(followee.to_owned()));
        }
        Ok(vec![UserEvent::Unfollowed {
            user_id: user_id.to_owned(),
            followee: followee.to_owned(),
            at: now,
        }])
    }

    /// Credits `amount` XP for `reason`, once per `key`.
    pub fn credit_xp(
        &self,
        user_id: &str,
        amount: u32,
        reason: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserEvent>, UserError> {
        self.registered_check()?;
        if amount == 0 {
            return Err(UserError::InvalidCredit);
        }
        if self.credits.contains(key) {
            return Err(UserError::AlreadyCredited(key.to_owned()));
        }
        Ok(vec![UserEvent::XpCredited {
            user_id: user_id.to_owned(),
            amount,
            reason: reason.to_owned(),
            key: key.to_owned(),
            at: now,
        }])
    }
}

impl User {
    /// Records that the user reached `level` (above the one recorded, and above 1).
    pub fn reach_level(
        &self,
        user_id: &str,
        level: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserEvent>, UserError> {
        self.registered_check()?;
        if level <= self.level.max(1) {
            return Err(UserError::LevelAlreadyReached(level));
        }
        Ok(vec![UserEvent::LeveledUp {
            user_id: user_id.to_owned(),
            level,
            at: now,
        }])
    }

    /// Records that the user earned `badge`, once.
    pub fn earn_badge(
        &self,
        user_id: &str,
        badge: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserEvent>, UserError> {
        self.registered_check()?;
        if badge.trim().is_empty() || self.badges.contains(badge) {
            return Err(UserError::BadgeAlreadyEarned(badge.to_owned()));
        }
        Ok(vec![UserEvent::BadgeEarned {
            user_id: user_id.to_owned(),
            badge: badge.to_owned(),
            at: now,
        }])
    }
}

fn check_display_name(name: &str) -> Result<(), UserError> {
    if name.trim().is_empty() || name.chars().count() > 60 {
        return Err(UserError::InvalidDisplayName);
    }
    Ok(())
}
