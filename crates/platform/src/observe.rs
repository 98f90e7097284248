//! Observation of every gRPC call the server answers: a server span (child of the caller's trace
//! context) around the handler, and when the call ends — status in the response headers, in the
//! trailers at the end of the body, or the body dropped early — the span's status, one log line
//! and the RPC duration metric.

use crate::{metrics, trace_context};
use http_body::{Body as HttpBody, Frame};
use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::{Instrument, Span};

/// The layer that observes every call.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner }
    }
}

/// A service wrapped by [`ObserveLayer`].
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
}

/// What is known about a call until it ends.
struct Call {
    span: Span,
    method: String,
    start: Instant,
}

impl Call {
    fn finish(self, code: &str) {
        let status = trace_context::grpc_status_name(code);
        let elapsed = self.start.elapsed();
        self.span.record("rpc.response.status_code", status);
        if trace_context::is_server_error(status) {
            self.span.record("otel.status_code", "ERROR");
        }
        tracing::info!(
            parent: &self.span,
            grpc_status = status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "rpc finished"
        );
        metrics::get().rpc(&self.method, status, elapsed);
    }
}

impl<S, B> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = trace_context::grpc_server_span(&request);
        let call = Call {
            span: span.clone(),
            method: request.uri().path().trim_start_matches('/').to_owned(),
            start: Instant::now(),
        };
        let response = self.inner.call(request).instrument(span);
        Box::pin(async move {
            let response = response.await?;
            let (parts, body) = response.into_parts();
            let body = match parts.headers.get("grpc-status") {
                Some(code) => {
                    call.finish(code.to_str().unwrap_or("2"));
                    body
                }
                None => Body::new(ObservedBody {
                    inner: body,
                    call: Some(call),
                }),
            };
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

/// A response body that reports the call's status when its trailers arrive.
struct ObservedBody {
    inner: Body,
    call: Option<Call>,
}

impl HttpBody for ObservedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(|t| t.get("grpc-status"))
                    && let Some(call) = self.call.take()
                {
                    call.finish(code.to_str().unwrap_or("2"));
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => {
                if let Some(call) = self.call.take() {
                    call.finish("2");
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            // The client went away before the call ended.
            call.finish("1");
        }
    }
}
