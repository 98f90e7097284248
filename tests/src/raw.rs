//! Calling any gRPC method by its path with raw protobuf bytes: a pass-through codec, and one call
//! helper for every kind of method (client and bidirectional streams carry one message), so a
//! table of methods can be driven generically — and malformed bytes can be sent as they are.

use bytes::{Buf, BufMut};
use futures::StreamExt;
use http::uri::PathAndQuery;
use prost::Message;
use prost_types::{FileDescriptorSet, MethodDescriptorProto};
use std::time::Duration;
use tonic::{
    Request, Status, Streaming,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};

/// A codec whose messages are their encoded bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(bytes.to_vec()))
    }
}

/// A method of the contracts: its gRPC path and whether each side streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// `/package.Service/Method`.
    pub path: String,
    /// The client sends a stream.
    pub client_streaming: bool,
    /// The server answers with a stream.
    pub server_streaming: bool,
}

/// Every method of every service in the compiled contracts, in declaration order.
pub fn methods() -> Vec<Method> {
    let set = FileDescriptorSet::decode(clinicnet_proto::FILE_DESCRIPTOR_SET)
        .expect("the compiled descriptor set");
    let mut methods = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                methods.push(described(file.package(), service.name(), method));
            }
        }
    }
    methods
}

fn described(package: &str, service: &str, method: &MethodDescriptorProto) -> Method {
    Method {
        path: format!("/{package}.{service}/{}", method.name()),
        client_streaming: method.client_streaming(),
        server_streaming: method.server_streaming(),
    }
}

/// Calls `method` on `channel` with `body` (one message) and an optional bearer `token`; returns
/// the first response message (None when a server stream ends without one) or the status. A
/// response stream still open and quiet after a while counts as an answer without a message.
pub async fn call(
    channel: Channel,
    method: &Method,
    body: Vec<u8>,
    token: Option<&str>,
) -> Result<Option<Vec<u8>>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = PathAndQuery::try_from(method.path.as_str()).expect("a method path");
    let with_token = |message| with_bearer(message, token);
    match (method.client_streaming, method.server_streaming) {
        (false, false) => grpc
            .unary(with_token(body), path, RawCodec)
            .await
            .map(|r| Some(r.into_inner())),
        (false, true) => {
            let mut stream = grpc
                .server_streaming(with_token(body), path, RawCodec)
                .await?
                .into_inner();
            first_of(&mut stream).await
        }
        (true, false) => {
            let messages = futures::stream::iter([body]);
            grpc.client_streaming(with_bearer(messages, token), path, RawCodec)
                .await
                .map(|r| Some(r.into_inner()))
        }
        (true, true) => {
            let messages = futures::stream::iter([body]);
            let mut stream = grpc
                .streaming(with_bearer(messages, token), path, RawCodec)
                .await?
                .into_inner();
            first_of(&mut stream).await
        }
    }
}

/// `message` with `authorization: Bearer <token>` when there is a token.
fn with_bearer<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("a header value"),
        );
    }
    request
}

/// How long a response stream may stay open without a message: an open stream is an answer.
const STREAM_QUIET: Duration = Duration::from_secs(2);

async fn first_of(stream: &mut Streaming<Vec<u8>>) -> Result<Option<Vec<u8>>, Status> {
    match tokio::time::timeout(STREAM_QUIET, stream.next()).await {
        Ok(next) => next.transpose(),
        Err(_) => Ok(None),
    }
}
