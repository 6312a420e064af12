//! Length-limited canonical Huffman codes, built as Go's `compress/flate` builds them.
//!
//! Several optimal codes exist for most histograms; to produce Go's bytes the same one must be
//! chosen. Go sorts symbols by (frequency, symbol), counts code lengths per level with a
//! package-merge variant (`bitCounts`), and hands the shortest codes to the most frequent
//! symbols, each length's symbols in symbol order. Both sort orders are total, so any sort
//! algorithm gives Go's result.

/// A code as written: bits already reversed for LSB-first output, and its length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Code {
    pub code: u16,
    pub len: u16,
}

#[derive(Clone, Copy, Debug, Default)]
struct Node {
    literal: u16,
    freq: i32,
}

/// Deepest level the builder can be asked for, plus room for the sentinel level above it.
const MAX_BITS_LIMIT: usize = 16;

#[derive(Clone, Copy, Default)]
struct Level {
    last_freq: i32,
    next_char_freq: i32,
    next_pair_freq: i32,
    needed: i32,
}

pub(super) struct Encoder {
    pub codes: Vec<Code>,
    // Reused between blocks so that building a code allocates nothing.
    nodes: Vec<Node>,
    bit_count: [i32; 17],
}

impl Encoder {
    pub fn new(size: usize) -> Self {
        Encoder {
            codes: vec![Code::default(); size],
            nodes: vec![Node::default(); super::token::MAX_NUM_LIT + 1],
            bit_count: [0; 17],
        }
    }

    /// Bits needed to write symbols with these frequencies in this code.
    pub fn bit_length(&self, freq: &[i32]) -> usize {
        freq.iter()
            .zip(&self.codes)
            .map(|(&f, c)| f as usize * c.len as usize)
            .sum()
    }

    /// Build the code for `freq` with no code longer than `max_bits`. Symbols of frequency 0
    /// get length 0 (their code bits are left as they were: Go never reads them).
    pub fn generate(&mut self, freq: &[i32], max_bits: i32) {
        let mut count = 0;
        for (i, &f) in freq.iter().enumerate() {
            if f != 0 {
                self.nodes[count] = Node {
                    literal: i as u16,
                    freq: f,
                };
                count += 1;
            } else {
                self.codes[i].len = 0;
            }
        }
        if count <= 2 {
            // Go's special case: one bit each, in symbol order, no reversal needed.
            for i in 0..count {
                let literal = self.nodes[i].literal as usize;
                self.codes[literal] = Code {
                    code: i as u16,
                    len: 1,
                };
            }
            return;
        }
        self.nodes[..count].sort_unstable_by(|a, b| a.freq.cmp(&b.freq).then(a.literal.cmp(&b.literal)));
        let levels = self.bit_counts(count, max_bits);
        self.assign(levels, count);
    }

    /// How many symbols get each code length (index = length), for `n >= 3` symbols sorted by
    /// frequency in `nodes[..n]`. Returns the number of entries of `bit_count` in use.
    fn bit_counts(&mut self, n: usize, max_bits: i32) -> usize {
        assert!((max_bits as usize) < MAX_BITS_LIMIT, "max_bits too large");
        let list = &mut self.nodes;
        let n_i = n as i32;
        // A sentinel past the last leaf so that "next leaf" never runs off the end.
        list[n] = Node {
            literal: u16::MAX,
            freq: i32::MAX,
        };
        let max_bits = max_bits.min(n_i - 1) as usize;

        let mut levels = [Level::default(); MAX_BITS_LIMIT + 1];
        let mut leaf_counts = [[0i32; MAX_BITS_LIMIT + 1]; MAX_BITS_LIMIT + 1];
        for level in 1..=max_bits {
            levels[level] = Level {
                last_freq: list[1].freq,
                next_char_freq: list[2].freq,
                next_pair_freq: list[0].freq.wrapping_add(list[1].freq),
                needed: 0,
            };
            leaf_counts[level][level] = 2;
            if level == 1 {
                levels[level].next_pair_freq = i32::MAX;
            }
        }
        // The deepest level needs 2n-2 items; the first two leaves are already counted.
        levels[max_bits].needed = 2 * n_i - 4;

        let mut level = max_bits;
        loop {
            if levels[level].next_pair_freq == i32::MAX && levels[level].next_char_freq == i32::MAX {
                // Out of leaves and pairs: this level is done for good.
                levels[level].needed = 0;
                levels[level + 1].next_pair_freq = i32::MAX;
                level += 1;
                continue;
            }
            let prev_freq = levels[level].last_freq;
            if levels[level].next_char_freq < levels[level].next_pair_freq {
                let next = leaf_counts[level][level] + 1;
                levels[level].last_freq = levels[level].next_char_freq;
                leaf_counts[level][level] = next;
                levels[level].next_char_freq = list[next as usize].freq;
            } else {
                levels[level].last_freq = levels[level].next_pair_freq;
                let (below, here) = leaf_counts.split_at_mut(level);
                here[0][..level].copy_from_slice(&below[level - 1][..level]);
                levels[level - 1].needed = 2;
            }
            levels[level].needed -= 1;
            if levels[level].needed == 0 {
                if level == max_bits {
                    break;
                }
                levels[level + 1].next_pair_freq = prev_freq.wrapping_add(levels[level].last_freq);
                level += 1;
            } else {
                while levels[level - 1].needed > 0 {
                    level -= 1;
                }
            }
        }
        debug_assert_eq!(leaf_counts[max_bits][max_bits], n_i);

        let counts = &leaf_counts[max_bits];
        // The deepest level's leaves are the 1-bit codes, the next level up the 2-bit ones...
        for (bits, level) in (1..).zip((1..=max_bits).rev()) {
            self.bit_count[bits] = counts[level] - counts[level - 1];
        }
        max_bits + 1
    }

