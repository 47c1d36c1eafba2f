//! The v2 operations' types: ranges, comparisons and transactions, with their
//! binary encoding inside a [`super::Command`].

use crate::codec::{put_bytes_u32_len, put_u64, Reader};

/// Most operations (comparisons plus both branches) one transaction may hold.
pub const TXN_OPS_MAX: usize = 128;

/// One key as a range returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value (empty when the range asked for keys only).
    pub value: String,
    /// The revision of the change that created the key (since it last did not exist).
    pub create_revision: u64,
    /// The revision of the key's last change.
    pub mod_revision: u64,
    /// Number of changes since the key was created (1 after its creation).
    pub version: u64,
    /// The lease the key is attached to (0: none).
    pub lease: u64,
}

/// Which keys a range or a delete covers: `key` alone when `range_end` is empty,
/// every key `>= key` when `range_end` is `[0]`, else `[key, range_end)` in byte
/// order. (etcd's convention: a prefix `p` is `[p, p with its last byte + 1)`.)
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyRange {
    /// The first key (the only one when `range_end` is empty).
    pub key: String,
    /// The end, exclusive, as bytes (need not be UTF-8).
    pub range_end: Vec<u8>,
}

impl KeyRange {
    /// Exactly `key`.
    pub fn single(key: impl Into<String>) -> KeyRange {
        KeyRange { key: key.into(), range_end: Vec::new() }
    }

    /// Every key starting with `prefix` (every key when it is empty).
    pub fn prefix(prefix: impl Into<String>) -> KeyRange {
        let key = prefix.into();
        let range_end = prefix_end(key.as_bytes());
        KeyRange { key, range_end }
    }

    /// Whether this names one key.
    pub fn is_single(&self) -> bool {
        self.range_end.is_empty()
    }

    /// Whether `key` (already `>= self.key`) is before the end.
    pub(crate) fn before_end(&self, key: &str) -> bool {
        if self.range_end == [0] {
            return true;
        }
        key.as_bytes() < self.range_end.as_slice()
    }
}

/// The range end covering every key with `prefix`: the prefix with its last
/// byte below 0xff incremented (and what follows dropped); `[0]` (no end) when
/// there is none.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A range read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RangeRequest {
    /// The keys.
    pub range: KeyRange,
    /// At most this many keys (0: no limit).
    pub limit: u64,
    /// Leave values out.
    pub keys_only: bool,
    /// Only count: return no keys.
    pub count_only: bool,
    /// The revision to read at: 0 for the current one, or a past one inside the
    /// history window (older: [`super::KvError::Compacted`]; newer than the
    /// current: [`super::KvError::FutureRevision`]). A range inside a
    /// transaction reads at the current revision only.
    pub revision: u64,
}

/// What a range read returns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RangeResult {
    /// The keys, in order (at most `limit`).
    pub kvs: Vec<KeyValue>,
    /// More keys are in the range than returned.
    pub more: bool,
    /// How many keys are in the range.
    pub count: u64,
    /// The store's revision the range was read at.
    pub revision: u64,
}

/// What a comparison looks at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CompareTarget {
    /// The value (a missing key fails every value comparison).
    Value(String),
    /// The version (0 for a missing key).
    Version(u64),
    /// The create revision (0 for a missing key).
    CreateRevision(u64),
    /// The mod revision (0 for a missing key).
    ModRevision(u64),
}

/// How a comparison compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// Equal.
    Equal,
    /// Not equal.
    NotEqual,
    /// The key's is greater.
    Greater,
    /// The key's is less.
    Less,
}

/// One comparison of a transaction: `<key's target> <op> <target's operand>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Compare {
    /// The key compared.
    pub key: String,
    /// What is compared, and with what.
    pub target: CompareTarget,
    /// How.
    pub op: CompareOp,
}

