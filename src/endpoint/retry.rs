//! Retries with exponential backoff and jitter, honouring `Retry-After`. The registry client has
//! no policy of its own: the error says whether trying again can help.
//!
//! It lives with the endpoints because every phase needs it: resolving and planning ask
//! through [`super::retrying`], the executor retries whole tasks (`execute::run_task`).

use std::future::Future;
use std::time::Duration;

use rand::Rng;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub retries: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 5,
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt` (1-based retry number): base·2^(n-1), capped, with up to
    /// 50 % jitter so many clients do not retry in lockstep; a server's `Retry-After` wins.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max * 2);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max);
        let jitter = rand::rng().random_range(0.5..=1.0);
        capped.mul_f64(jitter)
    }
}

/// What a retryable failure looks like to [`with_retries`].
pub trait Retryable {
    fn is_retryable(&self) -> bool;
    fn retry_after(&self) -> Option<Duration>;
}

/// Runs `op` until it succeeds, fails for good, or the policy runs out. `on_retry` is told about
/// each retry (attempt number, delay, error). A failure comes back with the number of attempts
/// made (1 when the error was not worth retrying).
pub async fn with_retries<T, E, F, Fut>(
    policy: RetryPolicy,
    mut op: F,
    mut on_retry: impl FnMut(u32, Duration, &E),
) -> Result<T, (E, u32)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Retryable,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_retryable() && attempt < policy.retries => {
                attempt += 1;
                let delay = policy.delay(attempt, e.retry_after());
                on_retry(attempt, delay, &e);
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err((e, attempt + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let p = RetryPolicy::default();
        assert!(p.delay(1, None) <= Duration::from_millis(250));
        assert!(p.delay(3, None) >= Duration::from_millis(500));
        assert!(p.delay(30, None) <= Duration::from_secs(30));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }
}
