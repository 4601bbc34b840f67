use sluice_coordinator::GroupState;

use super::harness;

#[test]
fn single_member_forms_a_stable_group() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a"]);
    assert_eq!(generation, 1);
    let group = h.group("g").unwrap();
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.leader.as_deref(), Some(members[0].as_str()));
    assert_eq!(group.members[0].assignment.as_ref(), b"a");
}

#[test]
fn three_members_form_a_stable_group() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b", "c"]);
    assert_eq!(generation, 2);
    let group = h.group("g").unwrap();
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.members.len(), 3);
    for (member, client) in members.iter().zip(["a", "b", "c"]) {
        let m = group
            .members
            .iter()
            .find(|m| &m.member_id == member)
            .unwrap();
        assert_eq!(m.assignment.as_ref(), client.as_bytes());
    }
    assert!(h.outstanding.is_empty());
}
