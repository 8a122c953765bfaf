//! The `webhook` provider: the server asks an operator's service whether a visitor may
//! join a room, and with what grants. The question is a JSON POST; the answer is JSON.
//!
//! Question (`POST <url>`, `Content-Type: application/json`):
//!
//! ```json
//! {"room": "team-standup", "accessToken": "…", "cookie": "session=…",
//!  "address": "203.0.113.7", "creating": false}
//! ```
//!
//! Answer (`200`): `{"allow": true, "name": "Ada", "video": {"canPublish": false}}` or
//! `{"allow": false, "reason": "you are not on the guest list"}`. With `allow`, `video`
//! holds the grants (as in a token: absent publish, subscribe and data grants allow) and
//! `name` fixes the nickname; `roomJoin` and `roomCreate` are not needed, the service
//! was asked about this room and told whether the visitor would start it.
//!
//! The service is asked from a few worker threads, never the signalling thread. It has
//! [`WebhookConfig::timeout`] to answer; a service that is down, slow, answers another
//! status or something that is not an answer denies the join with a sentence that says
//! which. Answers (allow and deny, not failures) are kept for
//! [`WebhookConfig::cache_for`], so a reconnect storm does not become a storm of
//! questions.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, unbounded};
use serde::{Deserialize, Serialize};

use crate::{Admission, Denied, Grants};

/// Where the service is and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL the questions are POSTed to.
    pub url: String,
    /// The longest a join waits for the answer.
    pub timeout: Duration,
    /// How long an answer is reused for the same question.
    pub cache_for: Duration,
}

impl WebhookConfig {
    /// Checks the URL's scheme and host.
    pub fn new(url: &str, timeout: Duration, cache_for: Duration) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| format!("the webhook URL must start with http:// or https://: {url}"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("the webhook URL names no host: {url}"));
        }
        if timeout.is_zero() {
            return Err("the webhook timeout must be more than zero".into());
        }
        Ok(Self {
            url: url.to_owned(),
            timeout,
            cache_for,
        })
    }
}

/// What the service is asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Question {
    pub room: String,
    /// The join's `access_token`, if it carried one.
    pub access_token: Option<String>,
    /// The `Cookie` header of the WebSocket's upgrade request, if it had one.
    pub cookie: Option<String>,
    /// The client's address, as the server sees it.
    pub address: Option<IpAddr>,
    /// Nobody is in the room yet: the visitor would start it.
    pub creating: bool,
}

/// What the service answers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Answer {
    allow: bool,
    reason: Option<String>,
    name: Option<String>,
    video: Grants,
}

/// Reads the service's answer: its status and body.
pub fn read_answer(status: u16, body: &str) -> Result<Admission, Denied> {
    if status != 200 {
        return Err(Denied(format!(
            "the permissions service answered with status {status}; try again later"
        )));
    }
    let answer: Answer = serde_json::from_str(body).map_err(|e| {
        Denied(format!(
            "the permissions service's answer is not one this server understands: {e}"
        ))
    })?;
    if !answer.allow {
        return Err(Denied(
            answer.reason.filter(|r| !r.is_empty()).unwrap_or_else(|| {
                "the permissions service does not let you into this room".into()
            }),
        ));
    }
    let mut grants = answer.video;
    grants.room_join = true;
    grants.room_create = true;
    Ok(Admission {
        grants,
        name: answer.name.filter(|n| !n.is_empty()),
    })
}

/// Questions asked at once; beyond them a join is denied at once (the service is slow
/// and more questions would only queue behind the slow ones).
const WORKERS: usize = 4;
const QUEUE: usize = 256;

/// An answer may be a real one (kept in the cache) or a failure to get one (not kept).
type Verdict = Result<Admission, Denied>;

struct Job {
    key: u64,
    question: Question,
}

struct Reply {
    key: u64,
    question: Question,
    verdict: Verdict,
    /// The service answered (allow or deny), rather than failed.
    answered: bool,
}

/// Asks the service from worker threads; the caller collects the verdicts.
pub struct Webhook {
    config: WebhookConfig,
    jobs: Sender<Job>,
    replies: Receiver<Reply>,
    /// Verdicts known without asking (from the cache, or a full queue).
    ready: Vec<(u64, Verdict)>,
    cache: HashMap<Question, (Instant, Verdict)>,
}

impl Webhook {
    /// Starts the workers; `wake` is called from a worker when a verdict is ready.
    pub fn start(
        config: WebhookConfig,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> std::io::Result<Webhook> {
        let (jobs, job_rx) = bounded::<Job>(QUEUE);
        let (reply_tx, replies) = unbounded();
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(wake);
        let agent = agent(config.timeout);
        for i in 0..WORKERS {
            let (job_rx, reply_tx, wake, agent, url) = (
                job_rx.clone(),
                reply_tx.clone(),
                wake.clone(),
                agent.clone(),
                config.url.clone(),
            );
            std::thread::Builder::new()
                .name(format!("auth-webhook-{i}"))
                .spawn(move || {
                    for job in job_rx {
                        let (verdict, answered) = ask(&agent, &url, &job.question);
                        let reply = Reply {
                            key: job.key,
                            question: job.question,
                            verdict,
                            answered,
                        };
                        if reply_tx.send(reply).is_err() {
                            return;
                        }
                        wake();
                    }
                })?;
        }
        Ok(Webhook {
            config,
            jobs,
            replies,
            ready: Vec::new(),
            cache: HashMap::new(),
        })
    }

    /// Asks `question` for the join known by `key`; its verdict comes from
    /// [`Webhook::verdicts`].
    pub fn ask(&mut self, key: u64, question: Question, now: Instant) {
        if let Some((at, verdict)) = self.cache.get(&question)
            && now < *at + self.config.cache_for
        {
            self.ready.push((key, verdict.clone()));
            return;
        }
        match self.jobs.try_send(Job { key, question }) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.ready.push((
                key,
                Err(Denied(
                    "the permissions service is busy with other joins; try again in a moment"
                        .into(),
                )),
            )),
        }
    }

