//! Go's BestSpeed match finder (`deflatefast.go`): a Snappy-style LZ77 pass over one block with
//! a 14-bit hash table of 4-byte values, which may reach back into the previous block.
use super::token::{
    BASE_MATCH_LENGTH, BASE_MATCH_OFFSET, MAX_MATCH_LENGTH, MAX_MATCH_OFFSET, MAX_STORE_BLOCK_SIZE, Token,
    literal_token, match_token,
};

const TABLE_BITS: u32 = 14;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
const TABLE_MASK: u32 = (TABLE_SIZE - 1) as u32;
const TABLE_SHIFT: u32 = 32 - TABLE_BITS;
/// Positions are kept as `i32` as in Go; before they could overflow, the table is shifted down.
pub(super) const BUFFER_RESET: i32 = i32::MAX - (MAX_STORE_BLOCK_SIZE as i32) * 2;
/// Snappy's margin: no match search in the last 15 bytes of a block.
const INPUT_MARGIN: usize = 16 - 1;
const MIN_NON_LITERAL_BLOCK_SIZE: usize = 1 + 1 + INPUT_MARGIN;

#[derive(Clone, Copy, Default)]
struct Entry {
    /// The four bytes found at `offset`, so a candidate is checked without reading history.
    val: u32,
    offset: i32,
}

pub(super) struct DeflateFast {
    table: Box<[Entry]>,
    /// The previous block, empty when unknown.
    prev: Vec<u8>,
    /// Position of the current block's first byte in the running offset space.
    cur: i32,
}

fn load32(b: &[u8], i: i32) -> u32 {
    let i = i as usize;
    u32::from_le_bytes(b[i..i + 4].try_into().expect("four bytes"))
}

fn load64(b: &[u8], i: i32) -> u64 {
    let i = i as usize;
    u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"))
}

fn hash(u: u32) -> u32 {
    u.wrapping_mul(0x1e35a7bd) >> TABLE_SHIFT
}

fn emit_literal(dst: &mut Vec<Token>, lit: &[u8]) {
    dst.extend(lit.iter().map(|&b| literal_token(b)));
}

/// Length of the common prefix of `a` and `b` (at most the shorter length).
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().expect("eight bytes"))
            ^ u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"));
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

impl DeflateFast {
    pub fn new() -> Self {
        DeflateFast {
            table: vec![Entry::default(); TABLE_SIZE].into_boxed_slice(),
            prev: Vec::with_capacity(MAX_STORE_BLOCK_SIZE),
            cur: MAX_STORE_BLOCK_SIZE as i32,
        }
    }

    /// Start the offset space near the point where Go shifts the table, so that a test can
    /// cross it without compressing 2 GiB first.
    #[cfg(test)]
    pub fn set_cur_for_test(&mut self, cur: i32) {
        self.cur = cur;
    }

    /// Append the tokens of `src` (one block, at most 64 KiB) to `dst`.
    pub fn encode(&mut self, dst: &mut Vec<Token>, src: &[u8]) {
        if self.cur >= BUFFER_RESET {
            self.shift_offsets();
        }
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            self.cur += MAX_STORE_BLOCK_SIZE as i32;
            self.prev.clear();
            emit_literal(dst, src);
            return;
        }

        let s_limit = (src.len() - INPUT_MARGIN) as i32;
        let mut next_emit: i32 = 0;
        let mut s: i32 = 0;
        let mut cv = load32(src, s);
        let mut next_hash = hash(cv);
        let mut candidate: Entry;

