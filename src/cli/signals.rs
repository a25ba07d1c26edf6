//! Requests to stop: Ctrl-C (SIGINT) and SIGTERM, which `timeout`, systemd, Kubernetes and CI
//! cancellations send. Both get the same orderly stop (nothing new starts, downloads keep their
//! received bytes for the next run, upload sessions are deleted, no bundle is written); the
//! exit code says which one came, as shells report a signal: 128 + its number.
//!
//! One listener runs for the whole process ([`listen`]) and remembers the request, so a signal
//! that comes while no part of the program is waiting for one (between resolving and
//! transferring, while a bundle is written) is not lost: installing a handler takes away the
//! signal's default action, and a handler nobody awaits would swallow it. A second request
//! exits at once.

use std::sync::OnceLock;

use tokio::sync::watch;

use super::output::note;

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

static REQUESTED: OnceLock<watch::Receiver<Option<Stop>>> = OnceLock::new();

/// Starts listening for stop requests, for the rest of the process. Call once, on the runtime.
pub fn listen() {
    let (tell, receiver) = watch::channel(None);
    if REQUESTED.set(receiver).is_err() {
        return;
    }
    tokio::spawn(async move {
        let first = next_signal().await;
        let _ = tell.send(Some(first));
        // Said at once: cancelling uploads can take a while when the registry hangs.
        let again = match first {
            Stop::Interrupt => "Ctrl-C again",
            Stop::Terminate => "a second SIGTERM or Ctrl-C",
        };
        note!("{}: stopping ({again} to quit at once)", first.name());
        // The orderly stop is under way; a second request means "now".
        let second = next_signal().await;
        note!("{} again: quitting at once", second.name());
        std::process::exit(i32::from(second.exit_code()));
    });
}

/// Completes when a stop has been requested (at once if one already was); never, when
/// [`listen`] was not called or no handler could be installed.
pub async fn requested() -> Stop {
    let Some(receiver) = REQUESTED.get() else {
        return std::future::pending().await;
    };
    let mut receiver = receiver.clone();
    loop {
        if let Some(stop) = *receiver.borrow_and_update() {
            return stop;
        }
        if receiver.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// The stop requested so far, if any.
pub fn requested_now() -> Option<Stop> {
    REQUESTED.get().and_then(|receiver| *receiver.borrow())
}

/// The next SIGINT or SIGTERM.
async fn next_signal() -> Stop {
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
