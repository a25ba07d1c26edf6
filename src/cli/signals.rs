//! Requests to stop: Ctrl-C (SIGINT) and SIGTERM, which `timeout`, systemd, Kubernetes and CI
//! cancellations send. Both get the same orderly stop (nothing new starts, downloads keep their
//! received bytes for the next run, upload sessions are deleted); the exit code says which one
//! came, as shells report a signal: 128 + its number.

/// Which request came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Interrupt,
    Terminate,
}

impl Stop {
    pub fn exit_code(self) -> u8 {
        match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "interrupted",
            Stop::Terminate => "terminated",
        }
    }
}

/// Completes when a stop is requested; never, when no handler could be installed.
pub async fn requested() -> Stop {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            return tokio::select! {
                () = interrupt => Stop::Interrupt,
                Some(()) = terminate.recv() => Stop::Terminate,
            };
        }
    }
    interrupt.await;
    Stop::Interrupt
}
