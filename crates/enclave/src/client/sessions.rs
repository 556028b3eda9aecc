//! The bounded table of client sessions.

use std::collections::BTreeMap;

use super::session::{ExpectHandshake, Session};
use crate::Error;

/// Default bound on open client sessions.
pub const CLIENT_SESSIONS_MAX: u32 = 65_536;

/// Open sessions by client id. Ids are never reused within one core's life.
pub struct ClientSessions {
    sessions: BTreeMap<u64, Session>,
    client_id_next: u64,
    sessions_max: usize,
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

    /// Add a session waiting for its handshake. Refused when the table is full.
    pub fn open(&mut self, state: ExpectHandshake) -> Result<u64, Error> {
        if self.sessions.len() >= self.sessions_max {
            return Err(Error::ResourceExhausted(format!(
                "{} client sessions open, the most allowed",
                self.sessions.len()
            )));
        }
        let client_id = self.client_id_next;
        self.client_id_next += 1;
        self.sessions
            .insert(client_id, Session::ExpectHandshake(state));
        Ok(client_id)
    }

    /// Take a session out to advance it (put it back with [`Self::restore`]).
    pub fn take(&mut self, client_id: u64) -> Result<Session, Error> {
        self.sessions
            .remove(&client_id)
            .ok_or_else(|| Error::NotFound(format!("no client session {client_id}")))
    }

    /// Put back a session taken with [`Self::take`].
    pub fn restore(&mut self, client_id: u64, session: Session) {
        self.sessions.insert(client_id, session);
    }

    /// The session, if open.
    pub fn get_mut(&mut self, client_id: u64) -> Option<&mut Session> {
        self.sessions.get_mut(&client_id)
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
