//! Why a client's connection or session failed.

use protocol::ErrorCode;

/// Why a connection failed. Callers branch on it: a refusal carries the server's code
/// (a full room, an expired session), the rest are local or network failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// The server refused a request.
    #[error("refused ({0:?}): {1}")]
    Refused(ErrorCode, String),
    /// The server did not answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The media session failed.
    #[error("media: {0}")]
    Media(String),
}
