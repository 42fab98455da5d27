//! Collaboration on a story: invitations, joining, leaving, roles.

use chrono::{DateTime, Utc};
use recount::aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A collaborator's role. The story's owner is implicitly [`Role::Owner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The story's author.
    Owner,
    /// Invites others, reviews and merges pull requests, writes chapters.
    Editor,
    /// Writes chapters.
    Writer,
}

/// One invited or joined collaborator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Their role.
    pub role: Role,
    /// Whether they accepted the invitation.
    pub joined: bool,
}

/// The collaborators of one story (stream `collaboration-<story id>`).
///
/// Commands take the story's owner (read from the [`super::Story`] by the application
/// service): ownership never changes, so the value cannot be stale.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collaboration {
    /// Invited and joined collaborators by user id.
    pub members: BTreeMap<String, Member>,
}

/// Why a collaboration command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollaborationError {
    /// Only the owner and joined editors invite.
    #[error("only the owner and editors may invite")]
    NotAllowedToInvite,
    /// Only the owner changes roles.
    #[error("only the owner may change roles")]
    NotOwner,
    /// Inviting the owner, or giving someone the owner role.
    #[error("the owner role cannot be given")]
    InvalidRole,
    /// Inviting someone already invited or joined.
    #[error("`{0}` is already invited")]
    AlreadyInvited(String),
    /// Joining without an invitation.
    #[error("`{0}` was not invited")]
    NotInvited(String),
    /// Joining twice.
    #[error("`{0}` has already joined")]
    AlreadyJoined(String),
    /// Leaving or changing the role of someone who has not joined.
    #[error("`{0}` is not a collaborator")]
    NotMember(String),
    /// Changing a role to the one held.
    #[error("`{0}` already has that role")]
    SameRole(String),
}

#[aggregate(category = "collaboration", error = CollaborationError)]
impl Collaboration {
    /// A user was invited with a role.
    #[event(name = "collaborator.invited")]
    fn invited(
        &mut self,
        story_id: String,
        user_id: String,
        role: Role,
        invited_by: String,
        at: DateTime<Utc>,
    ) {
        self.members.insert(
            user_id,
            Member {
                role,
                joined: false,
            },
        );
    }

    /// An invited user joined.
    #[event(name = "collaborator.joined")]
    fn joined(&mut self, story_id: String, user_id: String, role: Role, at: DateTime<Utc>) {
        if let Some(m) = self.members.get_mut(&user_id) {
            m.joined = true;
        }
    }

    /// A collaborator left.
    #[event(name = "collaborator.left")]
    fn left(&mut self, story_id: String, user_id: String, at: DateTime<Utc>) {
        self.members.remove(&user_id);
    }

    /// The owner changed a collaborator's role.
    #[event(name = "collaborator.role_changed")]
    fn role_changed(
        &mut self,
        story_id: String,
        user_id: String,
        role: Role,
        changed_by: String,
        at: DateTime<Utc>,
    ) {
        if let Some(m) = self.members.get_mut(&user_id) {
            m.role = role;
        }
    }

    /// The role `user` holds on a story owned by `owner` (`None`: not a joined collaborator).
    pub fn role_of(&self, owner: &str, user: &str) -> Option<Role> {
        if user == owner {
            return Some(Role::Owner);
        }
        self.members.get(user).filter(|m| m.joined).map(|m| m.role)
    }

    /// `by` invites `user` as `role`.
    pub fn invite(
        &self,
        story_id: &str,
        owner: &str,
        by: &str,
        user: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<Vec<CollaborationEvent>, CollaborationError> {
        if !matches!(self.role_of(owner, by), Some(Role::Owner | Role::Editor)) {
            return Err(CollaborationError::NotAllowedToInvite);
        }
        if role == Role::Owner || user == owner {
            return Err(CollaborationError::InvalidRole);
        }
        if self.members.contains_key(user) {
            return Err(CollaborationError::AlreadyInvited(user.to_owned()));
        }
        Ok(vec![CollaborationEvent::Invited {
            story_id: story_id.to_owned(),
            user_id: user.to_owned(),
            role,
            invited_by: by.to_owned(),
            at: now,
        }])
    }

    /// `user` accepts their invitation.
    pub fn join(
        &self,
        story_id: &str,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<CollaborationEvent>, CollaborationError> {
        let member = self
            .members
            .get(user)
            .ok_or_else(|| CollaborationError::NotInvited(user.to_owned()))?;
        if member.joined {
            return Err(CollaborationError::AlreadyJoined(user.to_owned()));
        }
        Ok(vec![CollaborationEvent::Joined {
            story_id: story_id.to_owned(),
            user_id: user.to_owned(),
            role: member.role,
            at: now,
        }])
    }

    /// `user` leaves the story.
    pub fn leave(
        &self,
        story_id: &str,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<CollaborationEvent>, CollaborationError> {
        if !self.members.get(user).is_some_and(|m| m.joined) {
            return Err(CollaborationError::NotMember(user.to_owned()));
        }
        Ok(vec![CollaborationEvent::Left {
            story_id: story_id.to_owned(),
            user_id: user.to_owned(),
            at: now,
        }])
    }

    /// The owner gives `user` another role.
    pub fn change_role(
        &self,
        story_id: &str,
        owner: &str,
        by: &str,
        user: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<Vec<CollaborationEvent>, CollaborationError> {
        if by != owner {
            return Err(CollaborationError::NotOwner);
        }
        if role == Role::Owner {
            return Err(CollaborationError::InvalidRole);
        }
        let member = self
            .members
            .get(user)
            .filter(|m| m.joined)
            .ok_or_else(|| CollaborationError::NotMember(user.to_owned()))?;
        if member.role == role {
            return Err(CollaborationError::SameRole(user.to_owned()));
        }
        Ok(vec![CollaborationEvent::RoleChanged {
            story_id: story_id.to_owned(),
            user_id: user.to_owned(),
            role,
            changed_by: by.to_owned(),
            at: now,
        }])
    }
}
