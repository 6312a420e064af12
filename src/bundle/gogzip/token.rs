//! LZ77 tokens and the DEFLATE length/offset code tables, in Go's `compress/flate` encoding.
//!
//! A token is a `u32` exactly as Go packs it: literals are the byte value; matches carry
//! `1 << 30`, the length minus 3 in bits 22..30 and the distance minus 1 in bits 0..22. Keeping
//! Go's packing makes the frequency counts (and so the Huffman codes) line up one for one.

pub(super) type Token = u32;

const LENGTH_SHIFT: u32 = 22;
const OFFSET_MASK: u32 = (1 << LENGTH_SHIFT) - 1;
pub(super) const MATCH_TYPE: u32 = 1 << 30;

/// The smallest match length DEFLATE can express; lengths are stored relative to it.
pub(super) const BASE_MATCH_LENGTH: i32 = 3;
pub(super) const BASE_MATCH_OFFSET: i32 = 1;
pub(super) const MAX_MATCH_LENGTH: usize = 258;
pub(super) const MAX_MATCH_OFFSET: i32 = 1 << 15;
/// Largest stored block, and the size of the window Go's BestSpeed compresses at a time.
pub(super) const MAX_STORE_BLOCK_SIZE: usize = 65535;

pub(super) const END_BLOCK_MARKER: usize = 256;
pub(super) const LENGTH_CODES_START: usize = 257;
pub(super) const MAX_NUM_LIT: usize = 286;
pub(super) const OFFSET_CODE_COUNT: usize = 30;

pub(super) fn literal_token(b: u8) -> Token {
    b as u32
}

pub(super) fn match_token(xlength: u32, xoffset: u32) -> Token {
    MATCH_TYPE + (xlength << LENGTH_SHIFT) + xoffset
}

pub(super) fn token_length(t: Token) -> u32 {
    (t - MATCH_TYPE) >> LENGTH_SHIFT
}

pub(super) fn token_offset(t: Token) -> u32 {
    t & OFFSET_MASK
}

pub(super) const LENGTH_EXTRA_BITS: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];

/// Length minus 3 at which each length code starts.
pub(super) const LENGTH_BASE: [u32; 29] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192,
    224, 255,
];

pub(super) const OFFSET_EXTRA_BITS: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
];

/// Distance minus 1 at which each offset code starts.
pub(super) const OFFSET_BASE: [u32; 30] = [
    0x0000, 0x0001, 0x0002, 0x0003, 0x0004, 0x0006, 0x0008, 0x000c, 0x0010, 0x0018, 0x0020, 0x0030, 0x0040,
    0x0060, 0x0080, 0x00c0, 0x0100, 0x0180, 0x0200, 0x0300, 0x0400, 0x0600, 0x0800, 0x0c00, 0x1000, 0x1800,
    0x2000, 0x3000, 0x4000, 0x6000,
];

/// For each value below 256, the last code whose base does not exceed it.
const fn code_table(base: &[u32]) -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut v = 0;
    while v < 256 {
        let mut code = 0;
        while code + 1 < base.len() && base[code + 1] <= v as u32 {
            code += 1;
        }
        table[v] = code as u8;
        v += 1;
    }
    table
}

const LENGTH_CODES: [u8; 256] = code_table(&LENGTH_BASE);
const OFFSET_CODES: [u8; 256] = code_table(&OFFSET_BASE);

/// Length code (0..=28) of a length stored minus 3.
pub(super) fn length_code(xlength: u32) -> usize {
    LENGTH_CODES[xlength as usize] as usize
}

/// Offset code (0..=29) of a distance stored minus 1.
pub(super) fn offset_code(xoffset: u32) -> usize {
    if xoffset < 256 {
        OFFSET_CODES[xoffset as usize] as usize
    } else if xoffset >> 7 < 256 {
        OFFSET_CODES[(xoffset >> 7) as usize] as usize + 14
    } else {
        OFFSET_CODES[(xoffset >> 14) as usize] as usize + 28
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_tables_match_rfc1951() {
        // RFC 1951 3.2.5: lengths 3..=10 have codes 257..=264, 258 has 285, 257 has 284.
        assert_eq!(length_code(0), 0);
        assert_eq!(length_code(7), 7);
        assert_eq!(length_code(8), 8);
        assert_eq!(length_code(9), 8);
        assert_eq!(length_code(254), 27);
        assert_eq!(length_code(255), 28);
        // Distances 1..=4 are codes 0..=3; 5-6 code 4; 24577..=32768 code 29.
        assert_eq!(offset_code(3), 3);
        assert_eq!(offset_code(4), 4);
        assert_eq!(offset_code(5), 4);
        assert_eq!(offset_code(6), 5);
        assert_eq!(offset_code(255), 15);
        assert_eq!(offset_code(256), 16);
        assert_eq!(offset_code(24576), 29);
        assert_eq!(offset_code(32767), 29);
        for off in 0..32768u32 {
            let c = offset_code(off);
            assert!(OFFSET_BASE[c] <= off, "offset {off} code {c}");
            assert!(off - OFFSET_BASE[c] < 1 << OFFSET_EXTRA_BITS[c]);
        }
        for len in 0..256u32 {
            let c = length_code(len);
            assert!(LENGTH_BASE[c] <= len);
            assert!(len - LENGTH_BASE[c] < 1 << LENGTH_EXTRA_BITS[c] || c == 28);
        }
    }

    #[test]
    fn tokens_round_trip() {
        let t = match_token(255, 32767);
        assert!(t >= MATCH_TYPE);
        assert_eq!(token_length(t), 255);
        assert_eq!(token_offset(t), 32767);
        assert!(literal_token(255) < MATCH_TYPE);
    }
}
