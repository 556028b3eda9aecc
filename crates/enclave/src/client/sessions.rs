//! The bounded table of client sessions.

use std::collections::BTreeMap;

use super::session::{ExpectHandshake, Session};
use crate::Error;

/// Default bound on open client sessions.
pub const CLIENT_SESSIONS_MAX: u32 = 65_536;

/// A session with no frame for this long (by core time) is closed on the next tick. Hosts
/// close idle sockets much sooner (30 s by default) and tell the core; this catches the
/// sessions of a host that went away without saying so, such as a crashed host whose enclave
/// runs in another process and lives on, so that they cannot fill the table for good.
pub const CLIENT_SESSION_IDLE_SECS_MAX: u64 = 15 * 60;

/// Open sessions by client id. Ids are never reused within one core's life.
pub struct ClientSessions {
    sessions: BTreeMap<u64, Entry>,
    client_id_next: u64,
    sessions_max: usize,
}

struct Entry {
    session: Session,
    /// Core time of the session's last frame.
    active_unix_secs: u64,
}

impl ClientSessions {
    /// An empty table holding at most `sessions_max` sessions.
    pub fn new(sessions_max: u32) -> Self {
        Self {
            sessions: BTreeMap::new(),
            client_id_next: 1,
            sessions_max: sessions_max as usize,
        }
    }

    /// Change the bound; open sessions beyond it stay until they close.
    pub fn set_sessions_max(&mut self, sessions_max: u32) {
        self.sessions_max = sessions_max as usize;
    }

    /// Add a session waiting for its handshake at core time `now_unix_secs`. Refused when
    /// the table is full.
    pub fn open(&mut self, state: ExpectHandshake, now_unix_secs: u64) -> Result<u64, Error> {
        if self.sessions.len() >= self.sessions_max {
            return Err(Error::ResourceExhausted(format!(
                "{} client sessions open, the most allowed",
                self.sessions.len()
            )));
        }
        let client_id = self.client_id_next;
        self.client_id_next += 1;
        let entry = Entry {
            session: Session::ExpectHandshake(state),
            active_unix_secs: now_unix_secs,
        };
        self.sessions.insert(client_id, entry);
        Ok(client_id)
    }

    /// Take a session out to advance it (put it back with [`Self::restore`]).
    pub fn take(&mut self, client_id: u64) -> Result<Session, Error> {
        self.sessions
            .remove(&client_id)
            .map(|entry| entry.session)
            .ok_or_else(|| Error::NotFound(format!("no client session {client_id}")))
    }

    /// Put back a session taken with [`Self::take`], active at core time `now_unix_secs`.
    pub fn restore(&mut self, client_id: u64, session: Session, now_unix_secs: u64) {
        let entry = Entry {
            session,
            active_unix_secs: now_unix_secs,
        };
        self.sessions.insert(client_id, entry);
    }

    /// The session, if open.
    pub fn get_mut(&mut self, client_id: u64) -> Option<&mut Session> {
        self.sessions
            .get_mut(&client_id)
            .map(|entry| &mut entry.session)
    }

    /// Close every session idle for more than [`CLIENT_SESSION_IDLE_SECS_MAX`] at core time
    /// `now_unix_secs`; returns how many closed.
    pub fn close_idle(&mut self, now_unix_secs: u64) -> usize {
        let before = self.sessions.len();
        self.sessions.retain(|_, entry| {
            now_unix_secs.saturating_sub(entry.active_unix_secs) <= CLIENT_SESSION_IDLE_SECS_MAX
        });
        before - self.sessions.len()
    }

    /// Close a session. Returns whether it was open.
    pub fn close(&mut self, client_id: u64) -> bool {
        self.sessions.remove(&client_id).is_some()
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }
}