/// One operation in a transaction branch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TxnOp {
    /// Set `key` to `value`, attached to lease `lease` (0: none; a put
    /// without a lease detaches the key, as [`super::Op::Put`]).
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// The lease (0: none). A branch that puts to a lease not held fails
        /// as a whole with [`super::KvError::LeaseNotFound`], changing nothing.
        lease: u64,
    },
    /// Delete the keys of a range (none found is not an error).
    Delete(KeyRange),
    /// Read a range (seeing the branch's earlier writes).
    Range(RangeRequest),
}

/// What one transaction operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OpResponse {
    /// A put happened.
    Put,
    /// This many keys were deleted.
    Delete(u64),
    /// A range's result.
    Range(RangeResult),
}

/// A transaction: if every comparison holds, `success` runs, else `failure`;
/// atomically, at one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Txn {
    /// The comparisons (all must hold; none: they hold).
    pub compare: Vec<Compare>,
    /// Run when they hold.
    pub success: Vec<TxnOp>,
    /// Run when one does not.
    pub failure: Vec<TxnOp>,
}

impl TxnOp {
    /// A put of `value` under `key` without a lease.
    pub fn put(key: impl Into<String>, value: impl Into<String>) -> TxnOp {
        TxnOp::Put { key: key.into(), value: value.into(), lease: 0 }
    }
}

impl Txn {
    /// Compare-and-swap: set `key` to `value` if its value is `expected`
    /// (`None`: if it does not exist).
    pub fn cas(key: impl Into<String>, expected: Option<&str>, value: impl Into<String>) -> Txn {
        let key = key.into();
        let compare = match expected {
            Some(expected) => {
                Compare { key: key.clone(), target: CompareTarget::Value(expected.to_owned()), op: CompareOp::Equal }
            }
            None => Compare { key: key.clone(), target: CompareTarget::Version(0), op: CompareOp::Equal },
        };
        Txn { compare: vec![compare], success: vec![TxnOp::put(key, value)], failure: Vec::new() }
    }

    /// Delete `key` if its value is `expected`.
    pub fn delete_if(key: impl Into<String>, expected: &str) -> Txn {
        let key = key.into();
        Txn {
            compare: vec![Compare {
                key: key.clone(),
                target: CompareTarget::Value(expected.to_owned()),
                op: CompareOp::Equal,
            }],
            success: vec![TxnOp::Delete(KeyRange::single(key))],
            failure: Vec::new(),
        }
    }

    /// Number of comparisons and operations.
    pub fn len(&self) -> usize {
        self.compare.len() + self.success.len() + self.failure.len()
    }

    /// Whether it has no comparison and no operation.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub(super) fn encode_range(out: &mut Vec<u8>, range: &KeyRange) {
    put_bytes_u32_len(out, range.key.as_bytes());
    put_bytes_u32_len(out, &range.range_end);
}

