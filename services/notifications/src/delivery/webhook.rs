//! Webhooks: an HTTPS POST of a JSON body to a clinic's endpoint, signed per Standard Webhooks
//! (`webhook-id` = notification id, `webhook-timestamp`, `webhook-signature` with one `v1,`
//! signature per signing secret). Receivers de-duplicate on `webhook-id`, so a send repeated
//! after a crash is recognised.

use super::sms::{http_failure, status_failure};
use crate::{
    config::NotificationsConfig,
    domain::{retry::Failure, signing},
};
use uuid::Uuid;

/// Sends webhooks.
#[derive(Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
}

impl WebhookSender {
    /// A sender trusting the public roots plus WEBHOOK_CA_FILE, following no redirects.
    pub fn new(config: &NotificationsConfig) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.provider_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true);
        if let Some(path) = &config.webhook_ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("reading WEBHOOK_CA_FILE {}: {e}", path.display()))?;
            for certificate in reqwest::Certificate::from_pem_bundle(&pem)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(Self {
            client: builder.build()?,
        })
    }

    /// Posts `body` to `url`, signed with every secret in `secrets`.
    pub async fn send(
        &self,
        id: Uuid,
        url: &str,
        secrets: &[Vec<u8>],
        body: &str,
    ) -> Result<String, Failure> {
        let timestamp = jiff::Timestamp::now().as_second();
        let webhook_id = id.to_string();
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signing::signature_header(secrets, &webhook_id, timestamp, body),
            )
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| http_failure("webhook", &e))?;
        let status = response.status();
        if status.is_success() {
            Ok(webhook_id)
        } else {
            Err(status_failure("webhook", status))
        }
    }
}
