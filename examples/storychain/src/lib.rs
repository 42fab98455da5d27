//! # StoryChain
//!
//! A collaborative-fiction platform built on Recount: authors write stories whose chapters
//! branch into alternative continuations, invite collaborators, review contributions as pull
//! requests, and earn XP, levels and badges.
//!
//! - [`domain`]: the aggregates (`#[recount::aggregate]`), pure and synchronous.
//! - [`readmodel`]: SQL read models on SQLite, fed by projections, and their queries.
//! - [`process`]: process managers (pull request merged, milestones).
//! - [`integration`]: what StoryChain publishes to other services; [`relay`]: relays to
//!   NATS, Redis and RabbitMQ (cargo features `nats`, `redis`, `rabbitmq`).
//! - [`app`]: the application service the CLI and the HTTP API call.
//! - [`http`]: the HTTP API (axum), its OpenAPI document, and `serve`; [`token`]: API tokens;
//!   [`webhooks`]: webhook delivery.
//! - [`cli`]: the command line (clap); [`commands`]: what each command does.

pub mod app;
pub mod domain;
pub mod http;
pub mod integration;
pub mod process;
pub mod readmodel;
pub mod relay;
pub mod token;
pub mod webhooks;

pub use app::{AppError, Database, Store, StoryChain, Written};
pub mod cli;
pub mod commands;
