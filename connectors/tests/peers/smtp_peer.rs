//! An SMTP server speaking SMTP over TCP on 127.0.0.1: it records each message and answers the
//! end of each `DATA` from a script (`250`, `451`, `550`…).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

/// A message as the server received it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent, dot-stuffing undone.
    pub data: String,
    /// What the server answered to it.
    pub reply: String,
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<String>>,
    mails: Mutex<Vec<Mail>>,
}

/// The running server.
pub struct SmtpPeer {
    pub addr: SocketAddr,
    script: Arc<Script>,
}

impl SmtpPeer {
    /// Starts a server answering each message's end of data with `replies` in order, then `250`.
    pub async fn start(replies: &[&str]) -> Self {
        let script = Arc::new(Script {
            replies: Mutex::new(replies.iter().map(|r| (*r).to_owned()).collect()),
            ..Script::default()
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::clone(&script);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(session(socket, Arc::clone(&shared)));
            }
        });
        Self { addr, script }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.script.mails.lock().unwrap().clone()
    }
}

async fn session(socket: tokio::net::TcpStream, script: Arc<Script>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 peer.test ESMTP ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command.split([' ', ':']).next().unwrap_or_default().to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" => "250-peer.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING".to_owned(),
            "HELO" => "250 peer.test".to_owned(),
            "MAIL" => {
                from = command.split_once(':').map_or("", |(_, a)| a).trim().to_owned();
                to.clear();
                "250 2.1.0 ok".to_owned()
            }
            "RCPT" => {
                to.push(command.split_once(':').map_or("", |(_, a)| a).trim().to_owned());
                "250 2.1.5 ok".to_owned()
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let reply = script.replies.lock().unwrap().pop_front().unwrap_or_else(|| "250 2.0.0 queued".into());
                script.mails.lock().unwrap().push(Mail {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                    reply: reply.clone(),
                });
                reply
            }
            "RSET" | "NOOP" => "250 2.0.0 ok".to_owned(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 command not recognized".to_owned(),
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}
