//! Local receivers for notification tests (issue 12 §6): [`WebhookReceiver`], a minimal HTTP/1.1
//! server that records every POST (headers and body) and answers 500 to the first `fail_first`
//! requests, 200 afterwards; and [`SmtpSink`], a minimal SMTP server over tokio (greeting, EHLO/
//! HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT: what lettre's plain transport
//! says) that records each mail. Only tokio and std, so the server's tests include this file too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method and path (`POST /hook`).
    pub request_line: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// The status it was answered.
    pub status: u16,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A local HTTP receiver of webhooks.
pub struct WebhookReceiver {
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    /// Every request, in order.
    pub rx: mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebhookReceiver {
    /// Listen on a free port; answer 500 to the first `fail_first` requests.
    pub async fn start(fail_first: usize) -> WebhookReceiver {
        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook receiver");
        let url = format!("http://{}/hook", l.local_addr().expect("addr"));
        let (tx, rx) = mpsc::unbounded_channel();
        let seen = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = l.accept().await {
                let (tx, seen) = (tx.clone(), seen.clone());
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut r = BufReader::new(r);
                    let mut request_line = String::new();
                    if r.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut headers = Vec::new();
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                        }
                    }
                    let len = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .and_then(|(_, v)| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    let status: u16 = if n < fail_first { 500 } else { 200 };
                    let reason = if status == 200 {
                        "OK"
                    } else {
                        "Internal Server Error"
                    };
                    let _ = w
                        .write_all(
                            format!(
                                "HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            )
                            .as_bytes(),
                        )
                        .await;
                    let _ = w.shutdown().await;
                    let _ = tx.send(Received {
                        request_line: request_line.trim_end().to_string(),
                        headers,
                        body,
                        status,
                    });
                });
            }
        });
        WebhookReceiver { url, rx, task }
    }
}

/// One mail the SMTP sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    /// `MAIL FROM` address.
    pub from: String,
    /// `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message (headers and body), dot-unstuffed, CRLF line ends.
    pub data: String,
}

/// A local SMTP server that accepts every mail.
pub struct SmtpSink {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every mail, in order.
    pub rx: mpsc::UnboundedReceiver<Mail>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn address(arg: &str) -> String {
    let a = arg.split_once(':').map_or(arg, |(_, a)| a).trim();
    let a = a.split_whitespace().next().unwrap_or("");
    a.trim_start_matches('<').trim_end_matches('>').to_string()
}

impl SmtpSink {
    /// Listen on a free port.
    pub async fn start() -> SmtpSink {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp sink");
        let addr = l.local_addr().expect("addr");
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = l.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut r = BufReader::new(r);
                    if w.write_all(b"220 sink.local ESMTP nguon-test\r\n").await.is_err() {
                        return;
                    }
                    let (mut from, mut to) = (String::new(), Vec::new());
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let cmd = line.trim_end().to_string();
                        let verb = cmd.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" => b"250-sink.local\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
                            "HELO" => b"250 sink.local\r\n",
                            "MAIL" => {
                                from = address(&cmd);
                                to.clear();
                                b"250 2.1.0 OK\r\n"
                            }
                            "RCPT" => {
                                to.push(address(&cmd));
                                b"250 2.1.5 OK\r\n"
                            }
                            "DATA" => {
                                if w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.is_err() {
                                    return;
                                }
                                let mut data = String::new();
                                loop {
                                    let mut l = String::new();
                                    if r.read_line(&mut l).await.unwrap_or(0) == 0 {
                                        return;
                                    }
                                    if l == ".\r\n" || l == ".\n" {
                                        break;
                                    }
                                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                                }
                                let _ = tx.send(Mail {
                                    from: from.clone(),
                                    to: std::mem::take(&mut to),
                                    data,
                                });
                                b"250 2.0.0 queued\r\n"
                            }
                            "RSET" | "NOOP" => b"250 2.0.0 OK\r\n",
                            "QUIT" => {
                                let _ = w.write_all(b"221 2.0.0 bye\r\n").await;
                                return;
                            }
                            _ => b"502 5.5.2 not implemented\r\n",
                        };
                        if w.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        SmtpSink { addr, rx, task }
    }
}
