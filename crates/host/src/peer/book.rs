//! The address book: where each peer (by enclave peer id) accepts connections.
//!
//! Entries come from three sources, ranked by how much they prove. A better or equal source
//! replaces an entry; a worse one only fills a gap:
//!
//! ```text
//!  Heard      a Hello's known_peers: someone else's word
//!  Announced  the peer's own Hello, on a connection it dialed to us
//!  Dialed     we dialed the address and that peer answered (or the operator said so)
//! ```
//!
//! None of this is trusted: a wrong address costs a failed dial, since every connection
//! starts with the remote's Hello naming its peer id.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::PeerId;

/// How much an address is worth (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// From another peer's `known_peers`.
    Heard,
    /// From the peer's own Hello.
    Announced,
    /// Dialed and answered by that peer, or given by the operator.
    Dialed,
}

/// What [`AddressBook::learn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// A new entry, or a changed address.
    Changed,
    /// Nothing changed (the same address, or a worse source).
    Unchanged,
    /// The book is at `addresses_max`.
    Full,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    addr: SocketAddr,
    source: Source,
}

/// Peer id → address, bounded.
#[derive(Debug)]
pub struct AddressBook {
    entries: BTreeMap<PeerId, Entry>,
    addresses_max: usize,
}

impl AddressBook {
    /// An empty book of at most `addresses_max` entries.
    pub fn new(addresses_max: usize) -> Self {
        AddressBook {
            entries: BTreeMap::new(),
            addresses_max,
        }
    }

    /// Records that `peer_id` is at `addr`, according to `source`.
    pub fn learn(&mut self, peer_id: PeerId, addr: SocketAddr, source: Source) -> Learned {
        if addr.ip().is_unspecified() || addr.port() == 0 {
            return Learned::Unchanged;
        }
        let full = self.entries.len() >= self.addresses_max;
        match self.entries.get_mut(&peer_id) {
            Some(entry) if source < entry.source || entry.addr == addr => {
                entry.source = entry.source.max(source);
                Learned::Unchanged
            }
            Some(entry) => {
                *entry = Entry { addr, source };
                Learned::Changed
            }
            None if full => Learned::Full,
            None => {
                self.entries.insert(peer_id, Entry { addr, source });
                Learned::Changed
            }
        }
    }

    /// Forgets `peer_id`'s address if it is still `addr` (another peer answered there).
    pub fn forget(&mut self, peer_id: PeerId, addr: SocketAddr) {
        if self.lookup(peer_id) == Some(addr) {
            self.entries.remove(&peer_id);
        }
    }

    /// Where `peer_id` accepts connections, if known.
    pub fn lookup(&self, peer_id: PeerId) -> Option<SocketAddr> {
        self.entries.get(&peer_id).map(|entry| entry.addr)
    }

    /// Up to `max` entries to tell another peer about, best sources first, leaving out
    /// `except` (the peer being told).
    pub fn share(&self, except: Option<PeerId>, max: usize) -> Vec<(PeerId, SocketAddr)> {
        let mut entries: Vec<_> = self
            .entries
            .iter()
            .filter(|(peer_id, _)| Some(**peer_id) != except)
            .collect();
        entries.sort_by_key(|(_, entry)| std::cmp::Reverse(entry.source));
        entries
            .into_iter()
            .take(max)
            .map(|(peer_id, entry)| (*peer_id, entry.addr))
            .collect()
    }

    /// Entries now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn better_sources_replace_and_worse_ones_only_fill_gaps() {
        let mut book = AddressBook::new(10);
        let peer = PeerId::from([1; 32]);
        assert_eq!(book.learn(peer, addr(1), Source::Heard), Learned::Changed);
        assert_eq!(
            book.learn(peer, addr(2), Source::Announced),
            Learned::Changed
        );
        assert_eq!(book.learn(peer, addr(3), Source::Heard), Learned::Unchanged);
        assert_eq!(book.lookup(peer), Some(addr(2)));
        assert_eq!(book.learn(peer, addr(4), Source::Dialed), Learned::Changed);
        assert_eq!(
            book.learn(peer, addr(5), Source::Announced),
            Learned::Unchanged
        );
        assert_eq!(book.lookup(peer), Some(addr(4)));
        assert_eq!(book.learn(peer, addr(6), Source::Dialed), Learned::Changed);
        assert_eq!(book.lookup(peer), Some(addr(6)));
    }

    #[test]
    fn useless_addresses_are_ignored_and_the_book_is_bounded() {
        let mut book = AddressBook::new(1);
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 7000));
        assert_eq!(
            book.learn(PeerId::from([1; 32]), unspecified, Source::Dialed),
            Learned::Unchanged
        );
        assert_eq!(
            book.learn(PeerId::from([1; 32]), addr(0), Source::Dialed),
            Learned::Unchanged
        );
        assert_eq!(
            book.learn(PeerId::from([1; 32]), addr(1), Source::Heard),
            Learned::Changed
        );
        assert_eq!(
            book.learn(PeerId::from([2; 32]), addr(2), Source::Dialed),
            Learned::Full
        );
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn forgetting_needs_the_same_address_and_sharing_skips_the_listener() {
        let mut book = AddressBook::new(10);
        let (one, two) = (PeerId::from([1; 32]), PeerId::from([2; 32]));
        book.learn(one, addr(1), Source::Heard);
        book.learn(two, addr(2), Source::Dialed);
        assert_eq!(book.share(Some(one), 10), vec![(two, addr(2))]);
        assert_eq!(
            book.share(None, 1),
            vec![(two, addr(2))],
            "best source first"
        );
        book.forget(one, addr(9));
        assert_eq!(book.lookup(one), Some(addr(1)));
        book.forget(one, addr(1));
        assert_eq!(book.lookup(one), None);
    }
}
