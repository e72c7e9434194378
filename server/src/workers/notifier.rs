//! The notifier (issue 12 §6): sends the alarm notifications the alarm worker queued
//! (`store::notifications`). Every second it takes the due ones and sends each:
//!
//! - `webhook`: a JSON POST of the alarm, signed in `X-Nguon-Signature` (`sha256=` and the hex
//!   HMAC-SHA256 of the body with the subscription's secret, `domain::notify::signature`); any
//!   2xx answer delivers it;
//! - `email`: a plain-text mail through the `[smtp]` relay (lettre; STARTTLS when
//!   `smtp.starttls`, with rustls on the ring provider like the rest of the process).
//!
//! Every attempt is recorded (`alarm_notification_attempts`); a failed one is retried after
//! `alarms.webhook_backoff_ms`, doubled each time, until `alarms.webhook_attempts` attempts.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio_util::sync::CancellationToken;

use crate::config::alarms::{AlarmSettings, SmtpSettings};
use crate::domain::alarm::Alarm;
use crate::domain::notify::{SIGNATURE_HEADER, backoff_ms, email_text, signature};
use crate::error::{Error, Result};
use crate::store::notifications::{self, Attempt, Due};
use crate::store::submissions;
use crate::store::{Store, now_ms};
use crate::workers::Context;

/// How often due notifications are looked for.
pub const TICK: Duration = Duration::from_secs(1);
/// Most notifications sent in one round.
const ROUND: i64 = 100;

/// What the notifier needs.
pub struct Notifier {
    store: Store,
    alarms: AlarmSettings,
    http: reqwest::Client,
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
}

impl Notifier {
    /// A notifier for the process's settings (the SMTP transport built once).
    pub fn new(ctx: &Context) -> Result<Notifier> {
        let a = ctx.settings.alarms.clone();
        let timeout = Duration::from_millis(a.notify_timeout_ms);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(Error::context("webhook http client"))?;
        let smtp = ctx
            .settings
            .smtp
            .as_ref()
            .map(|s| smtp_transport(s, timeout))
            .transpose()?;
        Ok(Notifier {
            store: ctx.store.clone(),
            alarms: a,
            http,
            smtp,
        })
    }

    /// Send what is due at `now`; how many attempts were made.
    pub async fn round(&self, now: i64) -> Result<usize> {
        let due = notifications::due(&self.store, now, ROUND).await?;
        let n = due.len();
        for d in due {
            let attempt = match d.channel.as_str() {
                "webhook" => self.webhook(&d).await,
                _ => self.email(&d).await,
            };
            let number = d.attempts + 1;
            let retry_at = (!attempt.ok && number < self.alarms.webhook_attempts)
                .then(|| now_ms() + backoff_ms(self.alarms.webhook_backoff_ms, number));
            if attempt.ok {
                tracing::info!(notification = %d.id, channel = %d.channel, alarm = %d.alarm.id, attempt = number,
                    "alarm notification delivered");
            } else {
                tracing::warn!(notification = %d.id, channel = %d.channel, alarm = %d.alarm.id, attempt = number,
                    status = ?attempt.status, error = ?attempt.error, will_retry = retry_at.is_some(),
                    "alarm notification not delivered");
            }
            let mut tx = self.store.begin_write().await?;
            notifications::record(&mut tx, &d.id, number, &attempt, retry_at, now_ms()).await?;
            tx.commit().await?;
        }
        Ok(n)
    }

    /// E-mail the pending notices of contributors' submissions (issue 15) through the same
    /// relay; without `[smtp]` they stay listed with the submission, marked `failed` after
    /// `alarms.webhook_attempts` rounds.
    pub async fn notices(&self, now: i64) -> Result<usize> {
        let due = submissions::due_notices(&self.store, ROUND).await?;
        let n = due.len();
        for d in due {
            let ok = match &self.smtp {
                Some((transport, from)) => match notice_mail(from, &d.email, &d.message) {
                    Ok(m) => transport.send(m).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                }
                .map_err(|e| tracing::warn!(notice = %d.id, error = %e, "submission notice not sent"))
                .is_ok(),
                None => false,
            };
            submissions::notice_attempt(&self.store, &d.id, ok, self.alarms.webhook_attempts.into(), now)
                .await?;
        }
        Ok(n)
    }

