//! `clinicctl mail-sink`: a local SMTP server for development and demos that accepts every
//! message and stores it as an `.eml` file, so the notifications service can deliver real email
//! on a laptop (`SMTP_URL=smtp://127.0.0.1:2525 SMTP_STARTTLS=off`). It speaks the part of
//! RFC 5321 mail clients use (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) without TLS or
//! authentication: never expose it beyond the loopback interface.

use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};

/// Largest message accepted (10 MiB).
const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// Arguments of `mail-sink`.
#[derive(Debug, Args)]
pub struct MailSinkArgs {
    /// Address to listen on (keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:2525")]
    pub listen: String,
    /// Directory the messages are written to, one .eml file each.
    #[arg(long, default_value = ".run/mail")]
    pub dir: PathBuf,
}

/// Runs the sink until interrupted.
pub async fn run(args: MailSinkArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!(
        "mail sink listening on {} — messages go to {}",
        listener.local_addr()?,
        args.dir.display()
    );
    let dir = Arc::new(args.dir);
    let counter = Arc::new(AtomicU64::new(0));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, _) = accepted?;
                let (dir, counter) = (dir.clone(), counter.clone());
                tokio::spawn(async move {
                    let (reader, writer) = socket.into_split();
                    if let Err(error) = session(reader, writer, &dir, &counter).await {
                        eprintln!("mail sink: session ended: {error}");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// One SMTP session on `reader`/`writer`; each accepted message is written under `dir`.
pub async fn session<R, W>(
    reader: R,
    mut writer: W,
    dir: &Path,
    counter: &AtomicU64,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(reader);
    writer
        .write_all(b"220 clinicctl mail sink ESMTP\r\n")
        .await?;
    let mut from = String::new();
    let mut recipients: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => {
                b"250-clinicctl mail sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n"
            }
            "HELO" => b"250 clinicctl mail sink\r\n",
            "MAIL" => {
                from = address_of(&command);
                recipients.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                recipients.push(address_of(&command));
                b"250 OK\r\n"
            }
            "DATA" if recipients.is_empty() => b"503 RCPT first\r\n",
            "DATA" => {
                writer.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let Some(body) = read_data(&mut reader).await? else {
                    writer.write_all(b"552 message too large\r\n").await?;
                    continue;
                };
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let path = dir.join(format!(
                    "{}-{n:04}.eml",
                    jiff::Timestamp::now().as_millisecond()
                ));
                let mut file = format!("X-Envelope-From: <{from}>\r\n");
                for rcpt in &recipients {
                    file.push_str(&format!("X-Envelope-To: <{rcpt}>\r\n"));
                }
                file.push_str(&body);
                tokio::fs::write(&path, file).await?;
                println!(
                    "mail #{n}: {} ({} bytes, {} recipient{})",
                    path.display(),
                    body.len(),
                    recipients.len(),
                    if recipients.len() == 1 { "" } else { "s" }
                );
                recipients.clear();
                b"250 OK queued\r\n"
            }
            "RSET" => {
                from.clear();
                recipients.clear();
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                writer.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 command not implemented\r\n",
        };
        writer.write_all(reply).await?;
    }
}

/// The address inside `MAIL FROM:<a@b>` or `RCPT TO:<a@b>`.
fn address_of(command: &str) -> String {
    match (command.find('<'), command.find('>')) {
        (Some(a), Some(b)) if b > a => command[a + 1..b].to_owned(),
        _ => command
            .split_once(':')
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default(),
    }
}

/// The message up to the lone `.` line, dot-unstuffed; None when it is too large.
async fn read_data<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> std::io::Result<Option<String>> {
    let mut body = String::new();
    let mut line = String::new();
    let mut too_large = false;
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed in DATA",
            ));
        }
        let content = line.trim_end_matches(['\r', '\n']);
        if content == "." {
            return Ok(if too_large { None } else { Some(body) });
        }
        let unstuffed = content.strip_prefix('.').unwrap_or(content);
        if body.len() + unstuffed.len() > MAX_MESSAGE_BYTES {
            too_large = true;
            continue;
        }
        body.push_str(unstuffed);
        body.push_str("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    #[tokio::test]
    async fn a_message_is_stored_with_its_envelope_and_unstuffed() {
        let dir = std::env::temp_dir().join(format!("clinicctl-mail-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (server_read, server_write) = tokio::io::split(server);
        let counter = AtomicU64::new(0);
        let dir2 = dir.clone();
        let conversation = async move {
            let (mut read, mut write) = tokio::io::split(client);
            write
                .write_all(
                    b"EHLO test\r\nMAIL FROM:<noreply@clinicnet.example>\r\nRCPT TO:<maria@example.com>\r\nDATA\r\n\
Subject: Your visit\r\n\r\n..leading dot\r\nbody\r\n.\r\nQUIT\r\n",
                )
                .await
                .unwrap();
            let mut replies = String::new();
            read.read_to_string(&mut replies).await.unwrap();
            replies
        };
        let (replies, result) = tokio::join!(
            conversation,
            session(server_read, server_write, &dir2, &counter)
        );
        result.unwrap();
        assert!(replies.starts_with("220"), "{replies}");
        assert!(
            replies.contains("354")
                && replies.contains("250 OK queued")
                && replies.ends_with("221 bye\r\n")
        );
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("X-Envelope-To: <maria@example.com>"));
        assert!(text.contains("Subject: Your visit"));
        assert!(text.contains("\r\n.leading dot\r\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