pub(super) fn decode_range(reader: &mut Reader<'_>) -> Result<KeyRange, &'static str> {
    Ok(KeyRange { key: reader.string_u32_len()?, range_end: reader.bytes_u32_len()?.to_vec() })
}

fn encode_range_request(out: &mut Vec<u8>, request: &RangeRequest) {
    encode_range(out, &request.range);
    put_u64(out, request.limit);
    out.push(u8::from(request.keys_only));
    out.push(u8::from(request.count_only));
    put_u64(out, request.revision);
}

fn decode_range_request(reader: &mut Reader<'_>) -> Result<RangeRequest, &'static str> {
    Ok(RangeRequest {
        range: decode_range(reader)?,
        limit: reader.u64()?,
        keys_only: reader.bool()?,
        count_only: reader.bool()?,
        revision: reader.u64()?,
    })
}

fn encode_ops(out: &mut Vec<u8>, ops: &[TxnOp]) {
    put_u64(out, ops.len() as u64);
    for op in ops {
        match op {
            // Tag 1 is a put without a lease (as before leases in
            // transactions, so old logs read the same); tag 4 one with.
            TxnOp::Put { key, value, lease: 0 } => {
                out.push(1);
                put_bytes_u32_len(out, key.as_bytes());
                put_bytes_u32_len(out, value.as_bytes());
            }
            TxnOp::Put { key, value, lease } => {
                out.push(4);
                put_bytes_u32_len(out, key.as_bytes());
                put_bytes_u32_len(out, value.as_bytes());
                put_u64(out, *lease);
            }
            TxnOp::Delete(range) => {
                out.push(2);
                encode_range(out, range);
            }
            TxnOp::Range(request) => {
                out.push(3);
                encode_range_request(out, request);
            }
        }
    }
}

fn decode_ops(reader: &mut Reader<'_>) -> Result<Vec<TxnOp>, &'static str> {
    let count = reader.u64()?;
    if count > TXN_OPS_MAX as u64 {
        return Err("too many transaction operations");
    }
    let mut ops = Vec::new();
    for _ in 0..count {
        ops.push(match reader.u8()? {
            1 => TxnOp::Put { key: reader.string_u32_len()?, value: reader.string_u32_len()?, lease: 0 },
            4 => {
                let (key, value) = (reader.string_u32_len()?, reader.string_u32_len()?);
                match reader.u64()? {
                    0 => return Err("a transaction put with lease 0 is encoded without one"),
                    lease => TxnOp::Put { key, value, lease },
                }
            }
            2 => TxnOp::Delete(decode_range(reader)?),
            3 => TxnOp::Range(decode_range_request(reader)?),
            _ => return Err("unknown transaction operation"),
        });
    }
    Ok(ops)
}

pub(super) fn encode_txn(out: &mut Vec<u8>, txn: &Txn) {
    put_u64(out, txn.compare.len() as u64);
    for compare in &txn.compare {
        put_bytes_u32_len(out, compare.key.as_bytes());
        out.push(match compare.op {
            CompareOp::Equal => 0,
            CompareOp::NotEqual => 1,
            CompareOp::Greater => 2,
            CompareOp::Less => 3,
        });
        match &compare.target {
            CompareTarget::Value(value) => {
                out.push(0);
                put_bytes_u32_len(out, value.as_bytes());
            }
            CompareTarget::Version(n) => {
                out.push(1);
                put_u64(out, *n);
            }
            CompareTarget::CreateRevision(n) => {
                out.push(2);
                put_u64(out, *n);
            }
            CompareTarget::ModRevision(n) => {
                out.push(3);
                put_u64(out, *n);
            }
        }
    }
    encode_ops(out, &txn.success);
    encode_ops(out, &txn.failure);
}

pub(super) fn decode_txn(reader: &mut Reader<'_>) -> Result<Txn, &'static str> {
    let count = reader.u64()?;
    if count > TXN_OPS_MAX as u64 {
        return Err("too many comparisons");
    }
    let mut compare = Vec::new();
    for _ in 0..count {
        let key = reader.string_u32_len()?;
        let op = match reader.u8()? {
            0 => CompareOp::Equal,
            1 => CompareOp::NotEqual,
            2 => CompareOp::Greater,
            3 => CompareOp::Less,
            _ => return Err("unknown comparison"),
        };
        let target = match reader.u8()? {
            0 => CompareTarget::Value(reader.string_u32_len()?),
            1 => CompareTarget::Version(reader.u64()?),
            2 => CompareTarget::CreateRevision(reader.u64()?),
            3 => CompareTarget::ModRevision(reader.u64()?),
            _ => return Err("unknown comparison target"),
        };
        compare.push(Compare { key, target, op });
    }
    let success = decode_ops(reader)?;
    let failure = decode_ops(reader)?;
    Ok(Txn { compare, success, failure })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_follow_etcd() {
        assert_eq!(prefix_end(b"foo"), b"fop".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
        assert!(KeyRange::prefix("fo").before_end("foz"));
        assert!(!KeyRange::prefix("fo").before_end("fp"));
    }
}
