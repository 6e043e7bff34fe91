//! Catching panics with their message and source location, in request handlers and in functional tests.
//!
//! A process-wide panic hook (installed once) records the message and location of panics raised inside a
//! [`CatchPanic`] and prints nothing for them; other panics go to the hook installed before. A hook that
//! the program installs later replaces this one: panics are then still caught, without their location.

use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context as TaskContext, Poll};

use crate::call::CallSite;

/// A panic caught in a handler or a test.
#[derive(Clone, Debug)]
pub struct Panic {
    pub message: String,
    pub location: Option<CallSite>,
}

thread_local! {
    static CATCHING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    static LAST_PANIC: RefCell<Option<Panic>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that, for panics inside [`CatchPanic`], records message and location and
/// prints nothing; other panics go to the previous hook.
pub(crate) fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(|c| c.get()) == 0 {
                previous(info);
                return;
            }
            let message = payload_text(info.payload()).unwrap_or("panic with a non-text payload").to_string();
            let location = info.location().map(CallSite::from_location);
            LAST_PANIC.with(|last| *last.borrow_mut() = Some(Panic { message, location }));
        }));
    });
}

/// Polls a future, turning a panic during any poll into `Err(Panic)`.
pub struct CatchPanic<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> CatchPanic<F> {
    pub fn new(future: F) -> Self {
        install_panic_hook();
        CatchPanic { inner: Box::pin(future) }
    }
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, Panic>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        CATCHING.with(|c| c.set(c.get() + 1));
        let inner = &mut self.inner;
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx)));
        CATCHING.with(|c| c.set(c.get() - 1));
        match polled {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                let panic = LAST_PANIC.with(|last| last.borrow_mut().take()).unwrap_or_else(|| Panic {
                    message: payload_text(payload.as_ref()).unwrap_or("panic").to_string(),
                    location: None,
                });
                Poll::Ready(Err(panic))
            }
        }
    }
}

/// The text of a panic payload, when it is text.
fn payload_text(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}