    /// The verdicts that came since the last call, by key.
    pub fn verdicts(&mut self, now: Instant) -> Vec<(u64, Verdict)> {
        let mut out = std::mem::take(&mut self.ready);
        for r in self.replies.try_iter() {
            if r.answered && !self.config.cache_for.is_zero() {
                self.cache.insert(r.question, (now, r.verdict.clone()));
            }
            out.push((r.key, r.verdict));
        }
        let keep = self.config.cache_for;
        self.cache.retain(|_, (at, _)| now < *at + keep);
        out
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = ureq::tls::TlsConfig::builder()
        .unversioned_rustls_crypto_provider(provider)
        .root_certs(ureq::tls::RootCerts::WebPki)
        .build();
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .tls_config(tls)
        .build()
        .into()
}

/// The largest answer read: grants are a few hundred bytes.
const MAX_ANSWER: u64 = 64 * 1024;

/// One question, asked: the verdict, and whether the service answered it.
fn ask(agent: &ureq::Agent, url: &str, question: &Question) -> (Verdict, bool) {
    let response = match agent.post(url).send_json(question) {
        Ok(r) => r,
        Err(ureq::Error::Timeout(_)) => {
            return (
                Err(Denied(
                    "the permissions service did not answer in time; try again later".into(),
                )),
                false,
            );
        }
        Err(e) => {
            tracing::warn!(%url, "the permissions webhook failed: {e}");
            return (
                Err(Denied(
                    "the permissions service cannot be reached; try again later".into(),
                )),
                false,
            );
        }
    };
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string();
    match body {
        Ok(body) => {
            let verdict = read_answer(status, &body);
            let answered = status == 200 && (verdict.is_ok() || is_deny(&body));
            (verdict, answered)
        }
        Err(ureq::Error::Timeout(_)) => (
            Err(Denied(
                "the permissions service did not answer in time; try again later".into(),
            )),
            false,
        ),
        Err(e) => (
            Err(Denied(format!(
                "the permissions service's answer could not be read: {e}"
            ))),
            false,
        ),
    }
}

/// A well-formed `{"allow": false}`: a real answer, worth keeping.
fn is_deny(body: &str) -> bool {
    serde_json::from_str::<Answer>(body).is_ok_and(|a| !a.allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_allows_with_its_grants_and_name() {
        let a = read_answer(
            200,
            r#"{"allow":true,"name":"Ada","video":{"canPublish":false,"roomAdmin":true}}"#,
        )
        .unwrap();
        assert_eq!(a.name.as_deref(), Some("Ada"));
        assert!(a.grants.room_join && a.grants.room_create && a.grants.room_admin);
        assert!(!a.grants.may_publish(crate::Source::Camera));
        assert!(a.grants.may_subscribe());
    }

    #[test]
    fn a_deny_says_the_services_reason_and_failures_say_what_failed() {
        let d = read_answer(200, r#"{"allow":false,"reason":"not on the list"}"#).unwrap_err();
        assert_eq!(d.0, "not on the list");
        assert!(
            read_answer(200, r#"{}"#)
                .unwrap_err()
                .0
                .contains("does not let you")
        );
        assert!(
            read_answer(500, "oops")
                .unwrap_err()
                .0
                .contains("status 500")
        );
        assert!(
            read_answer(200, "<html>")
                .unwrap_err()
                .0
                .contains("not one")
        );
        assert!(is_deny(r#"{"allow":false}"#) && !is_deny("<html>"));
    }

    #[test]
    fn a_url_needs_a_scheme_and_a_host() {
        let t = Duration::from_secs(2);
        assert!(WebhookConfig::new("http://127.0.0.1:9/auth", t, t).is_ok());
        assert!(WebhookConfig::new("https://auth.example.com", t, t).is_ok());
        assert!(WebhookConfig::new("ftp://x", t, t).is_err());
        assert!(WebhookConfig::new("http:///x", t, t).is_err());
        assert!(WebhookConfig::new("http://x", Duration::ZERO, t).is_err());
    }

    #[test]
    fn the_question_is_camel_case_json() {
        let q = Question {
            room: "r".into(),
            access_token: Some("t".into()),
            cookie: None,
            address: Some("203.0.113.7".parse().unwrap()),
            creating: true,
        };
        assert_eq!(
            serde_json::to_string(&q).unwrap(),
            r#"{"room":"r","accessToken":"t","cookie":null,"address":"203.0.113.7","creating":true}"#
        );
    }
}