        'blocks: loop {
            // Heuristic match skipping: after 32 misses look at every other byte, after 32
            // more every third, and so on; a match resets the pace.
            let mut skip: i32 = 32;
            let mut next_s = s;
            loop {
                s = next_s;
                let step = skip >> 5;
                next_s = s + step;
                skip += step;
                if next_s > s_limit {
                    break 'blocks;
                }
                let slot = (next_hash & TABLE_MASK) as usize;
                candidate = self.table[slot];
                let now = load32(src, next_s);
                self.table[slot] = Entry {
                    offset: s + self.cur,
                    val: cv,
                };
                next_hash = hash(now);
                let offset = s - (candidate.offset - self.cur);
                if offset > MAX_MATCH_OFFSET || cv != candidate.val {
                    cv = now;
                    continue;
                }
                break;
            }

            emit_literal(dst, &src[next_emit as usize..s as usize]);

            // Emit matches back to back for as long as the byte after one match starts another.
            loop {
                s += 4;
                let t = candidate.offset - self.cur + 4;
                let l = self.match_len(s, t, src);
                dst.push(match_token(
                    (l + 4 - BASE_MATCH_LENGTH) as u32,
                    (s - t - BASE_MATCH_OFFSET) as u32,
                ));
                s += l;
                next_emit = s;
                if s >= s_limit {
                    break 'blocks;
                }
                // Index s-1 and s (one 8-byte load as in Go), then try s as the next match.
                let mut x = load64(src, s - 1);
                let prev_hash = hash(x as u32);
                self.table[(prev_hash & TABLE_MASK) as usize] = Entry {
                    offset: self.cur + s - 1,
                    val: x as u32,
                };
                x >>= 8;
                let curr_hash = hash(x as u32);
                let slot = (curr_hash & TABLE_MASK) as usize;
                candidate = self.table[slot];
                self.table[slot] = Entry {
                    offset: self.cur + s,
                    val: x as u32,
                };
                let offset = s - (candidate.offset - self.cur);
                if offset > MAX_MATCH_OFFSET || x as u32 != candidate.val {
                    cv = (x >> 8) as u32;
                    next_hash = hash(cv);
                    s += 1;
                    break;
                }
            }
        }

        if (next_emit as usize) < src.len() {
            emit_literal(dst, &src[next_emit as usize..]);
        }
        self.cur += src.len() as i32;
        self.prev.clear();
        self.prev.extend_from_slice(src);
    }

    /// Match length between `src[s..]` and `src[t..]`, where a negative `t` starts in the
    /// previous block. The four bytes before both are known to match.
    fn match_len(&self, s: i32, t: i32, src: &[u8]) -> i32 {
        let s = s as usize;
        let s1 = (s + MAX_MATCH_LENGTH - 4).min(src.len());
        if t >= 0 {
            let t = t as usize;
            return common_prefix(&src[s..s1], &src[t..]) as i32;
        }
        let tp = self.prev.len() as i32 + t;
        if tp < 0 {
            return 0;
        }
        let a = &src[s..s1];
        let b = &self.prev[tp as usize..];
        let n = common_prefix(a, b);
        if n < a.len().min(b.len()) {
            return n as i32;
        }
        if s + n == s1 {
            return n as i32;
        }
        // The match ran to the end of the previous block: continue at the start of this one.
        let a = &src[s + n..s1];
        (common_prefix(a, &src[..a.len()]) + n) as i32
    }

    /// Forget the history so that nothing matches across a gap (Go's `reset`).
    pub fn reset(&mut self) {
        self.prev.clear();
        // Every table entry falls out of range.
        self.cur += MAX_MATCH_OFFSET;
        if self.cur >= BUFFER_RESET {
            self.shift_offsets();
        }
    }

    /// Move every offset down so that `cur` restarts just past the window, keeping the
    /// distances of entries still in reach (Go issues 18636 and 34121).
    fn shift_offsets(&mut self) {
        if self.prev.is_empty() {
            self.table.fill(Entry::default());
            self.cur = MAX_MATCH_OFFSET + 1;
            return;
        }
        for entry in self.table.iter_mut() {
            entry.offset = (entry.offset - self.cur + MAX_MATCH_OFFSET + 1).max(0);
        }
        self.cur = MAX_MATCH_OFFSET + 1;
    }
}
