//! Hot reload of `policy.yaml`: on SIGHUP and when the file changes on disk.
//! The identity assertion's key files are read again at the same moments
//! ([`Signer::reload_keys`](crate::assertion::Signer::reload_keys)), so a
//! renewed Kubernetes Secret rotates the key like a renewed ConfigMap
//! changes the policy.
//!
//! Changes are found by polling the *content* of the policy path every few
//! seconds (`--policy-poll-seconds`), not by watching inodes: reading the
//! path follows symlinks afresh each time, so the Kubernetes ConfigMap
//! layout — `policy.yaml -> ..data/policy.yaml`, `..data -> ..2026_11_28_…`,
//! updated by renaming a new `..data` link over the old one — is seen like
//! an edit in place, and an unchanged file costs one read and one SHA-256.
//! The files the policy in force was compiled from (its upstreams' `ca`,
//! `client_cert`, `client_key`) are part of that content: a renewed
//! certificate is read again, and its upstreams get new connections, as if
//! the policy had changed.
//!
//! A new text is compiled with the same pure [`Policy::parse`] as at
//! start-up. If it compiles, [`Gateway::replace_policy`] swaps it in as one
//! `Arc`: a request already running keeps the policy it started with, so
//! every request sees the old policy or the new one, never a mix. If it does
//! not, the old policy stays and every error is logged with its line.
//! Reloads are counted, and the hash of the policy in force is logged (and
//! published on a [`watch`] channel, which is how tests wait for a reload).
//!
//! Where this module's job ends: it decides *whether* to swap; how a request
//! uses the policy is `gateway.rs`'s business.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::gateway::Gateway;
use crate::metrics::ReloadOutcome;
use crate::policy::{Policy, PolicyErrors};

/// What has happened to the policy since start-up; sent on every attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadStatus {
    /// SHA-256 (hex) of the policy text in force.
    pub hash: String,
    /// New policies swapped in.
    pub applied: u64,
    /// New texts refused (the old policy stayed).
    pub rejected: u64,
    /// The errors of the last refused text, one `file:line:col: message`
    /// per line; cleared when a policy is applied.
    pub last_errors: Option<String>,
}

/// What one reload attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadResult {
    /// The file holds the text already in force, and the files it names
    /// are unchanged: nothing to do.
    Unchanged,
    /// A new policy is in force; its hash.
    Applied { hash: String, routes: usize },
    /// The new text does not compile (or cannot be read); the old policy stays.
    Rejected(PolicyErrors),
}

/// Why a reload was attempted, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP.
    Signal,
    /// The poll saw a different content.
    FileChange,
    /// Called directly (tests, tools).
    Manual,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "sighup",
            Trigger::FileChange => "file_change",
            Trigger::Manual => "manual",
        }
    }
}

/// Reloads one gateway's policy from one path.
#[derive(Debug)]
pub struct Reloader {
    gateway: Arc<Gateway>,
    path: PathBuf,
    /// One attempt at a time (SIGHUP and the poll may coincide); holds the
    /// [`Reloader::inputs`] last *looked at*, applied or refused, so a
    /// refused text is not retried (and re-logged) on every poll, and those
    /// of the policy in force.
    seen: Mutex<Seen>,
    status: watch::Sender<ReloadStatus>,
}

impl Reloader {
    /// `path` is the file the gateway's current policy was loaded from.
    /// Reads it once for the hash of the policy in force.
    pub fn new(gateway: Arc<Gateway>, path: &Path) -> Reloader {
        let hash = std::fs::read(path)
            .map(|text| policy_hash(&text))
            .unwrap_or_default();
        let (status, _) = watch::channel(ReloadStatus {
            hash: hash.clone(),
            ..ReloadStatus::default()
        });
        let inputs = inputs(&hash, &gateway.policy().policy);
        Reloader {
            gateway,
            path: path.to_owned(),
            seen: Mutex::new(Seen {
                last: inputs.clone(),
                in_force: inputs,
            }),
            status,
        }
    }

    /// The current status; changes on every applied or refused reload.
    pub fn subscribe(&self) -> watch::Receiver<ReloadStatus> {
        self.status.subscribe()
    }

