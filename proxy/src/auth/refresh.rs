//! When the signing keys are fetched: on a schedule, and when a request meets
//! an unknown `kid` — at most once per cooldown however many unknown kids
//! arrive, and coalesced, so a flood of random kids costs at most one fetch.
//!
//! This module holds only the bookkeeping: the refresh task (in `auth.rs`)
//! does the fetching, requests ask it through [`Refresher::request`] and wait
//! on the completion counter. Nothing here blocks: locks are held only for a
//! few field updates, never across an `.await`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// Bookkeeping shared by requests, `refresh_keys` and the refresh task.
#[derive(Debug)]
pub(crate) struct Refresher {
    state: Mutex<State>,
    /// Wakes the refresh task when an unknown kid asks for a fetch.
    wake: Notify,
    /// Number of completed fetches; waiters watch it change.
    done: watch::Sender<u64>,
    /// Minimum time between two fetches triggered by unknown kids.
    cooldown: Duration,
    /// How many refresh tasks are alive: with none, nobody would serve a
    /// request, so requests do not wait.
    tasks: AtomicUsize,
}

#[derive(Debug, Default)]
struct State {
    /// When an unknown kid last triggered a fetch.
    last_trigger: Option<Instant>,
    /// A triggered fetch has not started yet.
    requested: bool,
    /// Fetches in progress (scheduled, triggered or explicit).
    in_flight: usize,
}

impl Refresher {
    pub(crate) fn new(cooldown: Duration) -> Self {
        Refresher {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            done: watch::Sender::new(0),
            cooldown,
            tasks: AtomicUsize::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section is a few assignments: never poisoned halfway.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for a fetch because a request met an unknown `kid`.
    ///
    /// Returns a receiver that changes when the next fetch completes, if a
    /// fetch is already pending or in flight (coalesced) or the cooldown
    /// allows a new one; `None` when the cooldown forbids it or no refresh
    /// task runs, in which case the request fails at once without waiting.
    pub(crate) fn request(&self) -> Option<watch::Receiver<u64>> {
        self.request_at(Instant::now())
    }

    fn request_at(&self, now: Instant) -> Option<watch::Receiver<u64>> {
        if self.tasks.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut state = self.state();
        if state.requested || state.in_flight > 0 {
            return Some(self.done.subscribe());
        }
        if state
            .last_trigger
            .is_some_and(|t| now.saturating_duration_since(t) < self.cooldown)
        {
            return None;
        }
        state.last_trigger = Some(now);
        state.requested = true;
        // Subscribed under the lock: the completion cannot slip in between.
        let rx = self.done.subscribe();
        drop(state);
        self.wake.notify_one();
        Some(rx)
    }

    /// Marks a fetch as started; it serves any pending request. The returned
    /// guard marks it completed when dropped, also if the fetch is cancelled,
    /// so waiters are never left hanging.
    pub(crate) fn begin_fetch(&self) -> FetchGuard<'_> {
        let mut state = self.state();
        state.requested = false;
        state.in_flight += 1;
        FetchGuard { refresher: self }
    }

    /// Whether a triggered fetch is waiting to start.
    pub(crate) fn is_requested(&self) -> bool {
        self.state().requested
    }

    /// Resolves when a request may be waiting (check [`Self::is_requested`]).
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Wakes the refresh task without asking for a fetch.
    pub(crate) fn wake_task(&self) {
        self.wake.notify_one();
    }

    /// Completed fetches so far.
    pub(crate) fn completed(&self) -> u64 {
        *self.done.borrow()
    }

    /// A receiver that changes whenever a fetch completes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.done.subscribe()
    }

    /// Registers a running refresh task until the guard is dropped.
    pub(crate) fn task_started(&self) -> TaskGuard<'_> {
        self.tasks.fetch_add(1, Ordering::AcqRel);
        TaskGuard { refresher: self }
    }
}

/// Marks the end of a fetch on drop.
#[derive(Debug)]
pub(crate) struct FetchGuard<'a> {
    refresher: &'a Refresher,
}

impl Drop for FetchGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.refresher.state();
        state.in_flight -= 1;
        drop(state);
        self.refresher.done.send_modify(|n| *n += 1);
    }
}

/// Marks the end of a refresh task on drop.
#[derive(Debug)]
pub(crate) struct TaskGuard<'a> {
    refresher: &'a Refresher,
}

impl Drop for TaskGuard<'_> {
    fn drop(&mut self) {
        if self.refresher.tasks.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Nobody will serve a pending request: release its waiters now.
            self.refresher.state().requested = false;
            self.refresher.done.send_modify(|_| {});
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_a_task_requests_do_not_wait() {
        let r = Refresher::new(Duration::from_secs(60));
        assert!(r.request().is_none());
    }

    #[tokio::test]
    async fn requests_coalesce_and_respect_the_cooldown() {
        let r = Refresher::new(Duration::from_secs(60));
        let _task = r.task_started();
        let t0 = Instant::now();

        let mut first = r.request_at(t0).expect("first unknown kid triggers");
        assert!(r.is_requested());
        let mut second = r.request_at(t0).expect("pending request is joined");
        {
            let _fetch = r.begin_fetch();
            assert!(!r.is_requested());
            let _third = r.request_at(t0).expect("in-flight fetch is joined");
        }
        first.changed().await.unwrap();
        second.changed().await.unwrap();
        assert_eq!(r.completed(), 1);

        assert!(
            r.request_at(t0).is_none(),
            "cooldown forbids another trigger"
        );
        assert!(r.request_at(t0 + Duration::from_secs(59)).is_none());
        assert!(
            r.request_at(t0 + Duration::from_secs(60)).is_some(),
            "cooldown over"
        );
    }

    #[tokio::test]
    async fn stopping_the_task_releases_waiters() {
        let r = Refresher::new(Duration::from_secs(60));
        let task = r.task_started();
        let mut rx = r.request().unwrap();
        drop(task);
        rx.changed().await.unwrap();
        assert!(!r.is_requested());
        assert!(r.request().is_none());
    }
}
