//! SMS through the provider's HTTP API (Twilio-style): `POST <base>/Messages.json` with a form
//! body (`To`, `From`, `Body`), a bearer token, and `Idempotency-Key: <notification id>` — a
//! repeated send after a crash is recognised by the provider and not delivered twice. The answer
//! carries the provider's message id (`sid`).

use crate::{config::NotificationsConfig, domain::retry::Failure};
use platform::config::Secret;
use uuid::Uuid;

/// Sends SMS.
#[derive(Clone)]
pub struct SmsSender {
    client: reqwest::Client,
    url: String,
    token: Option<Secret>,
    from: String,
}

impl SmsSender {
    /// A sender for the configured provider.
    pub fn new(config: &NotificationsConfig) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.provider_timeout())
            .build()?;
        Ok(Self {
            client,
            url: format!(
                "{}/Messages.json",
                config.sms_api_base_url.trim_end_matches('/')
            ),
            token: config.sms_api_token.clone(),
            from: config.sms_from_number.clone(),
        })
    }

    /// Sends one message; returns the provider's message id.
    pub async fn send(&self, id: Uuid, to: &str, body: &str) -> Result<String, Failure> {
        let mut request = self
            .client
            .post(&self.url)
            .header("Idempotency-Key", id.to_string())
            .form(&[("To", to), ("From", self.from.as_str()), ("Body", body)]);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(|e| http_failure("sms", &e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_failure("sms", status));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            sid: String,
        }
        match response.json::<Answer>().await {
            Ok(answer) => Ok(answer.sid),
            // Accepted, but the answer is unreadable: it was sent; keep what is known.
            Err(_) => Ok(String::new()),
        }
    }
}

/// A transport error of an HTTP call: always transient (timeouts, refused connections).
pub fn http_failure(what: &str, error: &reqwest::Error) -> Failure {
    if error.is_timeout() {
        Failure::Transient(format!("{what} timeout"))
    } else if error.is_builder() {
        Failure::Permanent(format!("{what} request invalid"))
    } else {
        Failure::Transient(format!("{what} connection error"))
    }
}

/// An HTTP error status: 5xx, 408 and 429 transient; other 4xx permanent.
pub fn status_failure(what: &str, status: reqwest::StatusCode) -> Failure {
    let text = format!("{what} http {}", status.as_u16());
    if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        Failure::Transient(text)
    } else {
        Failure::Permanent(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_transient_client_errors_permanent() {
        assert!(matches!(
            status_failure("sms", reqwest::StatusCode::SERVICE_UNAVAILABLE),
            Failure::Transient(_)
        ));
        assert!(matches!(
            status_failure("sms", reqwest::StatusCode::TOO_MANY_REQUESTS),
            Failure::Transient(_)
        ));
        assert_eq!(
            status_failure("sms", reqwest::StatusCode::BAD_REQUEST),
            Failure::Permanent("sms http 400".into())
        );
    }
}
