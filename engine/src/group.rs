//! Group commit: the jobs of concurrent requests handed to one task that takes them in groups —
//! whatever is waiting when it is free, up to a bound — and does each group in one transaction.
//! Every request is answered with its own outcome once its group is committed; a failed group
//! fails every request in it, and their clients try again.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the task at most; more wait to be queued.
const QUEUE: usize = 1024;

struct Job<T, R> {
    input: T,
    reply: oneshot::Sender<Result<R, String>>,
}

/// The handle requests hand their jobs through.
pub struct Group<T, R> {
    jobs: mpsc::Sender<Job<T, R>>,
}

impl<T, R> Clone for Group<T, R> {
    fn clone(&self) -> Self {
        Self { jobs: self.jobs.clone() }
    }
}

impl<T, R> std::fmt::Debug for Group<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").finish_non_exhaustive()
    }
}

impl<T: Send + 'static, R: Send + 'static> Group<T, R> {
    /// Starts the task: `commit` does a group of at most `max` inputs, in their order, and returns
    /// one outcome per input, in the same order, or the group's error.
    pub fn spawn<F, Fut>(max: usize, mut commit: F) -> Self
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<R>, String>> + Send,
    {
        let (jobs, mut queue) = mpsc::channel::<Job<T, R>>(QUEUE);
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut group = vec![first];
                while group.len() < max.max(1) {
                    match queue.try_recv() {
                        Ok(job) => group.push(job),
                        Err(_) => break,
                    }
                }
                let (inputs, replies): (Vec<T>, Vec<_>) = group.into_iter().map(|j| (j.input, j.reply)).unzip();
                match commit(inputs).await {
                    Ok(outcomes) if outcomes.len() == replies.len() => {
                        for (reply, outcome) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(Ok(outcome));
                        }
                    }
                    Ok(outcomes) => {
                        let e = format!("a group of {} gave {} outcomes", replies.len(), outcomes.len());
                        tracing::error!("{e}");
                        replies.into_iter().for_each(|r| drop(r.send(Err(e.clone()))));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, requests = replies.len(), "a group commit failed");
                        replies.into_iter().for_each(|r| drop(r.send(Err(e.clone()))));
                    }
                }
            }
        });
        Self { jobs }
    }

    /// Does `input` with the other jobs of its group; returns once they are committed.
    ///
    /// # Errors
    /// The group's error, as text, or that the task stopped.
    pub async fn run(&self, input: T) -> Result<R, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { input, reply }).await.map_err(|_| "the writer stopped".to_owned())?;
        answer.await.map_err(|_| "the writer stopped".to_owned())?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn concurrent_jobs_are_committed_together_and_each_gets_its_outcome() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let group = Group::spawn(4, move |inputs: Vec<u32>| {
            seen.lock().expect("lock").push(inputs.len());
            async move {
                if inputs.contains(&13) {
                    return Err("unlucky".to_owned());
                }
                Ok(inputs.iter().map(|n| n * 10).collect())
            }
        });
        // Queued before the task runs: taken in groups of at most 4.
        let runs: Vec<_> = (0..6).map(|n| group.run(n)).collect();
        let outcomes = futures_util::future::join_all(runs).await;
        assert_eq!(outcomes, (0..6).map(|n| Ok(n * 10)).collect::<Vec<_>>());
        assert!(sizes.lock().expect("lock").iter().all(|&n| n <= 4));
        assert_eq!(sizes.lock().expect("lock").iter().sum::<usize>(), 6);
        // A failed group fails its requests, and only them.
        assert_eq!(group.run(13).await, Err("unlucky".to_owned()));
        assert_eq!(group.run(2).await, Ok(20));
    }
}
