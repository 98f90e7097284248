//! Email over SMTP (lettre, pooled connections, STARTTLS off/opportunistic/required on smtp://,
//! implicit TLS on smtps://). The notification id is the Message-ID, so a message re-sent after
//! a crash carries the same id as the first and a mailbox can recognise the duplicate.

use crate::{
    config::{NotificationsConfig, StartTls},
    domain::retry::Failure,
};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::{
        PoolConfig,
        client::{Tls, TlsParameters},
    },
};
use uuid::Uuid;

/// Sends email.
#[derive(Clone)]
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

/// The host part of an `smtp://[user:pass@]host[:port]` URL.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    rest.split([':', '/', '?']).next().unwrap_or(rest)
}

impl EmailSender {
    /// A sender for the configured SMTP server.
    pub fn new(config: &NotificationsConfig) -> anyhow::Result<Self> {
        let url = config.smtp_url.expose();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("SMTP_URL is not a valid smtp:// or smtps:// URL: {e}"))?;
        if url.starts_with("smtp://") {
            let host = host_of(url).to_owned();
            builder = builder.tls(match config.smtp_starttls {
                StartTls::Off => Tls::None,
                StartTls::Opportunistic => Tls::Opportunistic(TlsParameters::new(host)?),
                StartTls::Required => Tls::Required(TlsParameters::new(host)?),
            });
        }
        let from: Mailbox = config
            .smtp_from
            .parse()
            .map_err(|e| anyhow::anyhow!("SMTP_FROM is not a mailbox: {e}"))?;
        let domain = from.email.domain().to_owned();
        Ok(Self {
            // One pooled connection per message in flight: each SMTP exchange waits on its
            // server, so concurrency, not CPU, bounds the rate.
            transport: builder
                .timeout(Some(config.provider_timeout()))
                .pool_config(PoolConfig::new().max_size(
                    u32::try_from(config.delivery_concurrency.max(1)).unwrap_or(u32::MAX),
                ))
                .build(),
            from,
            domain,
        })
    }

    /// Sends one message; the provider id is its Message-ID.
    pub async fn send(
        &self,
        id: Uuid,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<String, Failure> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| Failure::Permanent("invalid email address".into()))?;
        let message_id = format!("<{id}@{}>", self.domain);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id.clone()))
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|_| Failure::Permanent("message could not be built".into()))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(message_id),
            Err(error) => Err(classify(&error)),
        }
    }
}

/// SMTP 4xx, timeouts and connection trouble are transient; SMTP 5xx permanent. Only the code
/// is kept: server texts may echo the address.
fn classify(error: &lettre::transport::smtp::Error) -> Failure {
    match error.status() {
        Some(code) if error.is_permanent() => Failure::Permanent(format!("smtp {code}")),
        Some(code) => Failure::Transient(format!("smtp {code}")),
        None if error.is_timeout() => Failure::Transient("smtp timeout".into()),
        None if error.is_tls() => Failure::Transient("smtp tls error".into()),
        None => Failure::Transient("smtp connection error".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_is_taken_from_the_url() {
        assert_eq!(host_of("smtp://mail.example:587"), "mail.example");
        assert_eq!(host_of("smtp://u:p@mail.example"), "mail.example");
        assert_eq!(host_of("smtps://mail.example/?x=1"), "mail.example");
    }
}
