//! API tokens: shown once, stored as a hash, authenticated by hash, names unique.

use crate::support::api_on;
use pganalytics_core::api::{Empty, TokenCreateRequest};
use pganalytics_core::ErrorCode;
use sqlx::Row;

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_stored_as_hashes_and_authenticate() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    let created = api
        .token_create(TokenCreateRequest {
            name: "grafana".into(),
        })
        .await
        .unwrap();
    assert!(created.token.starts_with("pga_") && created.token.len() == 4 + 64);

    let stored: String = sqlx::query("SELECT string_agg(t::text, ' ') FROM api_tokens t")
        .fetch_one(api.repository().pool())
        .await
        .unwrap()
        .get(0);
    assert!(
        !stored.contains(&created.token[4..]),
        "only the hash is stored"
    );

    let listed = api.token_list(Empty {}).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_none());
    assert_eq!(
        api.authenticate_token(&created.token).await.unwrap(),
        "grafana"
    );
    assert!(
        api.token_list(Empty {}).await.unwrap()[0]
            .last_used_at
            .is_some(),
        "use is recorded"
    );

    for bad in [
        "",
        "pga_",
        "Bearer x",
        &created.token[..20],
        &format!("{}0", created.token),
    ] {
        let err = api.authenticate_token(bad).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthorized, "{bad:?}");
    }
    let dup = api
        .token_create(TokenCreateRequest {
            name: "grafana".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(dup.code, ErrorCode::AlreadyExists);
    let bad_name = api
        .token_create(TokenCreateRequest {
            name: "two words".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_name.code, ErrorCode::InvalidInput);
}
