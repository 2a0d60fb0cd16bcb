//! The wire format: header, body frames, footer, and the bounded reader they share.

pub mod body;
pub mod footer;
pub mod header;
pub mod reader;

pub use body::{BlockKind, FrameCipher, FrameRef};
pub use header::{ContentType, Header, ParsedHeader};
