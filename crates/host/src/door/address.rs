//! Where an enclave process listens: `unix:PATH`, `tcp:IP:PORT` or `vsock:CID:PORT`, and the
//! sockets for each (socket2, so the three share one stream type and no unsafe code is ours).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};

use super::DoorError;

/// The vsock CID that listens on every CID of the machine (`VMADDR_CID_ANY`); `vsock:any:PORT`.
pub const VSOCK_CID_ANY: u32 = u32::MAX;
/// The longest unix socket path (`sun_path` holds 108 bytes with its terminating NUL).
const UNIX_PATH_BYTES_MAX: usize = 107;
/// Connections waiting to be accepted at most: the one host, and the ones refused.
const LISTEN_BACKLOG: i32 = 8;

/// Where an enclave process listens, and where a host connects to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnclaveAddress {
    /// A unix domain socket: the enclave in another process on the same machine.
    Unix(PathBuf),
    /// TCP: a confidential VM reached over a (private) network.
    Tcp(SocketAddr),
    /// vsock: a Nitro enclave, reached from its parent instance.
    Vsock {
        /// Context id ([`VSOCK_CID_ANY`] to listen on any).
        cid: u32,
        /// Port.
        port: u32,
    },
}

impl FromStr for EnclaveAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expected = "expected unix:PATH, tcp:IP:PORT or vsock:CID:PORT";
        let Some((scheme, rest)) = text.split_once(':') else {
            return Err(format!("{text:?}: {expected}"));
        };
        match scheme {
            "unix" => {
                if rest.is_empty() {
                    return Err(format!("{text:?}: the unix socket path is empty"));
                }
                if rest.len() > UNIX_PATH_BYTES_MAX {
                    return Err(format!(
                        "{text:?}: a unix socket path is at most {UNIX_PATH_BYTES_MAX} bytes"
                    ));
                }
                Ok(EnclaveAddress::Unix(PathBuf::from(rest)))
            }
            "tcp" => rest.parse().map(EnclaveAddress::Tcp).map_err(|_| {
                format!("{text:?}: expected tcp:IP:PORT (for example tcp:127.0.0.1:7500)")
            }),
            "vsock" => {
                let parsed = rest.split_once(':').and_then(|(cid, port)| {
                    let cid = match cid {
                        "any" => VSOCK_CID_ANY,
                        number => number.parse().ok()?,
                    };
                    Some((cid, port.parse().ok()?))
                });
                let (cid, port) = parsed.ok_or_else(|| {
                    format!("{text:?}: expected vsock:CID:PORT (numbers; CID may be \"any\")")
                })?;
                Ok(EnclaveAddress::Vsock { cid, port })
            }
            _ => Err(format!("{text:?}: unknown scheme {scheme:?}; {expected}")),
        }
    }
}

impl fmt::Display for EnclaveAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnclaveAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            EnclaveAddress::Tcp(addr) => write!(f, "tcp:{addr}"),
            EnclaveAddress::Vsock { cid, port } if *cid == VSOCK_CID_ANY => {
                write!(f, "vsock:any:{port}")
            }
            EnclaveAddress::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
        }
    }
}

impl EnclaveAddress {
    fn socket_address(&self) -> Result<(Domain, SockAddr), DoorError> {
        match self {
            EnclaveAddress::Unix(path) => {
                let addr =
                    SockAddr::unix(path).map_err(|source| self.io("a unix address", source))?;
                Ok((Domain::UNIX, addr))
            }
            EnclaveAddress::Tcp(addr) => Ok((Domain::for_address(*addr), SockAddr::from(*addr))),
            #[cfg(target_os = "linux")]
            EnclaveAddress::Vsock { cid, port } => {
                Ok((Domain::VSOCK, SockAddr::vsock(*cid, *port)))
            }
            #[cfg(not(target_os = "linux"))]
            EnclaveAddress::Vsock { .. } => Err(DoorError::Address(format!(
                "{self}: vsock is supported on Linux only"
            ))),
        }
    }

    fn socket(&self, domain: Domain) -> Result<Socket, DoorError> {
        Socket::new(domain, Type::STREAM, None).map_err(|source| {
            let hint = match self {
                EnclaveAddress::Vsock { .. } => " (does this machine have /dev/vsock?)",
                _ => "",
            };
            self.io(&format!("opening a socket{hint}"), source)
        })
    }

    fn io(&self, what: &str, source: std::io::Error) -> DoorError {
        DoorError::Io {
            context: format!("{what} for {self}"),
            source,
        }
    }

    /// Connects, waiting at most `timeout`.
    pub(crate) fn connect(&self, timeout: Duration) -> Result<Socket, DoorError> {
        let (domain, addr) = self.socket_address()?;
        let socket = self.socket(domain)?;
        socket
            .connect_timeout(&addr, timeout)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    DoorError::Timeout {
                        context: format!("connecting to the enclave at {self}"),
                        timeout,
                    }
                }
                _ => self.io("connecting to the enclave", source),
            })?;
        if let EnclaveAddress::Tcp(_) = self {
            // Frames are written whole and flushed once per batch: nothing to coalesce.
            socket
                .set_tcp_nodelay(true)
                .map_err(|source| self.io("setting TCP_NODELAY", source))?;
        }
        Ok(socket)
    }
}

/// A listening socket; a unix socket's file is removed when it is dropped.
pub(crate) struct Listener {
    socket: Socket,
    address: EnclaveAddress,
    unix_path: Option<PathBuf>,
}