    /// Canonical codes: the most frequent symbols (end of the sorted list) get the shortest.
    fn assign(&mut self, used: usize, count: usize) {
        let mut code: u16 = 0;
        let mut end = count;
        for n in 0..used {
            let bits = self.bit_count[n] as usize;
            code = code.wrapping_shl(1);
            if n == 0 || bits == 0 {
                continue;
            }
            let chunk = &mut self.nodes[end - bits..end];
            chunk.sort_unstable_by_key(|node| node.literal);
            for node in chunk.iter() {
                self.codes[node.literal as usize] = Code {
                    code: reverse_bits(code, n as u32),
                    len: n as u16,
                };
                code = code.wrapping_add(1);
            }
            end -= bits;
        }
    }
}

pub(super) fn reverse_bits(number: u16, len: u32) -> u16 {
    (number << (16 - len)).reverse_bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(freq: &[i32], max_bits: i32) -> Vec<u16> {
        let mut enc = Encoder::new(freq.len());
        enc.generate(freq, max_bits);
        enc.codes.iter().map(|c| c.len).collect()
    }

    #[test]
    fn lengths_are_optimal_and_limited() {
        // Classic example: frequencies 1,1,2,4,8 give lengths 4,4,3,2,1 without a limit.
        assert_eq!(lengths(&[1, 1, 2, 4, 8], 15), vec![4, 4, 3, 2, 1]);
        // With a 3-bit limit the deep leaves are flattened.
        let limited = lengths(&[1, 1, 2, 4, 8], 3);
        assert!(limited.iter().all(|&l| l <= 3), "{limited:?}");
        let kraft: f64 = limited.iter().map(|&l| 0.5f64.powi(l as i32)).sum();
        assert!((kraft - 1.0).abs() < 1e-9, "{limited:?}");
        // Zero-frequency symbols get no code; one or two symbols get one bit each.
        assert_eq!(lengths(&[0, 5, 0], 15), vec![0, 1, 0]);
        assert_eq!(lengths(&[3, 0, 7], 15), vec![1, 0, 1]);
    }

    #[test]
    fn codes_are_canonical_and_prefix_free() {
        let freq: Vec<i32> = (0..40).map(|i| (i * 7 % 13) + 1).collect();
        let mut enc = Encoder::new(freq.len());
        enc.generate(&freq, 7);
        let codes: Vec<(u16, u16)> = enc
            .codes
            .iter()
            .map(|c| (reverse_bits(c.code, c.len as u32), c.len))
            .collect();
        for (i, &(a, la)) in codes.iter().enumerate() {
            assert!(la <= 7);
            for &(b, lb) in &codes[i + 1..] {
                let (short, ls, long, ll) = if la <= lb { (a, la, b, lb) } else { (b, lb, a, la) };
                assert_ne!(long >> (ll - ls), short, "prefix clash");
            }
        }
    }
}
