//! `clinicctl provider`: register, read, change and deactivate providers (DirectoryService).

use crate::context::{Ctx, Page};
use crate::exit;
use crate::output::{Column, from_json_file};
use clap::Subcommand;
use clinicnet_proto::directory::v1 as pb;
use std::path::PathBuf;

const PROVIDER_COLUMNS: &[Column] = &[
    ("PROVIDER", "provider_id"),
    ("NAME", "name"),
    ("CREDENTIALS", "credentials"),
    ("NPI", "npi"),
    ("LANGUAGES", "languages"),
    ("MODALITIES", "modalities"),
    ("STATUS", "status"),
];

/// Clinicians and therapists serving the network's clinics.
#[derive(Debug, Subcommand)]
pub enum ProviderCmd {
    /// Register a provider from a JSON file (a clinicnet.directory.v1.Provider).
    #[command(after_help = "Example:\n  clinicctl provider create --file provider.json")]
    Create {
        /// JSON file with the provider (ids, status and version are ignored).
        #[arg(long)]
        file: PathBuf,
    },
    /// Show one provider.
    #[command(after_help = "Example:\n  clinicctl provider get $PROVIDER")]
    Get {
        /// Provider id.
        provider_id: String,
    },
    /// List providers, optionally only those serving a clinic.
    #[command(after_help = "Example:\n  clinicctl provider list --clinic $CLINIC")]
    List {
        /// Only providers serving this clinic.
        #[arg(long)]
        clinic: Option<String>,
        #[command(flatten)]
        page: Page,
    },
    /// Replace a provider from a JSON file (read it with `provider get -o json` first).
    #[command(
        after_help = "Example:\n  clinicctl provider get $PROVIDER -o json | jq .provider > p.json && clinicctl provider update --file p.json"
    )]
    Update {
        /// JSON file with the provider; provider_id names it, version is the expected version.
        #[arg(long)]
        file: PathBuf,
        /// Expected version (default: the version in the file).
        #[arg(long)]
        expected_version: Option<u64>,
    },
    /// Deactivate a provider (history kept).
    #[command(after_help = "Example:\n  clinicctl provider remove $PROVIDER")]
    Remove {
        /// Provider id.
        provider_id: String,
        /// Expected version (default: the current one, read first).
        #[arg(long)]
        expected_version: Option<u64>,
    },
}

/// Runs a provider command.
pub async fn run(ctx: &Ctx, cmd: ProviderCmd) -> anyhow::Result<()> {
    let mut client = ctx.conn.directory()?;
    match cmd {
        ProviderCmd::Create { file } => {
            let provider: pb::Provider = from_json_file(&file, "clinicnet.directory.v1.Provider")?;
            let response = client
                .create_provider(pb::CreateProviderRequest {
                    request_id: ctx.request_id(),
                    provider: Some(provider),
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.directory.v1.CreateProviderResponse",
                "provider",
            )
        }
        ProviderCmd::Get { provider_id } => {
            let response = client
                .get_provider(pb::GetProviderRequest { provider_id })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.directory.v1.GetProviderResponse",
                "provider",
            )
        }
        ProviderCmd::List { clinic, page } => {
            let response = client
                .list_providers(pb::ListProvidersRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    clinic_id: clinic.unwrap_or_default(),
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                "clinicnet.directory.v1.ListProvidersResponse",
                "providers",
                PROVIDER_COLUMNS,
            )
        }
        ProviderCmd::Update {
            file,
            expected_version,
        } => {
            let provider: pb::Provider = from_json_file(&file, "clinicnet.directory.v1.Provider")?;
            let expected_version = expected_version.unwrap_or(provider.version);
            if expected_version == 0 {
                return Err(exit::usage(
                    "no version in the file: pass --expected-version (see provider get)",
                ));
            }
            let response = client
                .update_provider(pb::UpdateProviderRequest {
                    request_id: ctx.request_id(),
                    provider: Some(provider),
                    expected_version,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.directory.v1.UpdateProviderResponse",
                "provider",
            )
        }
        ProviderCmd::Remove {
            provider_id,
            expected_version,
        } => {
            let expected_version = match expected_version {
                Some(v) => v,
                None => {
                    client
                        .get_provider(pb::GetProviderRequest {
                            provider_id: provider_id.clone(),
                        })
                        .await?
                        .into_inner()
                        .provider
                        .unwrap_or_default()
                        .version
                }
            };
            let response = client
                .remove_provider(pb::RemoveProviderRequest {
                    request_id: ctx.request_id(),
                    provider_id,
                    expected_version,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.directory.v1.RemoveProviderResponse",
                "provider",
            )
        }
    }
}
