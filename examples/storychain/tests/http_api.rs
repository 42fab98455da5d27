//! The HTTP API end to end: a real server on a loopback port (with its background consumers),
//! a real HTTP client.

use recount::RecordedEvent;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

mod common;
use common::{error_code, Server, ADMIN};

common::on_both_engines!(
    a_whole_story_life_through_the_api,
    every_error_class_has_its_status_and_writes_nothing,
    no_header_query_or_body_field_lets_one_user_act_as_another,
    twenty_users_voting_and_branching_at_once_leave_one_vote_each_and_totals_that_add_up,
    two_users_racing_for_one_username_end_with_one_account,
    the_openapi_document_lists_every_route,
    admin_routes_take_the_admin_token_and_refuse_user_tokens,
    the_events_api_filters_pages_and_finds_events,
    the_inbox_tells_followers_collaborators_authors_and_owners,
    notifications_are_marked_read_up_to_a_time_or_all_at_once,
    a_rebuild_through_the_admin_api_switches_readers_with_queries_answered_throughout,
);

async fn a_whole_story_life_through_the_api() {
    let s = Server::start().await;
    let (ada, ada_t) = s.register("ada").await;
    let (bob, bob_t) = s.register("bob").await;
    let (cy, cy_t) = s.register("cyd").await;
    for (token, followee) in [(&bob_t, &ada), (&cy_t, &ada), (&ada_t, &bob)] {
        let (status, v) = s
            .post("/users/me/following", token, json!({ "user_id": followee }))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let story_body =
        json!({ "title": "The Clockwork Orchard", "genre": "fantasy", "visibility": "private" });
    let (status, v) = s.post("/stories", &ada_t, story_body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["events"][0]["type"], "story.created");
    let story = v["id"].as_str().unwrap().to_owned();
    let (status, _) = s
        .post(&format!("/stories/{story}/publish"), &ada_t, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let chapter = |title: &str, parent: Option<&str>| json!({ "title": title, "content": format!("{title}: the words of it"), "parent": parent });
    let (status, v) = s
        .post(
            &format!("/stories/{story}/chapters"),
            &ada_t,
            chapter("One", None),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let one = v["id"].as_str().unwrap().to_owned();
    // Bob is not a collaborator of the private story yet.
    let (status, v) = s
        .post(
            &format!("/stories/{story}/chapters"),
            &bob_t,
            chapter("Two", Some(&one)),
        )
        .await;
    assert_eq!(
        (status, error_code(&v)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{v}"
    );
    let (status, v) = s
        .post(
            &format!("/stories/{story}/collaborators"),
            &ada_t,
            json!({ "user_id": bob, "role": "writer" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = s
        .post(
            &format!("/stories/{story}/collaborators/me"),
            &bob_t,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = s
        .post(
            &format!("/stories/{story}/chapters"),
            &bob_t,
            chapter("Two", Some(&one)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = s
        .post(
            &format!("/stories/{story}/chapters"),
            &ada_t,
            chapter("Two, otherwise", Some(&one)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert!(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "chapter.branched"),
        "{v}"
    );
    // Cy proposes a chapter; Ada reviews and merges it.
    let (status, v) = s
        .post(
            &format!("/stories/{story}/pulls"),
            &cy_t,
            json!({ "base_chapter": one, "title": "Three", "content": "cy's proposal" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let pr = v["id"].as_str().unwrap().to_owned();
    let (status, v) = s
        .post(
            &format!("/pulls/{pr}/reviews"),
            &ada_t,
            json!({ "verdict": "approve", "comment": "lovely" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let correlation = uuid::Uuid::now_v7();
    let merged = s
        .client
        .post(s.url(&format!("/pulls/{pr}/merge")))
        .bearer_auth(&ada_t)
        .header("x-correlation-id", correlation.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(merged.status(), StatusCode::OK);
    assert_eq!(
        merged.headers()["x-correlation-id"],
        correlation.to_string().as_str()
    );
    // Votes and a comment.
    for token in [&bob_t, &cy_t] {
        let (status, v) = s
            .call(
                reqwest::Method::PUT,
                "/votes",
                Some(token),
                Some(json!({ "target": { "story_id": story }, "value": 1 })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let (status, v) = s
        .post(
            "/comments",
            &cy_t,
            json!({ "target": { "story_id": story }, "text": "more please" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let cursor = v["cursor"].as_str().unwrap().to_owned();

    // Read your writes: the catalogue after the comment's cursor shows both votes.
    let (status, v) = s
        .get(&format!("/stories?after={cursor}&genre=fantasy"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let row = v["stories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["story_id"] == story.as_str())
        .unwrap();
    assert_eq!(row["votes"], 2, "{row}");
    // The merge's process manager writes the merged chapter; the tree shows it once there,
    // and the catalogue (another model, which may lag the chapters one) counts it.
    let tree = s
        .eventually(&format!("/stories/{story}"), None, |v| {
            v["chapters"].as_array().is_some_and(|c| c.len() == 4) && v["story"]["branches"] == 2
        })
        .await;
    let titles: HashSet<&str> = tree["chapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        HashSet::from(["One", "Two", "Two, otherwise", "Three"])
    );
    assert_eq!(tree["story"]["branches"], 2, "{tree}");
    // XP for the merged pull request, in Cy's profile.
    let profile = s
        .eventually(&format!("/users/{cy}"), None, |v| v["merged_prs"] == 1)
        .await;
    assert!(profile["xp"].as_i64().unwrap() > 0, "{profile}");
    // Ada's inbox: her followers, and the merge.
    let inbox = s
        .eventually("/users/me/inbox", Some(&ada_t), |v| {
            v["notifications"].as_array().is_some_and(|n| n.len() >= 2)
        })
        .await;
    let kinds: Vec<&str> = inbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"new_follower"), "{kinds:?}");
    // Level-ups and badges are events in the log, recorded by the awards process manager:
    // Ada's story and chapters take her past 100 XP (level 2) and earn her first badges; Cy's
    // merged pull request earns his.
    let leveled = s
        .eventually("/events?type=user.leveled_up", Some(ADMIN), |v| {
            v["events"].as_array().is_some_and(|e| {
                e.iter()
                    .any(|e| e["payload"]["user_id"] == ada && e["payload"]["level"] == 2)
            })
        })
        .await;
    let ada_level_2 = leveled["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["payload"]["user_id"] == ada && e["payload"]["level"] == 2)
        .count();
    assert_eq!(ada_level_2, 1, "level 2 recorded once: {leveled}");
    let badges = s
        .eventually("/events?type=user.badge_earned", Some(ADMIN), |v| {
            let has = |user: &str, badge: &str| {
                v["events"].as_array().is_some_and(|e| {
                    e.iter()
                        .any(|e| e["payload"]["user_id"] == user && e["payload"]["badge"] == badge)
                })
            };
            has(&ada, "first-story") && has(&ada, "first-branch") && has(&cy, "first-merged-pr")
        })
        .await;
    let mut pairs: Vec<(String, String)> = badges["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["payload"]["user_id"].as_str().unwrap().to_owned(),
                e["payload"]["badge"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let n = pairs.len();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), n, "each badge recorded once");
    // The inbox tells of them from those events, once each.
    let inbox = s
        .eventually("/users/me/inbox?limit=100", Some(&ada_t), |v| {
            let kinds: Vec<&str> = v["notifications"]
                .as_array()
                .map(|a| a.iter().filter_map(|n| n["kind"].as_str()).collect())
                .unwrap_or_default();
            kinds.contains(&"level_up") && kinds.contains(&"badge")
        })
        .await;
    let messages: Vec<&str> = inbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "level_up")
        .filter_map(|n| n["message"].as_str())
        .collect();
    assert_eq!(messages, ["You reached level 2"], "{inbox}");
    // The merge's correlation chain, from the events API: the request's event, then what the
    // process manager did because of it, each naming its cause.
    let chain = s
        .eventually(
            &format!("/events/correlation/{correlation}"),
            Some(ADMIN),
            |v| {
                v["events"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["type"] == "user.xp_credited"))
            },
        )
        .await;
    let chain = chain["events"].as_array().unwrap();
    let types: Vec<&str> = chain.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"pr.merged"), "{types:?}");
    assert!(
        types.iter().any(|t| t.starts_with("chapter.")),
        "the merged chapter: {types:?}"
    );
    let merged_id = chain[0]["id"].as_str().unwrap();
    assert!(chain
        .iter()
        .all(|e| e["correlation_id"] == correlation.to_string()));
    assert!(chain[1..].iter().all(|e| e["causation_id"].is_string()));
    assert!(chain[1..].iter().any(|e| e["causation_id"] == merged_id));
    let in_log: Vec<String> = s
        .log()
        .await
        .into_iter()
        .filter(|e| e.metadata().unwrap().correlation_id == Some(correlation))
        .map(|e| e.id.to_string())
        .collect();
    let from_api: Vec<&str> = chain.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(from_api, in_log, "the whole chain, in log order");
    s.stop().await;
}

async fn every_error_class_has_its_status_and_writes_nothing() {
    let s = Server::start().await;
    let (_ada, ada_t) = s.register("ada").await;
    let (_bob, bob_t) = s.register("bob").await;
    let (story, one) = s.story_with_root(&ada_t, "T", "mystery").await;
    let vote = json!({ "target": { "story_id": story }, "value": 1 });
    let (status, _) = s
        .call(
            reqwest::Method::PUT,
            "/votes",
            Some(&bob_t),
            Some(vote.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    s.settled().await;
    let before = s.log().await.len();
    let raw = |path: &str, body: &'static str| {
        s.client
            .post(s.url(path))
            .bearer_auth(&ada_t)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(StatusCode, &str, (StatusCode, Value))> = vec![
        // 400: malformed JSON, an invalid field, an unknown field.
        (StatusCode::BAD_REQUEST, "invalid_input", {
            let r = raw("/stories", "{\"title\": ").await.unwrap();
            (r.status(), r.json().await.unwrap())
        }),
        (
            StatusCode::BAD_REQUEST,
            "invalid_input",
            s.post(
                "/stories",
                &ada_t,
                json!({ "title": "", "genre": "mystery", "visibility": "public" }),
            )
            .await,
        ),
        (
            StatusCode::BAD_REQUEST,
            "invalid_input",
            s.post(
                "/stories",
                &ada_t,
                json!({ "title": "x", "genre": "opera", "visibility": "public" }),
            )
            .await,
        ),
        (
            StatusCode::BAD_REQUEST,
            "invalid_input",
            s.call(
                reqwest::Method::PUT,
                "/votes",
                Some(&bob_t),
                Some(json!({ "target": { "story_id": story }, "value": 7 })),
            )
            .await,
        ),
        // 401: no token, a wrong one, one forged for another user.
        (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            s.call(
                reqwest::Method::POST,
                "/stories",
                None,
                Some(json!({ "title": "x", "genre": "mystery", "visibility": "public" })),
            )
            .await,
        ),
        (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            s.post(
                "/stories",
                "sc1.nobody.0000000000000000000000000000000000000000000000000000000000000000",
                json!({ "title": "x", "genre": "mystery", "visibility": "public" }),
            )
            .await,
        ),
        (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            s.post(
                "/stories",
                "not a token",
                json!({ "title": "x", "genre": "mystery", "visibility": "public" }),
            )
            .await,
        ),
        // 403: Bob may not publish Ada's story.
        (
            StatusCode::FORBIDDEN,
            "forbidden",
            s.post(&format!("/stories/{story}/publish"), &bob_t, json!({}))
                .await,
        ),
        // 404: no such story, no such route.
        (
            StatusCode::NOT_FOUND,
            "not_found",
            s.post("/stories/no-such-story/publish", &ada_t, json!({}))
                .await,
        ),
        (
            StatusCode::NOT_FOUND,
            "not_found",
            s.get("/nowhere", None).await,
        ),
        // 409: the same vote again; a branch of a chapter that does not exist is a 404.
        (
            StatusCode::CONFLICT,
            "conflict",
            s.call(
                reqwest::Method::PUT,
                "/votes",
                Some(&bob_t),
                Some(vote.clone()),
            )
            .await,
        ),
        (
            StatusCode::NOT_FOUND,
            "not_found",
            s.post(
                &format!("/stories/{story}/chapters"),
                &ada_t,
                json!({ "title": "x", "content": "y", "parent": "nope" }),
            )
            .await,
        ),
        // 413: a body over the limit.
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            s.post(
                &format!("/stories/{story}/chapters"),
                &ada_t,
                json!({ "title": "x", "content": "w ".repeat(200_000), "parent": one }),
            )
            .await,
        ),
    ];
    for (i, (status, code, (got, body))) in cases.into_iter().enumerate() {
        assert_eq!((got, error_code(&body)), (status, code), "case {i}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "case {i}"
        );
    }
    assert_eq!(
        s.log().await.len(),
        before,
        "no refused request wrote anything"
    );
    s.stop().await;
}

async fn no_header_query_or_body_field_lets_one_user_act_as_another() {
    let s = Server::start().await;
    let (ada, ada_t) = s.register("ada").await;
    let (bob, _bob_t) = s.register("bob").await;
    s.settled().await;
    let before = s.log().await.len();
    let body =
        json!({ "title": "Mine", "genre": "romance", "visibility": "public", "author": bob });
    let (status, v) = s.post("/stories", &ada_t, body).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an unknown body field is refused: {v}"
    );
    let response = s
        .client
        .post(s.url(&format!("/stories?user_id={bob}&author={bob}")))
        .bearer_auth(&ada_t)
        .header("x-user-id", &bob)
        .header("x-forwarded-user", &bob)
        .json(&json!({ "title": "Mine", "genre": "romance", "visibility": "public" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let log = s.log().await;
    assert_eq!(log.len(), before + 1);
    let created = &log[before];
    assert_eq!(
        created.metadata().unwrap().user_id.as_deref(),
        Some(ada.as_str())
    );
    let payload: Value = created.payload_as().unwrap();
    assert_eq!(
        payload["author"],
        ada.as_str(),
        "the token's user, whatever else was said"
    );
    // A token with Ada's secret but Bob's id does not pass.
    let secret = ada_t.rsplit('.').next().unwrap();
    let forged = format!("sc1.{bob}.{secret}");
    let (status, _) = s
        .post("/users/me/following", &forged, json!({ "user_id": ada }))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.stop().await;
}

async fn twenty_users_voting_and_branching_at_once_leave_one_vote_each_and_totals_that_add_up() {
    let s = Server::start().await;
    let (_, owner) = s.register("owner").await;
    let (story, root) = s.story_with_root(&owner, "Crowd", "sci_fi").await;
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(s.register(&format!("voter{i}")).await.1);
    }
    s.settled().await;
    let before = s.log().await.len();
    let s = std::sync::Arc::new(s);
    let tasks: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, token)| {
            let (s, token, story, root) = (s.clone(), token.clone(), story.clone(), root.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                // Each votes up, then maybe changes its mind, then the same again (a 409).
                let values: &[i8] = if i % 3 == 0 { &[1, -1, -1] } else { &[1, 1] };
                for value in values {
                    let body = json!({ "target": { "story_id": story }, "value": value });
                    let (status, _) = s.call(reqwest::Method::PUT, "/votes", Some(&token), Some(body)).await;
                    outcomes.push((*value, status));
                }
                let branch = json!({ "title": format!("Branch {i}"), "content": "a way on", "parent": root });
                let (status, v) = s.post(&format!("/stories/{story}/chapters"), &token, branch).await;
                assert_eq!(status, StatusCode::CREATED, "{v}");
                outcomes
            })
        })
        .collect();
    let mut expected_total = 0i64;
    let mut conflicts = 0;
    for t in tasks {
        let outcomes = t.await.unwrap();
        let mut last = 0i64;
        for (value, status) in outcomes {
            match status {
                StatusCode::OK => last = i64::from(value),
                StatusCode::CONFLICT => conflicts += 1,
                other => panic!("unexpected {other}"),
            }
        }
        expected_total += last;
    }
    assert!(
        conflicts >= 20,
        "every repeated vote was refused: {conflicts}"
    );
    let log = s.log().await;
    let mut votes_per_user: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut cast: BTreeMap<String, u32> = BTreeMap::new();
    for e in &log[before..] {
        if e.event_type == "vote.cast" {
            *cast
                .entry(e.metadata().unwrap().user_id.unwrap())
                .or_default() += 1;
        }
        if e.event_type.starts_with("vote.") {
            let p: Value = e.payload_as().unwrap();
            votes_per_user
                .entry(e.metadata().unwrap().user_id.unwrap())
                .or_default()
                .push(p["value"].as_i64().unwrap_or(0));
        }
    }
    assert_eq!(votes_per_user.len(), 20);
    assert!(
        cast.values().all(|n| *n == 1),
        "at most one vote per (user, target): {cast:?}"
    );
    for (user, votes) in &votes_per_user {
        assert!(
            votes.windows(2).all(|w| w[0] != w[1]),
            "{user} never cast the same vote twice: {votes:?}"
        );
    }
    let count = |t: &str| log[before..].iter().filter(|e| e.event_type == t).count();
    assert_eq!(count("chapter.created"), 20, "every chapter landed once");
    assert_eq!(
        count("chapter.branched"),
        19,
        "all but the first continuation are branches"
    );
    let cursor = log.last().unwrap().cursor;
    let (status, v) = s
        .get(&format!("/stories/{story}?after={cursor}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["story"]["votes"], expected_total,
        "read model total = total from the 2xx answers"
    );
    assert_eq!(v["chapters"].as_array().unwrap().len(), 21);
    Server::stop_shared(s).await;
}

async fn two_users_racing_for_one_username_end_with_one_account() {
    let s = std::sync::Arc::new(Server::start().await);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let body = json!({ "username": "samename", "display_name": "Racer" });
                s.call(reqwest::Method::POST, "/users", None, Some(body))
                    .await
                    .0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let won = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(won, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let registered = s
        .log()
        .await
        .iter()
        .filter(|e| e.event_type == "user.registered")
        .count();
    assert_eq!(registered, 1, "exactly one account");
    Server::stop_shared(s).await;
}

async fn the_openapi_document_lists_every_route() {
    let s = Server::start().await;
    let (status, doc) = s.get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/users",
        "/stories",
        "/stories/{story_id}/chapters",
        "/pulls/{pr_id}/merge",
        "/votes",
        "/users/me/inbox",
        "/health",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
    let (status, v) = s.get("/health", None).await;
    assert_eq!((status, &v["status"]), (StatusCode::OK, &json!("ok")));
    s.stop().await;
}

async fn admin_routes_take_the_admin_token_and_refuse_user_tokens() {
    let s = Server::start().await;
    let (_, user) = s.register("ada").await;
    for path in [
        "/admin/consumers",
        "/admin/dead-letters",
        "/events",
        "/events/stats",
    ] {
        let (status, v) = s.get(path, Some(&user)).await;
        assert_eq!(
            (status, error_code(&v)),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{path}: {v}"
        );
        let (status, _) = s.get(path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let (status, _) = s.get(path, Some("the-admin-token-for-tests ")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{path} (surrounding space is not part of a token)"
        );
        let (status, _) = s.get(path, Some("the-admin-token-for-test")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, v) = s.get("/admin/consumers", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = v["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["checkpoint_name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"projection:catalogue:v1") && names.contains(&"process:pr-merge"),
        "{names:?}"
    );
    let (status, v) = s.get("/admin/dead-letters", Some(ADMIN)).await;
    assert_eq!((status, v), (StatusCode::OK, json!([])));
    let (status, v) = s
        .post(
            &format!("/admin/dead-letters/{}/retry", uuid::Uuid::now_v7()),
            ADMIN,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, error_code(&v)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, v) = s.get("/health", None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["consumers"].as_array().unwrap().len(), names.len());
    s.stop().await;
}

/// Follows `next` from `path` (which has a query string) until it is absent.
async fn all_pages(s: &Server, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut url = path.to_owned();
    loop {
        let (status, v) = s.get(&url, Some(ADMIN)).await;
        assert_eq!(status, StatusCode::OK, "{url}: {v}");
        out.extend(v["events"].as_array().unwrap().iter().cloned());
        match v["next"].as_str() {
            Some(next) => url = format!("{path}&after={next}"),
            None => return out,
        }
    }
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_events_api_filters_pages_and_finds_events() {
    let s = Server::start().await;
    let (_, ada) = s.register("ada").await;
    s.register("bob").await;
    let (story, _) = s.story_with_root(&ada, "Logbook", "mystery").await;
    s.settled().await;
    let log = s.log().await;
    let want = |keep: &dyn Fn(&RecordedEvent) -> bool| -> Vec<String> {
        log.iter()
            .filter(|e| keep(e))
            .map(|e| e.id.to_string())
            .collect()
    };

    let users = all_pages(&s, "/events?category=user&limit=1").await;
    assert_eq!(ids(&users), want(&|e| e.stream.category() == "user"));
    assert!(users.len() >= 2);
    let registered = all_pages(&s, "/events?type=user.registered&limit=1000").await;
    assert_eq!(registered.len(), 2);
    assert_eq!(
        all_pages(&s, "/events?category=story&type=user.registered").await,
        Vec::<Value>::new(),
        "category and type must both hold"
    );
    assert_eq!(
        ids(&all_pages(&s, "/events?category=user&type=user.registered&limit=1").await),
        ids(&registered)
    );
    let stream = format!("story-{story}");
    let of_story = all_pages(&s, &format!("/events?stream={stream}&limit=2")).await;
    assert_eq!(ids(&of_story), want(&|e| e.stream.to_string() == stream));
    assert_eq!(of_story[0]["type"], "story.created");
    assert_eq!(of_story[0]["payload"]["title"], "Logbook");

    // A time range splits the log with nothing lost or repeated.
    let middle = &log[log.len() / 2];
    let at = middle
        .recorded_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let since = all_pages(&s, &format!("/events?from={at}&limit=3")).await;
    let before = all_pages(&s, &format!("/events?to={at}&limit=3")).await;
    assert!(ids(&since).contains(&middle.id.to_string()));
    assert_eq!(since.len() + before.len(), log.len());

    // One event.
    let (status, v) = s.get(&format!("/events/{}", middle.id), Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["type"].as_str(), v["version"].as_u64()),
        (Some(middle.event_type.as_str()), Some(middle.version))
    );
    let (status, v) = s
        .get(&format!("/events/{}", uuid::Uuid::now_v7()), Some(ADMIN))
        .await;
    assert_eq!(
        (status, error_code(&v)),
        (StatusCode::NOT_FOUND, "not_found")
    );

    // Statistics, once the statistics model has read the log.
    let total = log.len() as i64;
    let stats = s
        .eventually("/events/stats", Some(ADMIN), |v| v["total"] == total)
        .await;
    assert!(stats["types"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["type"] == "user.registered" && t["count"] == 2));

    // Bad input, each a 400 naming the field.
    for (path, field) in [
        ("/events?limit=0", "limit"),
        ("/events?limit=1001", "limit"),
        ("/events?limit=many", "limit"),
        ("/events?from=yesterday", "from"),
        ("/events?to=2025-13-01T00:00:00Z", "to"),
        ("/events?after=nowhere", "after"),
        ("/events?stream=-nameless", "stream"),
        ("/events?correlation_id=42", "correlation_id"),
        ("/events/not-a-uuid", "event_id"),
        ("/events/correlation/not-a-uuid", "correlation_id"),
    ] {
        let (status, v) = s.get(path, Some(ADMIN)).await;
        assert_eq!(
            (status, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_input"),
            "{path}: {v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{path}: {v}"
        );
    }
    s.stop().await;
}

/// The kinds of `token`'s notifications, once at least `n` are there.
async fn inbox_kinds(s: &Server, token: &str, n: usize) -> Vec<String> {
    let inbox = s
        .eventually("/users/me/inbox", Some(token), |v| {
            v["notifications"].as_array().is_some_and(|a| a.len() >= n)
        })
        .await;
    inbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_inbox_tells_followers_collaborators_authors_and_owners() {
    let s = Server::start().await;
    let (ada, ada_t) = s.register("ada").await;
    let (bob, bob_t) = s.register("bob").await;
    let (_, cy_t) = s.register("cyr").await;
    let (_, dan_t) = s.register("dan").await;
    for token in [&bob_t, &dan_t] {
        let (status, v) = s
            .post("/users/me/following", token, json!({ "user_id": ada }))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    // Dan stops following before the story is published: he is not told.
    let (status, v) = s
        .call(
            reqwest::Method::DELETE,
            &format!("/users/me/following/{ada}"),
            Some(&dan_t),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (story, root) = s.story_with_root(&ada_t, "Notices", "horror").await;
    let (status, v) = s
        .post(&format!("/stories/{story}/publish"), &ada_t, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Bob joins as a collaborator; Cy proposes; Ada rejects; Cy comments; Bob leaves.
    let (status, v) = s
        .post(
            &format!("/stories/{story}/collaborators"),
            &ada_t,
            json!({ "user_id": bob, "role": "writer" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = s
        .post(
            &format!("/stories/{story}/collaborators/me"),
            &bob_t,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = s
        .post(
            &format!("/stories/{story}/pulls"),
            &cy_t,
            json!({ "base_chapter": root, "title": "Next", "content": "cy's idea" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let pr = v["id"].as_str().unwrap().to_owned();
    let (status, v) = s
        .post(
            &format!("/pulls/{pr}/reject"),
            &ada_t,
            json!({ "reason": "not yet" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = s
        .post(
            "/comments",
            &cy_t,
            json!({ "target": { "story_id": story }, "text": "shame" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = s
        .call(
            reqwest::Method::DELETE,
            &format!("/stories/{story}/collaborators/me"),
            Some(&bob_t),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    let bob_kinds = inbox_kinds(&s, &bob_t, 3).await;
    for kind in ["story_published", "invited", "pr_opened"] {
        assert!(
            bob_kinds.iter().any(|k| k == kind),
            "bob: {kind} in {bob_kinds:?}"
        );
    }
    let cy_kinds = inbox_kinds(&s, &cy_t, 1).await;
    assert!(cy_kinds.iter().any(|k| k == "pr_rejected"), "{cy_kinds:?}");
    assert!(
        !cy_kinds.iter().any(|k| k == "story_published"),
        "cy follows no one"
    );
    let ada_kinds = inbox_kinds(&s, &ada_t, 5).await;
    let count = |k: &str| ada_kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("collaborator"), 2, "joined and left: {ada_kinds:?}");
    assert_eq!(count("pr_opened"), 1, "{ada_kinds:?}");
    assert_eq!(count("comment"), 1, "{ada_kinds:?}");
    let dan_kinds = inbox_kinds(&s, &dan_t, 0).await;
    assert!(
        !dan_kinds.iter().any(|k| k == "story_published"),
        "an unfollower is not told: {dan_kinds:?}"
    );
    s.stop().await;
}

async fn notifications_are_marked_read_up_to_a_time_or_all_at_once() {
    let s = Server::start().await;
    let (bob, bob_t) = s.register("bob").await;
    let (_, cyr_t) = s.register("cyr").await;
    let (_, dan_t) = s.register("dan").await;
    let (_, eve_t) = s.register("eve").await;
    for token in [&cyr_t, &dan_t, &eve_t] {
        let (status, v) = s
            .post("/users/me/following", token, json!({ "user_id": bob }))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let inbox = s
        .eventually("/users/me/inbox", Some(&bob_t), |v| v["unread"] == 3)
        .await;
    let notes = inbox["notifications"].as_array().unwrap();
    assert!(notes.iter().all(|n| n["read"] == false), "{inbox}");
    // Read through the second: the first two are read, the third is not.
    let second = notes[1]["at"].as_str().unwrap();
    let (status, v) = s
        .post("/users/me/inbox/read", &bob_t, json!({ "through": second }))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["events"][0]["type"], "inbox.read", "{v}");
    let inbox = s
        .eventually("/users/me/inbox", Some(&bob_t), |v| v["unread"] == 1)
        .await;
    let read: Vec<bool> = inbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["read"].as_bool().unwrap())
        .collect();
    assert_eq!(read, [true, true, false]);
    // All at once; again changes nothing and writes nothing.
    let (status, v) = s.post("/users/me/inbox/read", &bob_t, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    s.eventually("/users/me/inbox", Some(&bob_t), |v| v["unread"] == 0)
        .await;
    let (status, v) = s
        .post("/users/me/inbox/read", &bob_t, json!({ "through": second }))
        .await;
    assert_eq!(
        (status, v["events"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0)),
        "{v}"
    );
    // Someone else's inbox is untouched.
    let (_, v) = s.get("/users/me/inbox", Some(&cyr_t)).await;
    assert_eq!(v["unread"], v["notifications"].as_array().unwrap().len());
    let (status, v) = s
        .post("/users/me/inbox/read", &bob_t, json!({ "through": "soon" }))
        .await;
    assert_eq!(
        (status, error_code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_input"),
        "{v}"
    );
    s.stop().await;
}

async fn a_rebuild_through_the_admin_api_switches_readers_with_queries_answered_throughout() {
    use storychain::readmodel::ReadModels;
    // 20,000 events by default (a debug build under CI); the 100,000 with
    // `STORYCHAIN_REBUILD_EVENTS=100000`.
    let events: u64 = std::env::var("STORYCHAIN_REBUILD_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let s = Server::start().await;
    let report = storychain::commands::generate_into(&s.app, events, 5, 2, |_| {})
        .await
        .unwrap();
    assert!(report.events >= events, "{report:?}");
    s.settled().await;
    let live = ReadModels::open(s.app.store())
        .await
        .unwrap()
        .dump("catalogue", 1)
        .await
        .unwrap();
    assert!(live.len() > 100);

    let (status, v) = s
        .post("/admin/projections/nonesuch/rebuild", ADMIN, json!({}))
        .await;
    assert_eq!(
        (status, error_code(&v)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, job) = s
        .post("/admin/projections/catalogue/rebuild", ADMIN, json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let (status, v) = s
        .post("/admin/projections/catalogue/rebuild", ADMIN, json!({}))
        .await;
    assert_eq!(
        (status, error_code(&v)),
        (StatusCode::CONFLICT, "conflict"),
        "{v}"
    );

    // Readers query throughout; every answer is a 200.
    let s = std::sync::Arc::new(s);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = tokio::spawn({
        let (s, done) = (s.clone(), done.clone());
        async move {
            let mut answered = 0u32;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, v) = s.get("/stories?limit=5&sort=votes", None).await;
                assert_eq!(status, StatusCode::OK, "during the rebuild: {v}");
                assert!(!v["stories"].as_array().unwrap().is_empty(), "{v}");
                answered += 1;
            }
            answered
        }
    });
    let mut percents = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let job = loop {
        let (status, job) = s.get(&format!("/admin/jobs/{id}"), Some(ADMIN)).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        percents.push(job["percent"].as_f64().unwrap());
        if job["state"] != "running" {
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "the rebuild never finished: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered = reader.await.unwrap();
    assert!(answered > 0, "queries ran during the rebuild");
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["from_version"], 1);
    assert_eq!(job["percent"], 100.0);
    assert_eq!(job["old_dropped"], true, "{job}");
    assert!(
        percents.len() > 2,
        "progress polled along the way: {percents:?}"
    );
    assert!(
        percents.windows(2).all(|w| w[0] <= w[1] + 1e-9),
        "{percents:?}"
    );
    let models = ReadModels::open(s.app.store()).await.unwrap();
    assert_eq!(
        models.dump("catalogue", 2).await.unwrap(),
        live,
        "rebuilt equals live"
    );
    assert!(
        models.dump("catalogue", 1).await.unwrap().is_empty(),
        "v1 dropped"
    );
    // The server's runner follows the switch: v2 runs, and keeps up with new writes.
    let (status, v) = s.get("/admin/consumers", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        v["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["checkpoint_name"] == "projection:catalogue:v2"),
        "{v}"
    );
    let (_, token) = s.register("latecomer").await;
    let body = json!({ "title": "After the switch", "genre": "horror", "visibility": "public" });
    let (status, created) = s.post("/stories", &token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let cursor = created["cursor"].as_str().unwrap();
    let (status, v) = s
        .get(
            &format!("/stories?after={cursor}&genre=horror&sort=recent&limit=100"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["stories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["title"] == "After the switch"),
        "{v}"
    );
    Server::stop_shared(s).await;
}