    /// The policy file being watched.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file and, if its content changed, compiles and applies it.
    /// Blocking IO on a small file; the task calls it on a blocking thread.
    pub fn reload(&self, trigger: Trigger) -> ReloadResult {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // The assertion keys, whatever becomes of the policy.
        if let Some(signer) = self.gateway.assertion() {
            signer.reload_keys();
        }
        let file = self.path.display().to_string();
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) => {
                // A ConfigMap swap is atomic, but an editor may briefly
                // remove the file; the next poll looks again.
                let errors = PolicyErrors::single(&file, 0, 0, format!("cannot read policy: {e}"));
                if trigger != Trigger::FileChange {
                    self.refuse(&errors, trigger, "");
                }
                return ReloadResult::Rejected(errors);
            }
        };
        let hash = policy_hash(&text);
        // The TLS files named by the policy in force: a new text that names
        // others differs anyway.
        let looked_at = inputs(&hash, &self.gateway.policy().policy);
        if seen.last == looked_at && trigger == Trigger::FileChange {
            return ReloadResult::Unchanged;
        }
        if seen.in_force == looked_at {
            seen.last = looked_at;
            return ReloadResult::Unchanged;
        }
        seen.last = looked_at;
        let compiled = match std::str::from_utf8(&text) {
            Ok(text) => Policy::parse(text, &file),
            Err(_) => Err(PolicyErrors::single(
                &file,
                0,
                0,
                "policy is not UTF-8".to_owned(),
            )),
        };
        match compiled {
            Ok(policy) => {
                let routes = policy.routes().len();
                let in_force = inputs(&hash, &policy);
                seen.last.clone_from(&in_force);
                seen.in_force = in_force;
                self.gateway.replace_policy(policy);
                self.gateway.record_reload(ReloadOutcome::Applied, &hash);
                tracing::info!(
                    policy = %file,
                    hash = %hash,
                    routes,
                    trigger = trigger.as_str(),
                    "policy reloaded"
                );
                self.status.send_modify(|s| {
                    s.hash.clone_from(&hash);
                    s.applied += 1;
                    s.last_errors = None;
                });
                ReloadResult::Applied { hash, routes }
            }
            Err(errors) => {
                self.refuse(&errors, trigger, &hash);
                ReloadResult::Rejected(errors)
            }
        }
    }

    fn refuse(&self, errors: &PolicyErrors, trigger: Trigger, hash: &str) {
        for error in &errors.errors {
            tracing::error!(
                policy = %error.file,
                line = error.line,
                column = error.column,
                "{error}"
            );
        }
        self.gateway.record_reload(ReloadOutcome::Rejected, hash);
        let current = self.status.borrow().hash.clone();
        tracing::warn!(
            errors = errors.errors.len(),
            trigger = trigger.as_str(),
            hash = %current,
            "policy reload refused; the current policy stays in force"
        );
        self.status.send_modify(|s| {
            s.rejected += 1;
            s.last_errors = Some(errors.to_string());
        });
    }

    /// Reloads on SIGHUP and, unless `poll` is `None`, whenever the file's
    /// content changes (checked every `poll`). Ends when aborted.
    pub fn spawn(self: &Arc<Self>, poll: Option<Duration>) -> JoinHandle<()> {
        let this = Arc::clone(self);
        // Listening for SIGHUP before saying so: a SIGHUP from then on reloads.
        let mut hangup = hangup_signal();
        tokio::spawn(async move {
            tracing::info!(
                policy = %this.path.display(),
                hash = %this.status.borrow().hash,
                poll_s = poll.map_or(0.0, |p| p.as_secs_f64()),
                "policy in force; reloads on SIGHUP and on change"
            );
            let mut ticks = poll.map(|period| {
                let mut ticks = tokio::time::interval(period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticks
            });
            loop {
                let trigger = tokio::select! {
                    Some(()) = recv(&mut hangup) => Trigger::Signal,
                    _ = tick(&mut ticks) => Trigger::FileChange,
                };
                let reloader = Arc::clone(&this);
                let _ = tokio::task::spawn_blocking(move || reloader.reload(trigger)).await;
            }
        })
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reloads on file change only");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

/// The next SIGHUP; never, when there is no signal stream.
async fn recv(hangup: &mut Hangup) -> Option<()> {
    #[cfg(unix)]
    if let Some(signal) = hangup {
        return signal.recv().await;
    }
    let _ = hangup;
    std::future::pending().await
}

/// The next poll tick; never, when polling is off.
async fn tick(ticks: &mut Option<tokio::time::Interval>) {
    match ticks {
        Some(ticks) => {
            ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// SHA-256 of the file's bytes, lowercase hex, as `sha256sum` prints it.
/// What [`Reloader::reload`] compares: the policy text's hash and the
/// content of each file the policy names.
#[derive(Debug, Default)]
struct Seen {
    /// Of the last attempt, applied or refused.
    last: String,
    /// Of the policy in force.
    in_force: String,
}

/// The hash of the policy text `hash` together with the content of every
/// file `policy` was compiled from (an unreadable one counts as its error).
fn inputs(hash: &str, policy: &Policy) -> String {
    let mut all = hash.as_bytes().to_vec();
    for file in policy.files() {
        all.push(0);
        all.extend_from_slice(file.as_os_str().as_encoded_bytes());
        all.push(0);
        match std::fs::read(file) {
            Ok(bytes) => all.extend_from_slice(policy_hash(&bytes).as_bytes()),
            Err(e) => all.extend_from_slice(e.to_string().as_bytes()),
        }
    }
    policy_hash(&all)
}

pub fn policy_hash(bytes: &[u8]) -> String {
    crate::metrics::policy_hash(bytes)
}
