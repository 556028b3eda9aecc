//! Opening connections: dialing out, accepting in, and the Hello exchange both do first.
//!
//! ```text
//!  dialer                                   acceptor
//!    │── Hello{peer_id, listen_addr, incarnation, known_peers} ─▶│  (≤ HELLO_BYTES_MAX)
//!    │◀──────────────────────────────────────────────── Hello ───│
//!    both: learn addresses; discovery_only → close; else admit the link (one per peer)
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::timeout;

use super::book::Source;
use super::inner::Inner;
use super::wire::{self, Frame, HELLO_BYTES_MAX, Hello};
use super::{PeerError, PeerId, link};
use crate::metrics::Counter;

/// A connection whose Hello exchange succeeded, not yet admitted.
pub struct Established {
    /// The remote's Hello.
    pub hello: Hello,
    /// The remote socket address.
    pub remote_addr: SocketAddr,
    /// True if this host dialed.
    pub dialed_by_local: bool,
    /// The connection's receiving half.
    pub reader: OwnedReadHalf,
    /// The connection's sending half.
    pub writer: OwnedWriteHalf,
}

/// Dials `addr` and exchanges Hellos. With `expected`, the remote must be that peer
/// ([`PeerError::WrongPeer`] otherwise, and the book forgets that address for it).
pub async fn dial(
    inner: &Inner,
    addr: SocketAddr,
    expected: Option<PeerId>,
    discovery_only: bool,
) -> Result<Established, PeerError> {
    if addr == inner.local.listen_addr {
        return Err(PeerError::SelfConnection(addr));
    }
    let settings = &inner.settings;
    let stream = timeout(settings.connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| PeerError::Timeout("connecting"))?
        .map_err(|source| PeerError::Io {
            context: format!("connecting to {addr}"),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let ours = wire::encode_hello(&inner.hello(expected, discovery_only));
    let exchange = async {
        link::write_frames(inner, &mut writer, &[ours]).await?;
        read_hello(inner, &mut reader).await
    };
    let hello = timeout(settings.handshake_timeout, exchange)
        .await
        .map_err(|_| PeerError::Timeout("exchanging Hellos"))??;
    if hello.peer_id == inner.local.peer_id {
        if let Some(expected) = expected {
            inner.state().book.forget(expected, addr);
        }
        return Err(PeerError::SelfConnection(addr));
    }
    inner.learn(&hello, Some(addr), Source::Dialed);
    match expected {
        Some(expected) if expected != hello.peer_id => {
            inner.state().book.forget(expected, addr);
            Err(PeerError::WrongPeer {
                addr,
                expected,
                found: hello.peer_id,
            })
        }
        _ => Ok(Established {
            hello,
            remote_addr: addr,
            dialed_by_local: true,
            reader,
            writer,
        }),
    }
}

/// Answers an inbound connection's Hello. `None` for a discovery-only dialer (answered, done).
pub async fn accept(
    inner: &Inner,
    stream: TcpStream,
    remote_addr: SocketAddr,
) -> Result<Option<Established>, PeerError> {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let exchange = async {
        let hello = read_hello(inner, &mut reader).await?;
        if hello.peer_id == inner.local.peer_id {
            return Err(PeerError::SelfConnection(remote_addr));
        }
        let ours = wire::encode_hello(&inner.hello(Some(hello.peer_id), false));
        link::write_frames(inner, &mut writer, &[ours]).await?;
        Ok(hello)
    };
    let hello = timeout(inner.settings.handshake_timeout, exchange)
        .await
        .map_err(|_| PeerError::Timeout("waiting for a Hello"))??;
    // "0.0.0.0:port" means: the address this connection came from, on that port.
    let announced = hello.listen_addr.map(|listen| {
        if listen.ip().is_unspecified() {
            SocketAddr::new(remote_addr.ip(), listen.port())
        } else {
            listen
        }
    });
    inner.learn(&hello, announced, Source::Announced);
    if hello.discovery_only {
        return Ok(None);
    }
    Ok(Some(Established {
        hello,
        remote_addr,
        dialed_by_local: false,
        reader,
        writer,
    }))
}

async fn read_hello(inner: &Inner, reader: &mut OwnedReadHalf) -> Result<Hello, PeerError> {
    let (frame, size) = wire::read_frame(reader, HELLO_BYTES_MAX).await?;
    inner.metrics.increment(Counter::PeerFramesIn);
    inner.metrics.add(Counter::PeerBytesIn, size as u64);
    match frame {
        Frame::Hello(hello) => Ok(hello),
        _ => Err(PeerError::Violation(
            "the first frame is not a Hello".to_owned(),
        )),
    }
}

/// Accepts peer connections until the transport stops. Each gets its own task; at most
/// `handshakes_max` may be in their Hello exchange at once (more are closed at once).
pub async fn run_listener(inner: Arc<Inner>, listener: TcpListener) {
    loop {
        let (stream, remote_addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: pause rather than spin.
                tracing::warn!(%error, "accepting a peer connection failed");
                tokio::time::sleep(inner.settings.backoff_initial).await;
                continue;
            }
        };
        let Ok(permit) = inner.handshakes.clone().try_acquire_owned() else {
            tracing::warn!(%remote_addr, "too many peer handshakes in progress; closed");
            continue;
        };
        inner.spawn(serve_inbound(inner.clone(), stream, remote_addr, permit));
    }
}

async fn serve_inbound(
    inner: Arc<Inner>,
    stream: TcpStream,
    remote_addr: SocketAddr,
    permit: OwnedSemaphorePermit,
) {
    let accepted = accept(&inner, stream, remote_addr).await;
    drop(permit);
    match accepted {
        Ok(Some(established)) => {
            link::run(inner, established).await;
        }
        Ok(None) => tracing::debug!(%remote_addr, "answered a discovery Hello"),
        Err(error @ PeerError::Violation(_)) => {
            inner.metrics.increment(Counter::PeerViolations);
            tracing::warn!(%remote_addr, %error, "refused a peer connection");
        }
        Err(error) => tracing::debug!(%remote_addr, %error, "inbound peer handshake failed"),
    }
}
