//! Invoking the handler like Lambda invokes a function: its response or error becomes
//! the invocation's result, and a panic (when it is called or while its future runs)
//! a failed invocation instead of the poller's end.

use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;

use super::error::InvocationError;

/// What a handler returns: the function's response, or its error.
pub trait InvocationResult {
    /// The response, or the error as the function's error message.
    fn into_response(self) -> Result<DynamoDbEventResponse, InvocationError>;
}

impl InvocationResult for DynamoDbEventResponse {
    fn into_response(self) -> Result<DynamoDbEventResponse, InvocationError> {
        Ok(self)
    }
}

impl<E: Display> InvocationResult for Result<DynamoDbEventResponse, E> {
    fn into_response(self) -> Result<DynamoDbEventResponse, InvocationError> {
        self.map_err(|err| InvocationError::Function(err.to_string()))
    }
}

/// Polls a future, turning a panic into an error.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, InvocationError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic_message(panic))),
        }
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> InvocationError {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    InvocationError::Panicked(text)
}

/// Calls the handler with one batch and waits for its result; a panic is an error.
pub(super) async fn invoke<H, F>(
    handler: &H,
    event: Event,
) -> Result<DynamoDbEventResponse, InvocationError>
where
    H: Fn(Event) -> F,
    F: Future,
    F::Output: InvocationResult,
{
    let future =
        std::panic::catch_unwind(AssertUnwindSafe(|| handler(event))).map_err(panic_message)?;
    CatchUnwind(Box::pin(future)).await?.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::test_support::response;

    /// Panics while its future is polled, with a formatted (`String`) message.
    fn fail_while_polled() -> DynamoDbEventResponse {
        panic!("while polled: {}", 42)
    }

    #[tokio::test]
    async fn responses_errors_and_panics_become_the_invocations_result() {
        let ok = |_: Event| async { response(&["001"]) };
        assert_eq!(invoke(&ok, Event::default()).await, Ok(response(&["001"])));

        let err = |_: Event| async { Err::<DynamoDbEventResponse, _>("database unavailable") };
        assert_eq!(
            invoke(&err, Event::default()).await,
            Err(InvocationError::Function("database unavailable".into()))
        );

        let panics_when_called =
            |_: Event| -> std::future::Ready<DynamoDbEventResponse> { panic!("when called") };
        assert_eq!(
            invoke(&panics_when_called, Event::default()).await,
            Err(InvocationError::Panicked("when called".into()))
        );

        let panics_while_polled = |_: Event| async { fail_while_polled() };
        assert_eq!(
            invoke(&panics_while_polled, Event::default()).await,
            Err(InvocationError::Panicked("while polled: 42".into()))
        );

        let panics_with_a_value =
            |_: Event| -> std::future::Ready<DynamoDbEventResponse> { std::panic::panic_any(7_u8) };
        assert_eq!(
            invoke(&panics_with_a_value, Event::default()).await,
            Err(InvocationError::Panicked("a panic".into()))
        );
        assert_eq!(
            InvocationError::Panicked("a panic".into()).to_string(),
            "the handler panicked: a panic"
        );
    }
}