impl Listener {
    /// Binds and listens. A unix socket file left by an enclave process that died is
    /// replaced; one that a live process still listens on is not. The file is made
    /// owner-only (put it in a private directory too: it exists briefly before that).
    pub(crate) fn bind(address: &EnclaveAddress) -> Result<Listener, DoorError> {
        let (domain, addr) = address.socket_address()?;
        if let EnclaveAddress::Unix(path) = address {
            remove_stale_socket(path, address)?;
        }
        let socket = address.socket(domain)?;
        if let EnclaveAddress::Tcp(_) = address {
            socket
                .set_reuse_address(true)
                .map_err(|source| address.io("setting SO_REUSEADDR", source))?;
        }
        socket
            .bind(&addr)
            .map_err(|source| address.io("binding", source))?;
        let mut unix_path = None;
        if let EnclaveAddress::Unix(path) = address {
            unix_path = Some(path.clone());
            restrict_to_owner(path).map_err(|source| address.io("restricting", source))?;
        }
        let listener = Listener {
            address: bound_address(&socket, address)?,
            socket,
            unix_path,
        };
        listener
            .socket
            .listen(LISTEN_BACKLOG)
            .map_err(|source| address.io("listening", source))?;
        listener
            .socket
            .set_nonblocking(true)
            .map_err(|source| address.io("making the listener non-blocking", source))?;
        Ok(listener)
    }

    /// The address actually bound (a TCP port 0 resolved).
    pub(crate) fn address(&self) -> &EnclaveAddress {
        &self.address
    }

    /// Accepts one connection, or `WouldBlock` if none is waiting. The connection blocks.
    pub(crate) fn accept(&self) -> std::io::Result<Socket> {
        let (socket, _) = self.socket.accept()?;
        socket.set_nonblocking(false)?;
        if let EnclaveAddress::Tcp(_) = self.address {
            socket.set_tcp_nodelay(true)?;
        }
        Ok(socket)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The bound address: for TCP, with the port the OS chose.
fn bound_address(socket: &Socket, address: &EnclaveAddress) -> Result<EnclaveAddress, DoorError> {
    match address {
        EnclaveAddress::Tcp(_) => {
            let local = socket
                .local_addr()
                .map_err(|source| address.io("reading the bound address", source))?;
            local
                .as_socket()
                .map(EnclaveAddress::Tcp)
                .ok_or_else(|| DoorError::Address(format!("{address}: bound to a non-IP address")))
        }
        other => Ok(other.clone()),
    }
}

fn remove_stale_socket(path: &Path, address: &EnclaveAddress) -> Result<(), DoorError> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !metadata.file_type().is_socket() {
        return Err(DoorError::Address(format!(
            "{address}: {} exists and is not a socket",
            path.display()
        )));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(DoorError::Address(format!(
            "{address}: another process already listens there"
        ))),
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path)
                .map_err(|source| address.io("removing a stale socket", source))
        }
        Err(source) => Err(address.io("checking an existing socket", source)),
    }
}

fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_parses_and_prints_back() {
        for text in [
            "unix:/run/cloister/enclave.sock",
            "unix:relative.sock",
            "tcp:127.0.0.1:7500",
            "tcp:[::1]:7500",
            "vsock:16:5000",
            "vsock:any:5000",
        ] {
            let address: EnclaveAddress = text.parse().unwrap();
            assert_eq!(address.to_string(), text);
        }
        assert_eq!(
            "vsock:4294967295:1".parse::<EnclaveAddress>().unwrap(),
            EnclaveAddress::Vsock {
                cid: VSOCK_CID_ANY,
                port: 1
            }
        );
    }

    #[test]
    fn malformed_addresses_are_refused_with_what_was_expected() {
        let long_path = format!("unix:/{}", "p".repeat(UNIX_PATH_BYTES_MAX));
        for (text, says) in [
            ("/run/enclave.sock", "expected unix:PATH"),
            ("unix:", "path is empty"),
            (long_path.as_str(), "at most 107 bytes"),
            ("tcp:localhost:7500", "expected tcp:IP:PORT"),
            ("tcp:127.0.0.1", "expected tcp:IP:PORT"),
            ("vsock:16", "expected vsock:CID:PORT"),
            ("vsock:16:port", "expected vsock:CID:PORT"),
            ("vsock:-1:5000", "expected vsock:CID:PORT"),
            ("vsock:16:4294967296", "expected vsock:CID:PORT"),
            ("http:127.0.0.1:80", "unknown scheme"),
        ] {
            let error = text.parse::<EnclaveAddress>().unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn a_stale_unix_socket_is_replaced_and_a_live_one_is_not() {
        let dir = crate::door::tests::TempDir::new("stale");
        let path = dir.path().join("enclave.sock");
        let address = EnclaveAddress::Unix(path.clone());
        let first = Listener::bind(&address).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "owner-only socket file");
        let refused = Listener::bind(&address).err().unwrap();
        assert!(refused.to_string().contains("already listens"), "{refused}");
        // A process that dies leaves its file behind: close the socket without the cleanup.
        let mut first = first;
        first.unix_path = None;
        drop(first);
        assert!(path.exists());
        let second = Listener::bind(&address).unwrap();
        drop(second);
        assert!(!path.exists(), "the listener removes its file");

        std::fs::write(&path, b"not a socket").unwrap();
        let refused = Listener::bind(&address).err().unwrap();
        assert!(refused.to_string().contains("not a socket"), "{refused}");
    }

    #[test]
    fn a_tcp_listener_reports_the_port_the_os_chose() {
        let address: EnclaveAddress = "tcp:127.0.0.1:0".parse().unwrap();
        let listener = Listener::bind(&address).unwrap();
        let EnclaveAddress::Tcp(bound) = listener.address() else {
            panic!("not tcp: {}", listener.address());
        };
        assert_ne!(bound.port(), 0);
    }
}
