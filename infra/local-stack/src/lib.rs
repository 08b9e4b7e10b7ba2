//! The local stack: every function's handler behind one HTTP server that behaves like
//! API Gateway (HTTP API, payload v2) with a JWT authorizer, and the DynamoDB Streams
//! event source mapping that feeds stream functions ([`streams`]); the console and the
//! identity provider it signs in with locally ([`idp`]).

pub mod adapter;
pub mod idp;
pub mod jwt;
pub mod server;
pub mod streams;