    async fn webhook(&self, d: &Due) -> Attempt {
        let body = match serde_json::to_vec(&d.alarm) {
            Ok(b) => b,
            Err(e) => return failed(None, e.to_string()),
        };
        let mut req = self
            .http
            .post(&d.target)
            .header("content-type", "application/json")
            .header("user-agent", "nguon-server");
        if let Some(secret) = &d.secret {
            req = req.header(SIGNATURE_HEADER, signature(secret, &body));
        }
        match req.body(body).send().await {
            Ok(r) if r.status().is_success() => Attempt {
                ok: true,
                status: Some(i64::from(r.status().as_u16())),
                error: None,
            },
            Ok(r) => failed(
                Some(i64::from(r.status().as_u16())),
                format!("answered {}", r.status()),
            ),
            Err(e) => failed(None, e.to_string()),
        }
    }

    async fn email(&self, d: &Due) -> Attempt {
        let Some((transport, from)) = &self.smtp else {
            return failed(None, "no [smtp] relay is configured".into());
        };
        match mail(from, &d.target, &d.alarm) {
            Ok(m) => match transport.send(m).await {
                Ok(r) => Attempt {
                    ok: true,
                    status: Some(i64::from(u16::from(r.code()))),
                    error: None,
                },
                Err(e) => failed(e.status().map(|c| i64::from(u16::from(c))), e.to_string()),
            },
            Err(e) => failed(None, e),
        }
    }
}

fn failed(status: Option<i64>, error: String) -> Attempt {
    Attempt {
        ok: false,
        status,
        error: Some(error),
    }
}

fn mail(from: &Mailbox, to: &str, a: &Alarm) -> std::result::Result<Message, String> {
    let to: Mailbox = to.parse().map_err(|e| format!("`{to}`: {e}"))?;
    let (subject, body) = email_text(a);
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| e.to_string())
}

fn notice_mail(from: &Mailbox, to: &str, text: &str) -> std::result::Result<Message, String> {
    let to: Mailbox = to.parse().map_err(|e| format!("`{to}`: {e}"))?;
    let subject = text
        .lines()
        .next()
        .unwrap_or("nguon")
        .chars()
        .take(150)
        .collect::<String>();
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(format!("[nguon] {subject}"))
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(format!(
            "{text}\n\nXem trên bảng điều khiển: /console/submissions — See it in the console.\n"
        ))
        .map_err(|e| e.to_string())
}

/// The SMTP transport of `[smtp]`: plain (a local relay) or STARTTLS required.
fn smtp_transport(
    s: &SmtpSettings,
    timeout: Duration,
) -> Result<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)> {
    let from: Mailbox = s
        .from
        .parse()
        .map_err(|e| Error::internal(format!("smtp.from: {e}")))?;
    let mut b = if s.starttls {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
            .map_err(|e| Error::internal(format!("smtp.host: {e}")))?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
    };
    b = b.port(s.port).timeout(Some(timeout));
    if let (Some(user), Some(pw)) = (&s.user, &s.password) {
        b = b.credentials(Credentials::new(user.clone(), pw.expose().to_string()));
    }
    Ok((b.build(), from))
}

/// Run until cancelled. A notifier that cannot be built (no TLS provider for the HTTP client)
/// says so and sends nothing, without stopping the server.
pub async fn run(ctx: Context, cancel: CancellationToken) -> Result<()> {
    let n = match Notifier::new(&ctx) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "alarm notifications are off: the notifier cannot start");
            cancel.cancelled().await;
            return Ok(());
        }
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if let Err(e) = n.round(now_ms()).await {
            tracing::warn!(error = %e, "notification round failed; retrying at the next tick");
        }
        if let Err(e) = n.notices(now_ms()).await {
            tracing::warn!(error = %e, "submission notices failed; retrying at the next tick");
        }
    }
}
