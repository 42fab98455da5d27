//! Users, stories and collaboration.

use super::{by, exec, AppError, StoryChain, Written};
use crate::domain::{Genre, Role, Story, StoryStatus, User, UsernameError, Visibility};
use chrono::Utc;
use uuid::Uuid;

impl StoryChain {
    /// Registers a user: reserves the username (its own stream, appended at version 0, so two
    /// racing registrations of one name cannot both win), then records the registration.
    pub async fn register(&self, username: &str, display_name: &str) -> Result<Written, AppError> {
        Ok(self.register_with_token(username, display_name).await?.0)
    }

    /// Registers a user and issues an API token: the written events (the id is the new user's)
    /// and the token, which is returned once and stored only as a hash.
    pub async fn register_with_token(
        &self,
        username: &str,
        display_name: &str,
    ) -> Result<(Written, String), AppError> {
        let now = Utc::now();
        let user_id = Uuid::now_v7().to_string();
        User::default().register(&user_id, username, display_name, now)?;
        if !crate::domain::valid_username(username) {
            return Err(UsernameError::Invalid(username.to_owned()).into());
        }
        let token = crate::token::Token::issue(&user_id);
        let ctx = by(&user_id);
        let reserved = exec(&self.usernames, username, &ctx, |u| {
            u.reserve(username, &user_id, now)
        })
        .await?;
        let registered = exec(&self.users, &user_id, &ctx, |u| {
            u.register_with_token(&user_id, username, display_name, &token.hash(), now)
        })
        .await?;
        Ok((reserved.and(registered).with_id(user_id), token.to_string()))
    }

    /// Changes a user's display name and bio.
    pub async fn update_profile(
        &self,
        user_id: &str,
        display_name: &str,
        bio: &str,
    ) -> Result<Written, AppError> {
        let now = Utc::now();
        Ok(exec(&self.users, user_id, &by(user_id), |u| {
            u.update_profile(user_id, display_name, bio, now)
        })
        .await?)
    }

    /// `user_id` follows `followee`.
    pub async fn follow(&self, user_id: &str, followee: &str) -> Result<Written, AppError> {
        self.registered(followee).await?;
        let now = Utc::now();
        Ok(exec(&self.users, user_id, &by(user_id), |u| {
            u.follow(user_id, followee, now)
        })
        .await?)
    }

    /// `user_id` has read every notification up to `through` (default: now).
    pub async fn mark_inbox_read(
        &self,
        user_id: &str,
        through: Option<chrono::DateTime<Utc>>,
    ) -> Result<Written, AppError> {
        let now = Utc::now();
        let through = through.unwrap_or(now);
        Ok(exec(&self.inboxes, user_id, &by(user_id), |i| {
            i.mark_read(user_id, through, now)
        })
        .await?)
    }

    /// `user_id` stops following `followee`.
    pub async fn unfollow(&self, user_id: &str, followee: &str) -> Result<Written, AppError> {
        let now = Utc::now();
        Ok(exec(&self.users, user_id, &by(user_id), |u| {
            u.unfollow(user_id, followee, now)
        })
        .await?)
    }

    /// Creates a story owned by `author`.
    pub async fn create_story(
        &self,
        author: &str,
        title: &str,
        genre: Genre,
        visibility: Visibility,
    ) -> Result<Written, AppError> {
        self.registered(author).await?;
        let now = Utc::now();
        let id = Uuid::now_v7().to_string();
        Ok(exec(&self.stories, &id, &by(author), |s| {
            s.create(&id, title, genre, author, visibility, now)
        })
        .await?)
    }

    /// The owner changes a story's title, genre and visibility.
    pub async fn update_story(
        &self,
        story_id: &str,
        by_user: &str,
        title: &str,
        genre: Genre,
        visibility: Visibility,
    ) -> Result<Written, AppError> {
        let now = Utc::now();
        let ctx = by(by_user);
        Ok(exec(&self.stories, story_id, &ctx, |s| {
            s.update_details(story_id, by_user, title, genre, visibility, now)
        })
        .await?)
    }

    /// The owner publishes a story.
    pub async fn publish_story(&self, story_id: &str, by_user: &str) -> Result<Written, AppError> {
        let now = Utc::now();
        Ok(exec(&self.stories, story_id, &by(by_user), |s| {
            s.publish(story_id, by_user, now)
        })
        .await?)
    }

