//! Where clinicctl finds the services and its token: a flag, else the environment (both handled
//! by clap), else the config file, else the defaults of a local `make run`.

use crate::exit;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The four services clinicctl talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// Clinics and providers.
    Directory,
    /// Availability, patients, visits, courses, outcomes.
    Appointments,
    /// Payers, coverage, eligibility, prior authorization, claims.
    Insurance,
    /// Deliveries, preferences, webhooks.
    Notifications,
}

impl Service {
    /// Every service, in the order the network starts them.
    pub const ALL: [Service; 4] = [
        Service::Directory,
        Service::Appointments,
        Service::Insurance,
        Service::Notifications,
    ];

    /// The service's binary name.
    pub fn name(self) -> &'static str {
        match self {
            Service::Directory => "directory",
            Service::Appointments => "appointments",
            Service::Insurance => "insurance",
            Service::Notifications => "notifications",
        }
    }

    /// The endpoint of a local `make run`.
    pub fn default_url(self) -> &'static str {
        match self {
            Service::Directory => "http://127.0.0.1:50051",
            Service::Appointments => "http://127.0.0.1:50052",
            Service::Insurance => "http://127.0.0.1:50053",
            Service::Notifications => "http://127.0.0.1:50054",
        }
    }
}

/// The config file: every key optional.
///
/// ```toml
/// token = "eyJ…"            # or token_file = "/path/to/token"
/// time_zone = "America/New_York"
/// [endpoints]
/// directory = "https://directory.clinicnet.example:443"
/// appointments = "https://appointments.clinicnet.example:443"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Bearer token.
    pub token: Option<String>,
    /// File holding the bearer token.
    pub token_file: Option<PathBuf>,
    /// Time zone tables render times in.
    pub time_zone: Option<String>,
    /// Service endpoints.
    #[serde(default)]
    pub endpoints: Endpoints,
}

/// Endpoints named in the config file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    /// Directory URL.
    pub directory: Option<String>,
    /// Appointments URL.
    pub appointments: Option<String>,
    /// Insurance URL.
    pub insurance: Option<String>,
    /// Notifications URL.
    pub notifications: Option<String>,
}

impl Endpoints {
    /// The URL set for `service`, if any.
    pub fn get(&self, service: Service) -> Option<&String> {
        match service {
            Service::Directory => self.directory.as_ref(),
            Service::Appointments => self.appointments.as_ref(),
            Service::Insurance => self.insurance.as_ref(),
            Service::Notifications => self.notifications.as_ref(),
        }
    }
}

/// The config file to read: the one named, else `$XDG_CONFIG_HOME/clinicctl/config.toml` (or
/// `~/.config/clinicctl/config.toml`) when it exists.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    let path = base.join("clinicctl").join("config.toml");
    path.is_file().then_some(path)
}

/// Reads the config file at `path` (a missing named file is a usage error).
pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let path = match path {
        Some(path) => path.to_path_buf(),
        None => match default_path() {
            Some(path) => path,
            None => return Ok(FileConfig::default()),
        },
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| exit::usage(format!("cannot read config file {}: {e}", path.display())))?;
    parse(&text).map_err(|e| exit::usage(format!("config file {}: {e}", path.display())))
}

/// Parses config file text.
pub fn parse(text: &str) -> Result<FileConfig, toml::de::Error> {
    toml::from_str(text)
}

/// The token: the flag or environment value, else the file's token or token_file.
pub fn resolve_token(flag: Option<&str>, file: &FileConfig) -> anyhow::Result<Option<String>> {
    if let Some(token) = flag.filter(|t| !t.is_empty()) {
        return Ok(Some(token.trim().to_owned()));
    }
    if let Some(token) = &file.token {
        return Ok(Some(token.trim().to_owned()));
    }
    if let Some(path) = &file.token_file {
        let token = std::fs::read_to_string(path)
            .map_err(|e| exit::usage(format!("cannot read token file {}: {e}", path.display())))?;
        return Ok(Some(token.trim().to_owned()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_config_names_endpoints_and_token() {
        let config = parse(
            "token = \"abc\"\n[endpoints]\ndirectory = \"http://d:1\"\ninsurance = \"http://i:3\"\n",
        )
        .unwrap();
        assert_eq!(
            config.endpoints.get(Service::Directory).unwrap(),
            "http://d:1"
        );
        assert!(config.endpoints.get(Service::Appointments).is_none());
        assert_eq!(
            resolve_token(None, &config).unwrap().as_deref(),
            Some("abc")
        );
        assert_eq!(
            resolve_token(Some("flag"), &config).unwrap().as_deref(),
            Some("flag")
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(parse("tokn = \"abc\"").is_err());
    }
}
