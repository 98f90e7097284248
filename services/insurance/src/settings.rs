//! The insurance service's own settings, next to the runtime contract's: how long eligibility
//! answers are reused and how long a request waits for the payer before it is UNKNOWN.

use clap::Args;

/// Domain settings (flags with environment fallbacks, listed by `--help`).
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Seconds an eligibility answer is served from the cache.
    #[arg(long = "eligibility-cache-seconds", env = "ELIGIBILITY_CACHE_SECONDS", default_value = "86400", value_parser = parse_seconds)]
    pub eligibility_cache_ttl: time::Duration,
    /// Seconds an eligibility request waits for the payer's answer before it reads UNKNOWN.
    #[arg(long = "eligibility-timeout-seconds", env = "ELIGIBILITY_TIMEOUT_SECONDS", default_value = "30", value_parser = parse_seconds)]
    pub eligibility_timeout: time::Duration,
}

fn parse_seconds(text: &str) -> Result<time::Duration, String> {
    let seconds: u32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number of seconds"))?;
    Ok(time::Duration::seconds(i64::from(seconds)))
}
