//! A replica removed from its group answers the requests still waiting for their entries as
//! undecided: the group may commit those entries after this replica stopped hearing of it,
//! so UNAVAILABLE ("nothing changed") would be a lie a retrying client pays for. Found by
//! the simulator (`cloister sim --seed 26 --replicas 5`, crates/sim/regression-seeds.txt).

use cloister_proto::enclave::{ErrorCode, host_to_enclave_response::Inner as Answer};

use super::harness::Harness;
use crate::core::{Origin, Pending};

#[test]
fn waiting_requests_are_answered_as_undecided_not_unavailable() {
    let mut harness = Harness::with_group(0x71);
    let client = harness.connect([0x71; 16]);
    // A client's write waits for the entry at index 50 (as after forwarding it).
    harness.enclave.pending.insert(
        50,
        Pending {
            term: 1,
            origin: Origin::Client {
                client_id: client.client_id,
                request_id: 7,
            },
        },
    );
    harness.enclave.leave_group();
    let answers = harness.answers();
    let Some((_, Answer::Error(error))) = answers.iter().find(|(id, _)| *id == 7) else {
        panic!("no answer to the waiting request: {answers:?}")
    };
    assert_eq!(error.code, ErrorCode::Internal as i32, "{error:?}");
    assert!(error.message.contains("may or may not apply"), "{error:?}");
    assert!(harness.enclave.pending.is_empty());
    assert!(harness.enclave.group.is_none(), "the replica left");
}
