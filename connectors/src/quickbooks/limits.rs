//! QuickBooks' limits per company (DOMAIN.md §5): at most 10 requests in flight, 10 a second and
//! 500 a minute; after a 429 the company waits 60 s (or what `Retry-After` says).
//!
//! One [`Limiter`] per company, shared by everything that calls its API. It keeps time with
//! `tokio::time`, so that tests run on a paused clock and never sleep for real.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How many requests a company may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests in flight at once.
    pub concurrent: usize,
    /// Requests started in any one second.
    pub per_second: usize,
    /// Requests started in any one minute.
    pub per_minute: usize,
}

impl Limits {
    /// QuickBooks Online's: 10 in flight, 10 a second, 500 a minute.
    pub const QUICKBOOKS: Limits = Limits { concurrent: 10, per_second: 10, per_minute: 500 };
}

impl Default for Limits {
    /// [`Limits::QUICKBOOKS`].
    fn default() -> Self {
        Self::QUICKBOOKS
    }
}

/// Paces one company's requests. Clones share the same limits and state.
#[derive(Debug, Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: Limits,
    in_flight: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When the requests of the last minute started, oldest first.
    started: VecDeque<Instant>,
    /// No request starts before this (a 429).
    paused_until: Option<Instant>,
}

/// The right to make one request; its slot in flight is freed when it is dropped.
#[derive(Debug)]
pub struct Permit {
    _slot: Option<OwnedSemaphorePermit>,
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

impl Default for Limiter {
    /// A limiter with [`Limits::QUICKBOOKS`].
    fn default() -> Self {
        Self::new(Limits::QUICKBOOKS)
    }
}

impl Limiter {
    /// A limiter keeping to `limits` (each at least 1).
    pub fn new(limits: Limits) -> Self {
        let limits = Limits {
            concurrent: limits.concurrent.max(1),
            per_second: limits.per_second.max(1),
            per_minute: limits.per_minute.max(1),
        };
        let in_flight = Arc::new(Semaphore::new(limits.concurrent));
        Self { inner: Arc::new(Inner { limits, in_flight, state: Mutex::new(State::default()) }) }
    }

    /// The limits it keeps to.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Waits until a request may start: a slot in flight is free, the last second and the last
    /// minute leave room, and no pause is running. Waiters get slots in flight in turn.
    pub async fn acquire(&self) -> Permit {
        // The semaphore is never closed, so a slot always comes; were it closed, requests would
        // still be paced by the windows below.
        let slot = Arc::clone(&self.inner.in_flight).acquire_owned().await.ok();
        loop {
            let wait = {
                let mut state = self.state();
                let now = Instant::now();
                match state.next_start(&self.inner.limits, now) {
                    None => {
                        state.started.push_back(now);
                        return Permit { _slot: slot };
                    }
                    Some(at) => at,
                }
            };
            tokio::time::sleep_until(wait).await;
        }
    }

    /// Holds every request back until `until` (a 429); an earlier pause than one running is
    /// ignored.
    pub fn pause_until(&self, until: Instant) {
        let mut state = self.state();
        if state.paused_until.is_none_or(|p| p < until) {
            state.paused_until = Some(until);
        }
    }

    /// When the running pause ends, if one is running.
    pub fn paused_until(&self) -> Option<Instant> {
        self.state().paused_until.filter(|p| *p > Instant::now())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding it: every update is one step.
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// When a request asking at `now` may start, or `None` for now.
    fn next_start(&mut self, limits: &Limits, now: Instant) -> Option<Instant> {
        while self.started.front().is_some_and(|t| *t + MINUTE <= now) {
            self.started.pop_front();
        }
        if let Some(until) = self.paused_until {
            if until > now {
                return Some(until);
            }
            self.paused_until = None;
        }
        let in_last = |window: Duration| self.started.iter().rev().take_while(|t| **t + window > now).count();
        let n = self.started.len();
        if in_last(SECOND) >= limits.per_second {
            // The request that opened the busy second must leave it.
            return Some(self.started[n - limits.per_second] + SECOND);
        }
        if n >= limits.per_minute {
            return Some(self.started[n - limits.per_minute] + MINUTE);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// `elapsed` is `expected`, give or take the timer's millisecond.
    fn near(elapsed: Duration, expected: Duration) -> bool {
        elapsed >= expected && elapsed <= expected + Duration::from_millis(2)
    }

    #[tokio::test(start_paused = true)]
    async fn ten_requests_a_second_at_most() {
        let limiter = Limiter::default();
        let start = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..25 {
            drop(limiter.acquire().await);
            starts.push(start.elapsed());
        }
        assert_eq!(starts[9], Duration::ZERO, "the first ten go at once");
        assert!(near(starts[10], SECOND), "the eleventh waits for the first to leave the second: {:?}", starts[10]);
        assert!(starts[24] >= 2 * SECOND, "{:?}", starts[24]);
        for window in starts.windows(11) {
            assert!(window[10] - window[0] >= SECOND, "11 starts within a second: {window:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn five_hundred_requests_a_minute_at_most() {
        let limiter = Limiter::default();
        let start = Instant::now();
        for _ in 0..500 {
            drop(limiter.acquire().await);
        }
        assert!(start.elapsed() < MINUTE, "500 fit in a minute at 10 a second: {:?}", start.elapsed());
        drop(limiter.acquire().await);
        assert!(start.elapsed() >= MINUTE, "the 501st waits for the minute: {:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_ten_in_flight() {
        let limiter = Limiter::default();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..30)
            .map(|_| {
                let (limiter, in_flight, most) = (limiter.clone(), Arc::clone(&in_flight), Arc::clone(&most));
                tokio::spawn(async move {
                    let _permit = limiter.acquire().await;
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Longer than a second: the rate alone would let twenty and more in.
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_the_next_request_back() {
        let limiter = Limiter::default();
        let start = Instant::now();
        assert_eq!(limiter.paused_until(), None);
        limiter.pause_until(start + MINUTE);
        limiter.pause_until(start + SECOND);
        assert_eq!(limiter.paused_until(), Some(start + MINUTE), "a shorter pause does not shorten one running");
        drop(limiter.acquire().await);
        assert!(near(start.elapsed(), MINUTE), "{:?}", start.elapsed());
        assert_eq!(limiter.paused_until(), None, "the pause is over");
    }

    #[tokio::test(start_paused = true)]
    async fn limits_are_configurable() {
        let limiter = Limiter::new(Limits { concurrent: 2, per_second: 100, per_minute: 3 });
        let start = Instant::now();
        let first = limiter.acquire().await;
        let second = limiter.acquire().await;
        let third = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire().await }
        });
        tokio::time::sleep(SECOND).await;
        assert!(!third.is_finished(), "two in flight at most");
        drop(first);
        let third = third.await.unwrap();
        drop((second, third));
        drop(limiter.acquire().await);
        assert!(near(start.elapsed(), MINUTE), "three a minute: {:?}", start.elapsed());
    }
}
