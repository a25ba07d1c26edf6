//! Retry policy of the executor: the same backoff the resolve and plan phases use, defined with
//! the endpoints so every phase shares it.

pub use crate::endpoint::retry::{with_retries, RetryPolicy, Retryable};
