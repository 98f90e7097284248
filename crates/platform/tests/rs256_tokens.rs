//! Production tokens: RS256 signatures checked against the configured public key. The key pair in
//! `tests/fixtures/` was generated for this test only and signs nothing else.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform::{
    ApiError,
    auth::{Authenticator, Role, claims},
    config::AuthConfig,
};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn rs256_token(role: Role, ttl: i64) -> String {
    let private = std::fs::read(fixture("test-only-rs256.key.txt")).unwrap();
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims("integrator-a", role, vec![], Some("payer-a".into()), ttl),
        &EncodingKey::from_rsa_pem(&private).unwrap(),
    )
    .unwrap()
}

#[test]
fn rs256_tokens_are_accepted_with_the_public_key_and_hs256_ones_are_not() {
    let authenticator = Authenticator::from_config(&AuthConfig {
        jwt_hs256_secret: None,
        jwt_rs256_public_key_file: Some(fixture("test-only-rs256.pub.txt")),
    })
    .unwrap();
    let caller = authenticator
        .authenticate(Some(&format!(
            "Bearer {}",
            rs256_token(Role::Integrator, 60)
        )))
        .unwrap();
    assert_eq!(caller.role, Role::Integrator);
    assert_eq!(caller.payer_id.as_deref(), Some("payer-a"));

    let expired = rs256_token(Role::Integrator, -600);
    assert!(matches!(
        authenticator.authenticate(Some(&format!("Bearer {expired}"))),
        Err(ApiError::Unauthenticated(_))
    ));
    // A development token is refused when only the production key is configured.
    let hs256 =
        platform::auth::mint_hs256("anything", &claims("x", Role::Ops, vec![], None, 60)).unwrap();
    assert!(matches!(
        authenticator.authenticate(Some(&format!("Bearer {hs256}"))),
        Err(ApiError::Unauthenticated(_))
    ));
}

#[test]
fn a_service_without_any_key_refuses_to_start() {
    let error = Authenticator::from_config(&AuthConfig {
        jwt_hs256_secret: None,
        jwt_rs256_public_key_file: None,
    })
    .unwrap_err();
    assert!(error.to_string().contains("no token key configured"));
}
