//! `clinicctl token`: development tokens signed with the services' HS256 development secret.
//! Refuses to mint without `JWT_HS256_SECRET`: production tokens come from the identity
//! provider (RS256), never from this command.

use crate::exit;
use crate::output::{Format, print_json};
use clap::{Subcommand, ValueEnum};
use platform::auth::{Role, claims, mint_hs256};

/// A role a token can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// A partner clinic, scoped to --clinic ids.
    PartnerClinic,
    /// An insurance integrator, scoped to one --payer.
    Integrator,
    /// The operations team.
    Ops,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::PartnerClinic => Role::PartnerClinic,
            RoleArg::Integrator => Role::Integrator,
            RoleArg::Ops => Role::Ops,
        }
    }
}

/// Development tokens.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Mint a development token signed with JWT_HS256_SECRET (the services' development secret).
    #[command(
        after_help = "Example:\n  export JWT_HS256_SECRET=clinicnet-development-secret\n  export CLINICNET_TOKEN=$(clinicctl token mint --role ops)\n  clinicctl token mint --role partner-clinic --clinic $CLINIC --ttl-seconds 3600\n  clinicctl token mint --role integrator --payer florida-blue"
    )]
    Mint {
        /// Role of the caller.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Clinic in a partner's scope (repeat for several).
        #[arg(long = "clinic")]
        clinics: Vec<String>,
        /// Payer of an integrator.
        #[arg(long)]
        payer: Option<String>,
        /// Subject (who the token is for).
        #[arg(long, default_value = "clinicctl")]
        subject: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 12 * 3600)]
        ttl_seconds: i64,
        /// The development secret (never a production key).
        #[arg(long, env = "JWT_HS256_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
}

/// Runs a token command.
pub fn run(cmd: TokenCmd, format: Format) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Mint {
            role,
            clinics,
            payer,
            subject,
            ttl_seconds,
            secret,
        } => {
            let token = mint(
                role,
                clinics,
                payer,
                &subject,
                ttl_seconds,
                secret.as_deref(),
            )?;
            match format {
                Format::Json => print_json(&serde_json::json!({ "token": token })),
                Format::Table => {
                    println!("{token}");
                    Ok(())
                }
            }
        }
    }
}

/// Signs a token, checking the scope fits the role.
pub fn mint(
    role: RoleArg,
    clinics: Vec<String>,
    payer: Option<String>,
    subject: &str,
    ttl_seconds: i64,
    secret: Option<&str>,
) -> anyhow::Result<String> {
    let secret = secret.filter(|s| !s.is_empty()).ok_or_else(|| {
        exit::usage(
            "refusing to mint: JWT_HS256_SECRET is not set. Development tokens are signed with \
             the services' development secret; production tokens come from the identity provider",
        )
    })?;
    match role {
        RoleArg::PartnerClinic if clinics.is_empty() => {
            return Err(exit::usage(
                "a partner-clinic token needs at least one --clinic",
            ));
        }
        RoleArg::Integrator if payer.is_none() => {
            return Err(exit::usage("an integrator token needs --payer"));
        }
        _ => {}
    }
    if ttl_seconds <= 0 {
        return Err(exit::usage("--ttl-seconds must be positive"));
    }
    mint_hs256(
        secret,
        &claims(subject, role.into(), clinics, payer, ttl_seconds),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minting_refuses_without_a_secret() {
        let error = mint(RoleArg::Ops, vec![], None, "x", 60, None).unwrap_err();
        assert_eq!(exit::classify(&error), exit::Kind::Usage);
        assert!(error.to_string().contains("JWT_HS256_SECRET"));
        assert!(mint(RoleArg::Ops, vec![], None, "x", 60, Some("")).is_err());
    }

    #[test]
    fn scope_must_fit_the_role() {
        assert!(mint(RoleArg::PartnerClinic, vec![], None, "x", 60, Some("s")).is_err());
        assert!(mint(RoleArg::Integrator, vec![], None, "x", 60, Some("s")).is_err());
        let token = mint(
            RoleArg::Integrator,
            vec![],
            Some("p".into()),
            "x",
            60,
            Some("s"),
        )
        .unwrap();
        assert_eq!(token.split('.').count(), 3);
    }
}
