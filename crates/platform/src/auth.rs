//! Bearer-token authentication: a JWT in `authorization: Bearer …` becomes a [`Caller`] (role and
//! scope) that handlers check with [`Caller::require_role`], [`Caller::require_clinic`] and
//! [`Caller::require_payer`].

use crate::{config::AuthConfig, error::ApiError};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::{fmt, sync::Arc};
use tonic::{Request, Status, service::Interceptor};

/// What a caller is allowed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A partner clinic's system or front desk, scoped to its clinic ids.
    PartnerClinic,
    /// An insurance integrator, scoped to one payer id.
    Integrator,
    /// The network's operations team: everything.
    Ops,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::PartnerClinic => "partner_clinic",
            Role::Integrator => "integrator",
            Role::Ops => "ops",
        })
    }
}

/// The claims clinicnet reads from a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token was issued to.
    pub sub: String,
    /// The caller's role.
    pub role: Role,
    /// Clinics a partner may act for.
    #[serde(default)]
    pub clinic_ids: Vec<String>,
    /// The payer an integrator works for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_id: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Token subject.
    pub subject: String,
    /// Role.
    pub role: Role,
    /// Clinic scope (partners).
    pub clinic_ids: Vec<String>,
    /// Payer scope (integrators).
    pub payer_id: Option<String>,
}

impl Caller {
    /// The caller placed in the request's extensions by the [`AuthInterceptor`].
    pub fn of<T>(request: &Request<T>) -> Result<Caller, ApiError> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthenticated("no caller on the request".into()))
    }

    /// PERMISSION_DENIED unless the caller has one of `roles`.
    pub fn require_role(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "role {} may not call this",
                self.role
            )))
        }
    }

    /// Ops may act for any clinic; a partner only for the clinics in its scope; integrators never.
    pub fn require_clinic(&self, clinic_id: &str) -> Result<(), ApiError> {
        match self.role {
            Role::Ops => Ok(()),
            Role::PartnerClinic if self.clinic_ids.iter().any(|c| c == clinic_id) => Ok(()),
            _ => Err(ApiError::PermissionDenied(format!(
                "clinic {clinic_id} is outside the caller's scope"
            ))),
        }
    }

    /// Ops may act for any payer; an integrator only for its own payer; partners never.
    pub fn require_payer(&self, payer_id: &str) -> Result<(), ApiError> {
        match self.role {
            Role::Ops => Ok(()),
            Role::Integrator if self.payer_id.as_deref() == Some(payer_id) => Ok(()),
            _ => Err(ApiError::PermissionDenied(format!(
                "payer {payer_id} is outside the caller's scope"
            ))),
        }
    }

    /// A stable key for per-caller records such as idempotency keys.
    pub fn key(&self) -> String {
        format!("{}:{}", self.role, self.subject)
    }
}

/// Validates bearer tokens against the configured keys.
#[derive(Clone)]
pub struct Authenticator {
    keys: Arc<Vec<(DecodingKey, Validation)>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Authenticator({} keys)", self.keys.len())
    }
}

impl Authenticator {
    /// Keys from configuration: the HS256 development secret and/or the RS256 public key.
    pub fn from_config(config: &AuthConfig) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        if let Some(secret) = &config.jwt_hs256_secret {
            keys.push((
                DecodingKey::from_secret(secret.expose().as_bytes()),
                validation(Algorithm::HS256),
            ));
        }
        if let Some(path) = &config.jwt_rs256_public_key_file {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            keys.push((
                DecodingKey::from_rsa_pem(&pem)?,
                validation(Algorithm::RS256),
            ));
        }
        anyhow::ensure!(
            !keys.is_empty(),
            "no token key configured: set JWT_HS256_SECRET (development) or JWT_RS256_PUBLIC_KEY_FILE"
        );
        Ok(Self {
            keys: Arc::new(keys),
        })
    }

    /// The caller a raw `authorization` header value names.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let header = authorization
            .ok_or_else(|| ApiError::Unauthenticated("missing bearer token".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                ApiError::Unauthenticated("authorization is not a bearer token".into())
            })?;
        let algorithm = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::Unauthenticated("malformed token".into()))?
            .alg;
        let mut last_error = ApiError::Unauthenticated("token algorithm not accepted".into());
        for (key, validation) in self.keys.iter() {
            if !validation.algorithms.contains(&algorithm) {
                continue;
            }
            match jsonwebtoken::decode::<Claims>(token, key, validation) {
                Ok(data) => return caller_from(data.claims),
                Err(error) => {
                    let reason = match error.kind() {
                        jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired",
                        jsonwebtoken::errors::ErrorKind::InvalidSignature => "bad token signature",
                        _ => "invalid token",
                    };
                    last_error = ApiError::Unauthenticated(reason.into());
                }
            }
        }
        Err(last_error)
    }

    /// The interceptor that authenticates every call of a service.
    pub fn interceptor(&self) -> AuthInterceptor {
        AuthInterceptor(self.clone())
    }
}

