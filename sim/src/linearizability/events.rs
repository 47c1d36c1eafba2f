//! The search's list of call and return events in time order, from which
//! operations are lifted as they are linearized and restored on backtracking.

use super::model::KeyOp;

/// No node (the end of a list, or an unknown outcome's missing return).
pub(super) const NIL: u32 = u32::MAX;
/// The list head: the node before the first event.
pub(super) const HEAD: u32 = 0;

/// The doubly linked list of call/return events, in time order, with O(1)
/// removal and reinsertion of an operation's events (dancing links).
pub(super) struct Events {
    /// The node before each node (`NIL` for `HEAD`).
    prev: Vec<u32>,
    /// The node after each node (`NIL` for the last).
    pub(super) next: Vec<u32>,
    /// Local op index of each node (unused for `HEAD`).
    pub(super) op: Vec<u32>,
    /// Whether each node is a return (else a call).
    pub(super) is_return: Vec<bool>,
    /// Return node of each op's call node, `NIL` for unknown outcomes.
    ret_of_call: Vec<u32>,
}

impl Events {
    pub(super) fn new(ops: &[KeyOp]) -> Self {
        // (time, call before return at equal times, op) => equal timestamps
        // are concurrent.
        let mut evs: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * ops.len());
        for (i, o) in ops.iter().enumerate() {
            evs.push((o.invoke, false, i as u32));
            if let Some(c) = o.complete {
                evs.push((c, true, i as u32));
            }
        }
        evs.sort_unstable();
        let n = evs.len() + 1;
        let mut e = Events {
            prev: (0..n as u32).map(|i| i.wrapping_sub(1)).collect(),
            next: (1..=n as u32).map(|i| if i == n as u32 { NIL } else { i }).collect(),
            op: vec![NIL; n],
            is_return: vec![false; n],
            ret_of_call: vec![NIL; n],
        };
        e.prev[0] = NIL;
        let mut call_node = vec![NIL; ops.len()];
        for (k, &(_, ret, op)) in evs.iter().enumerate() {
            let node = k + 1;
            e.op[node] = op;
            e.is_return[node] = ret;
            if ret {
                e.ret_of_call[call_node[op as usize] as usize] = node as u32;
            } else {
                call_node[op as usize] = node as u32;
            }
        }
        e
    }

    fn unlink(&mut self, n: u32) {
        let (p, x) = (self.prev[n as usize], self.next[n as usize]);
        self.next[p as usize] = x;
        if x != NIL {
            self.prev[x as usize] = p;
        }
    }

    fn relink(&mut self, n: u32) {
        let (p, x) = (self.prev[n as usize], self.next[n as usize]);
        self.next[p as usize] = n;
        if x != NIL {
            self.prev[x as usize] = n;
        }
    }

    /// Removes a call node and its return node.
    pub(super) fn lift(&mut self, call: u32) {
        self.unlink(call);
        let r = self.ret_of_call[call as usize];
        if r != NIL {
            self.unlink(r);
        }
    }

    /// Undoes the matching [`Events::lift`] (lifts are undone in LIFO order).
    pub(super) fn unlift(&mut self, call: u32) {
        let r = self.ret_of_call[call as usize];
        if r != NIL {
            self.relink(r);
        }
        self.relink(call);
    }
}