    /// The owner archives a story.
    pub async fn archive_story(&self, story_id: &str, by_user: &str) -> Result<Written, AppError> {
        let now = Utc::now();
        Ok(exec(&self.stories, story_id, &by(by_user), |s| {
            s.archive(story_id, by_user, now)
        })
        .await?)
    }

    /// `by_user` (owner or editor) invites `user_id` to a story as `role`.
    pub async fn invite(
        &self,
        story_id: &str,
        by_user: &str,
        user_id: &str,
        role: Role,
    ) -> Result<Written, AppError> {
        let story = self.existing_story(story_id).await?;
        self.registered(user_id).await?;
        let now = Utc::now();
        let ctx = by(by_user);
        Ok(exec(&self.collaborations, story_id, &ctx, |c| {
            c.invite(story_id, &story.owner, by_user, user_id, role, now)
        })
        .await?)
    }

    /// An invited user joins a story.
    pub async fn join(&self, story_id: &str, user_id: &str) -> Result<Written, AppError> {
        let now = Utc::now();
        Ok(exec(&self.collaborations, story_id, &by(user_id), |c| {
            c.join(story_id, user_id, now)
        })
        .await?)
    }

    /// A collaborator leaves a story.
    pub async fn leave(&self, story_id: &str, user_id: &str) -> Result<Written, AppError> {
        let now = Utc::now();
        Ok(exec(&self.collaborations, story_id, &by(user_id), |c| {
            c.leave(story_id, user_id, now)
        })
        .await?)
    }

    /// The owner changes a collaborator's role.
    pub async fn change_role(
        &self,
        story_id: &str,
        by_user: &str,
        user_id: &str,
        role: Role,
    ) -> Result<Written, AppError> {
        let story = self.existing_story(story_id).await?;
        let now = Utc::now();
        let ctx = by(by_user);
        Ok(exec(&self.collaborations, story_id, &ctx, |c| {
            c.change_role(story_id, &story.owner, by_user, user_id, role, now)
        })
        .await?)
    }

    /// The role `user_id` holds on a story (`None`: not a collaborator).
    pub async fn role_of(
        &self,
        story: &Story,
        story_id: &str,
        user_id: &str,
    ) -> Result<Option<Role>, AppError> {
        if story.owner == user_id {
            return Ok(Some(Role::Owner));
        }
        Ok(self
            .collaborations
            .load(story_id)
            .await?
            .state
            .role_of(&story.owner, user_id))
    }

    /// The story's owner registers a webhook for the story's events of `event_types`,
    /// POSTed to `url` and signed with `secret`. The id in [`Written`] is the webhook's.
    pub async fn register_webhook(
        &self,
        story_id: &str,
        by_user: &str,
        url: &str,
        event_types: &[String],
        secret: &str,
    ) -> Result<Written, AppError> {
        let story = self.existing_story(story_id).await?;
        if story.owner != by_user {
            return Err(crate::domain::StoryError::NotOwner.into());
        }
        let now = Utc::now();
        let id = Uuid::now_v7().to_string();
        let new = crate::domain::NewWebhook {
            story_id,
            owner: by_user,
            url,
            event_types,
            secret,
            allowed_hosts: self.webhook_hosts(),
        };
        Ok(exec(&self.webhooks, &id, &by(by_user), |w| {
            w.register(&id, new, now)
        })
        .await?)
    }

    /// The webhook's owner removes it; nothing more is delivered to it.
    pub async fn remove_webhook(
        &self,
        webhook_id: &str,
        by_user: &str,
    ) -> Result<Written, AppError> {
        let now = Utc::now();
        Ok(exec(&self.webhooks, webhook_id, &by(by_user), |w| {
            w.remove(webhook_id, by_user, now)
        })
        .await?)
    }

    pub(crate) async fn existing_story(&self, story_id: &str) -> Result<Story, AppError> {
        let story = self.story(story_id).await?;
        if story.status == StoryStatus::None {
            return Err(AppError::NotFound("story"));
        }
        Ok(story)
    }

    async fn registered(&self, user_id: &str) -> Result<User, AppError> {
        let user = self.user(user_id).await?;
        if user.username.is_empty() {
            return Err(AppError::NotFound("user"));
        }
        Ok(user)
    }
}