fn validation(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = 30;
    validation.validate_aud = false;
    validation
}

fn caller_from(claims: Claims) -> Result<Caller, ApiError> {
    if claims.role == Role::Integrator && claims.payer_id.is_none() {
        return Err(ApiError::Unauthenticated(
            "integrator token without payer_id".into(),
        ));
    }
    Ok(Caller {
        subject: claims.sub,
        role: claims.role,
        clinic_ids: claims.clinic_ids,
        payer_id: claims.payer_id,
    })
}

/// Puts the authenticated [`Caller`] into every request's extensions, or answers UNAUTHENTICATED.
#[derive(Clone, Debug)]
pub struct AuthInterceptor(Authenticator);

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let caller = self.0.authenticate(header)?;
        tracing::Span::current().record("enduser.role", tracing::field::display(caller.role));
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// Client interceptor that sends `authorization: Bearer <token>` with every call.
#[derive(Clone, Debug)]
pub struct BearerToken(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl BearerToken {
    /// An interceptor for `token`; fails when the token cannot be a header value.
    pub fn new(token: &str) -> anyhow::Result<Self> {
        Ok(Self(format!("Bearer {token}").parse()?))
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        crate::trace_context::inject_into_metadata(request.metadata_mut());
        Ok(request)
    }
}

/// Signs a development token with the HS256 secret (clinicctl and tests).
pub fn mint_hs256(secret: &str, claims: &Claims) -> anyhow::Result<String> {
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// Claims that expire `ttl_seconds` from now.
pub fn claims(
    subject: &str,
    role: Role,
    clinic_ids: Vec<String>,
    payer_id: Option<String>,
    ttl_seconds: i64,
) -> Claims {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Claims {
        sub: subject.to_owned(),
        role,
        clinic_ids,
        payer_id,
        exp: u64::try_from(now + ttl_seconds).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use std::str::FromStr;

    fn authenticator(secret: &str) -> Authenticator {
        Authenticator::from_config(&AuthConfig {
            jwt_hs256_secret: Some(Secret::from_str(secret).unwrap()),
            jwt_rs256_public_key_file: None,
        })
        .unwrap()
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    #[test]
    fn valid_token_yields_caller_with_scope() {
        let token = mint_hs256(
            "s3",
            &claims(
                "clinic-a-desk",
                Role::PartnerClinic,
                vec!["a".into()],
                None,
                60,
            ),
        )
        .unwrap();
        let caller = authenticator("s3")
            .authenticate(Some(&bearer(&token)))
            .unwrap();
        assert_eq!(caller.role, Role::PartnerClinic);
        assert!(caller.require_clinic("a").is_ok());
        assert!(matches!(
            caller.require_clinic("b"),
            Err(ApiError::PermissionDenied(_))
        ));
        assert!(matches!(
            caller.require_payer("p"),
            Err(ApiError::PermissionDenied(_))
        ));
    }

    #[test]
    fn missing_expired_and_wrongly_signed_tokens_are_unauthenticated() {
        let auth = authenticator("right");
        assert!(matches!(
            auth.authenticate(None),
            Err(ApiError::Unauthenticated(_))
        ));
        let expired = mint_hs256("right", &claims("x", Role::Ops, vec![], None, -600)).unwrap();
        let Err(ApiError::Unauthenticated(reason)) = auth.authenticate(Some(&bearer(&expired)))
        else {
            panic!("expired token accepted")
        };
        assert_eq!(reason, "token expired");
        let forged = mint_hs256("wrong", &claims("x", Role::Ops, vec![], None, 60)).unwrap();
        let Err(ApiError::Unauthenticated(reason)) = auth.authenticate(Some(&bearer(&forged)))
        else {
            panic!("forged token accepted")
        };
        assert_eq!(reason, "bad token signature");
    }

    #[test]
    fn integrator_scope_is_its_payer() {
        let caller = Caller {
            subject: "i".into(),
            role: Role::Integrator,
            clinic_ids: vec![],
            payer_id: Some("payer-a".into()),
        };
        assert!(caller.require_payer("payer-a").is_ok());
        assert!(caller.require_payer("payer-b").is_err());
        assert!(caller.require_clinic("a").is_err());
        assert!(caller.require_role(&[Role::Ops]).is_err());
    }
}
