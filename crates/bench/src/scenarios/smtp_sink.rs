//! A local SMTP sink for the benchmarks: accepts every message on 127.0.0.1 (EHLO, MAIL, RCPT,
//! DATA, RSET, NOOP, QUIT; no TLS, no authentication) and records when each was accepted and
//! under which Message-ID, so a benchmark can time event → email.

use std::{
    sync::{Arc, Mutex},
    time::{Instant, SystemTime},
};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::{TcpListener, TcpStream},
};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Its Message-ID header, without the angle brackets.
    pub message_id: String,
    /// When the sink answered 250 to its DATA.
    pub at: Instant,
    /// The same moment on the wall clock (to compare with the services' timestamps).
    pub wall: SystemTime,
}

/// A running sink; stops when dropped.
pub struct SmtpSink {
    port: u16,
    accepted: Arc<Mutex<Vec<Accepted>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    /// Listens on a free loopback port.
    pub async fn start() -> anyhow::Result<SmtpSink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let sink = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let _ = session(stream, &sink).await;
                });
            }
        });
        Ok(SmtpSink {
            port,
            accepted,
            task,
        })
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// How many messages were accepted so far.
    pub fn count(&self) -> usize {
        self.accepted.lock().expect("sink").len()
    }

    /// Every message accepted so far.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().expect("sink").clone()
    }

    /// Forgets what was accepted so far.
    pub fn clear(&self) {
        self.accepted.lock().expect("sink").clear();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(stream: TcpStream, sink: &Mutex<Vec<Accepted>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 bench-sink ESMTP\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-bench-sink\r\n250 8BITMIME\r\n",
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut message_id = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    if message_id.is_empty()
                        && line.len() > 11
                        && line[..11].eq_ignore_ascii_case("message-id:")
                    {
                        message_id = line[11..]
                            .trim()
                            .trim_matches(|c| c == '<' || c == '>')
                            .to_owned();
                    }
                }
                let (at, wall) = (Instant::now(), SystemTime::now());
                sink.lock().expect("sink").push(Accepted {
                    message_id,
                    at,
                    wall,
                });
                b"250 accepted\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"250 ok\r\n",
        };
        write.write_all(reply).await?;
    }
}
