//! DEFLATE blocks written as Go's `huffmanBitWriter` writes them at BestSpeed: a dynamic
//! Huffman block, a Huffman-only block, or a stored block, whichever Go's size estimate picks.
//!
//! Output collects in `out`; the caller drains it after every block, so memory stays bounded
//! by one block.
use super::huffman::{Code, Encoder};
use super::token::{
    END_BLOCK_MARKER, LENGTH_BASE, LENGTH_CODES_START, LENGTH_EXTRA_BITS, MATCH_TYPE, MAX_NUM_LIT,
    MAX_STORE_BLOCK_SIZE, OFFSET_BASE, OFFSET_CODE_COUNT, OFFSET_EXTRA_BITS, Token, length_code, offset_code,
    token_length, token_offset,
};

const CODEGEN_CODE_COUNT: usize = 19;
/// Marks the end of the run-length encoded code lengths.
const BAD_CODE: u8 = 255;
/// The order RFC 1951 sends the code-length code lengths in.
const CODEGEN_ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

pub(super) struct BlockWriter {
    pub out: Vec<u8>,
    bits: u64,
    nbits: u32,
    literal_freq: [i32; MAX_NUM_LIT],
    offset_freq: [i32; OFFSET_CODE_COUNT],
    codegen: Vec<u8>,
    codegen_freq: [i32; CODEGEN_CODE_COUNT],
    literal_enc: Encoder,
    offset_enc: Encoder,
    codegen_enc: Encoder,
    /// The offset code of a Huffman-only block: one unused distance code of one bit.
    huff_offset: Encoder,
}

impl BlockWriter {
    pub fn new() -> Self {
        let mut huff_offset = Encoder::new(OFFSET_CODE_COUNT);
        let mut freq = [0i32; OFFSET_CODE_COUNT];
        freq[0] = 1;
        huff_offset.generate(&freq, 15);
        BlockWriter {
            out: Vec::with_capacity(MAX_STORE_BLOCK_SIZE + 1024),
            bits: 0,
            nbits: 0,
            literal_freq: [0; MAX_NUM_LIT],
            offset_freq: [0; OFFSET_CODE_COUNT],
            codegen: vec![0; MAX_NUM_LIT + OFFSET_CODE_COUNT + 1],
            codegen_freq: [0; CODEGEN_CODE_COUNT],
            literal_enc: Encoder::new(MAX_NUM_LIT),
            offset_enc: Encoder::new(OFFSET_CODE_COUNT),
            codegen_enc: Encoder::new(CODEGEN_CODE_COUNT),
            huff_offset,
        }
    }

    // Bits go out LSB first, whole 48-bit chunks at a time as in Go; only the byte sequence
    // matters, so the chunking is an implementation detail.
    #[inline]
    fn write_bits(&mut self, b: u32, nb: u32) {
        self.bits |= (b as u64) << self.nbits;
        self.nbits += nb;
        if self.nbits >= 48 {
            self.out.extend_from_slice(&self.bits.to_le_bytes()[..6]);
            self.bits >>= 48;
            self.nbits -= 48;
        }
    }

    #[inline]
    fn write_code(&mut self, c: Code) {
        self.write_bits(c.code as u32, c.len as u32);
    }

    /// Pad the pending bits with zeros to a byte boundary and move them to `out`.
    pub fn flush(&mut self) {
        while self.nbits > 0 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.nbits = self.nbits.saturating_sub(8);
        }
        self.bits = 0;
    }

    pub fn write_stored_header(&mut self, length: usize, eof: bool) {
        self.write_bits(eof as u32, 3);
        self.flush();
        self.write_bits(length as u32, 16);
        self.write_bits(!(length as u16) as u32, 16);
    }

    fn write_stored(&mut self, input: &[u8], eof: bool) {
        self.write_stored_header(input.len(), eof);
        // The header left 32 bits pending, a whole number of bytes.
        self.flush();
        self.out.extend_from_slice(input);
    }

    /// Go's `storedSize`: a stored block costs its bytes plus five header bytes.
    fn stored_size(input: &[u8]) -> Option<usize> {
        (input.len() <= MAX_STORE_BLOCK_SIZE).then_some((input.len() + 5) * 8)
    }

    /// Run-length encode the literal and offset code lengths (RFC 1951 codes 16, 17, 18) into
    /// `codegen`, counting each code-length symbol in `codegen_freq`.
    fn generate_codegen(&mut self, num_literals: usize, num_offsets: usize, huff_only: bool) {
        self.codegen_freq = [0; CODEGEN_CODE_COUNT];
        let offset_enc = if huff_only {
            &self.huff_offset
        } else {
            &self.offset_enc
        };
        let codegen = &mut self.codegen;
        for (slot, code) in codegen.iter_mut().zip(&self.literal_enc.codes[..num_literals]) {
            *slot = code.len as u8;
        }
        for (slot, code) in codegen[num_literals..]
            .iter_mut()
            .zip(&offset_enc.codes[..num_offsets])
        {
            *slot = code.len as u8;
        }
        codegen[num_literals + num_offsets] = BAD_CODE;

        // In place: the output index never overtakes the input index.
        let freq = &mut self.codegen_freq;
        let mut size = codegen[0];
        let mut count: i32 = 1;
        let mut out = 0;
        let mut in_index = 1;
        while size != BAD_CODE {
            let next_size = codegen[in_index];
            in_index += 1;
            if next_size == size {
                count += 1;
                continue;
            }
            if size != 0 {
                codegen[out] = size;
                out += 1;
                freq[size as usize] += 1;
                count -= 1;
                while count >= 3 {
                    let n = count.min(6);
                    codegen[out] = 16;
                    codegen[out + 1] = (n - 3) as u8;
                    out += 2;
                    freq[16] += 1;
                    count -= n;
                }
            } else {
                while count >= 11 {
                    let n = count.min(138);
                    codegen[out] = 18;
                    codegen[out + 1] = (n - 11) as u8;
                    out += 2;
                    freq[18] += 1;
                    count -= n;
                }
                if count >= 3 {
                    codegen[out] = 17;
                    codegen[out + 1] = (count - 3) as u8;
                    out += 2;
                    freq[17] += 1;
                    count = 0;
                }
            }
            count -= 1;
            while count >= 0 {
                codegen[out] = size;
                out += 1;
                freq[size as usize] += 1;
                count -= 1;
            }
            size = next_size;
            count = 1;
        }
        codegen[out] = BAD_CODE;
    }

    /// Size in bits of a dynamic block, and how many code-length code lengths it sends.
    fn dynamic_size(&self, huff_only: bool) -> (usize, usize) {
        let mut num_codegens = CODEGEN_CODE_COUNT;
        while num_codegens > 4 && self.codegen_freq[CODEGEN_ORDER[num_codegens - 1]] == 0 {
            num_codegens -= 1;
        }
        let header = 3
            + 5
            + 5
            + 4
            + 3 * num_codegens
            + self.codegen_enc.bit_length(&self.codegen_freq)
            + self.codegen_freq[16] as usize * 2
            + self.codegen_freq[17] as usize * 3
            + self.codegen_freq[18] as usize * 7;
        let offset_enc = if huff_only {
            &self.huff_offset
        } else {
            &self.offset_enc
        };
        let size = header
            + self.literal_enc.bit_length(&self.literal_freq)
            + offset_enc.bit_length(&self.offset_freq);
        (size, num_codegens)
    }

    fn write_dynamic_header(
        &mut self,
        num_literals: usize,
        num_offsets: usize,
        num_codegens: usize,
        eof: bool,
    ) {
        self.write_bits(if eof { 5 } else { 4 }, 3);
        self.write_bits((num_literals - 257) as u32, 5);
        self.write_bits((num_offsets - 1) as u32, 5);
        self.write_bits((num_codegens - 4) as u32, 4);
        for &symbol in &CODEGEN_ORDER[..num_codegens] {
            let len = self.codegen_enc.codes[symbol].len;
            self.write_bits(len as u32, 3);
        }
        let mut i = 0;
        loop {
            let code_word = self.codegen[i];
            i += 1;
            if code_word == BAD_CODE {
                break;
            }
            let code = self.codegen_enc.codes[code_word as usize];
            self.write_code(code);
            let extra = match code_word {
                16 => 2,
                17 => 3,
                18 => 7,
                _ => continue,
            };
            let value = self.codegen[i];
            i += 1;
            self.write_bits(value as u32, extra);
        }
    }

    /// Count symbol frequencies of `tokens` (which end with the end-of-block marker) and build
    /// the literal and offset codes. Returns how many literal and offset codes are sent.
    fn index_tokens(&mut self, tokens: &[Token]) -> (usize, usize) {
        self.literal_freq = [0; MAX_NUM_LIT];
        self.offset_freq = [0; OFFSET_CODE_COUNT];
        for &t in tokens {
            if t < MATCH_TYPE {
                self.literal_freq[t as usize] += 1;
            } else {
                self.literal_freq[LENGTH_CODES_START + length_code(token_length(t))] += 1;
                self.offset_freq[offset_code(token_offset(t))] += 1;
            }
        }
        let mut num_literals = MAX_NUM_LIT;
        while self.literal_freq[num_literals - 1] == 0 {
            num_literals -= 1;
        }
        let mut num_offsets = OFFSET_CODE_COUNT;
        while num_offsets > 0 && self.offset_freq[num_offsets - 1] == 0 {
            num_offsets -= 1;
        }
        if num_offsets == 0 {
            // A block needs at least one distance code, even if unused.
            self.offset_freq[0] = 1;
            num_offsets = 1;
        }
        self.literal_enc.generate(&self.literal_freq, 15);
        self.offset_enc.generate(&self.offset_freq, 15);
        (num_literals, num_offsets)
    }

    fn write_tokens(&mut self, tokens: &[Token]) {
        for &t in tokens {
            if t < MATCH_TYPE {
                let code = self.literal_enc.codes[t as usize];
                self.write_code(code);
                continue;
            }
            let length = token_length(t);
            let lc = length_code(length);
            let code = self.literal_enc.codes[lc + LENGTH_CODES_START];
            self.write_code(code);
            let extra = LENGTH_EXTRA_BITS[lc] as u32;
            if extra > 0 {
                self.write_bits(length - LENGTH_BASE[lc], extra);
            }
            let offset = token_offset(t);
            let oc = offset_code(offset);
            let code = self.offset_enc.codes[oc];
            self.write_code(code);
            let extra = OFFSET_EXTRA_BITS[oc] as u32;
            if extra > 0 {
                self.write_bits(offset - OFFSET_BASE[oc], extra);
            }
        }
    }

    /// Go's `writeBlockDynamic`: a dynamic block for `tokens`, or `input` stored when that is
    /// smaller than the dynamic size plus a sixteenth. `tokens` gets the end-of-block marker.
    pub fn write_block_dynamic(&mut self, tokens: &mut Vec<Token>, eof: bool, input: &[u8]) {
        tokens.push(END_BLOCK_MARKER as Token);
        let (num_literals, num_offsets) = self.index_tokens(tokens);
        self.generate_codegen(num_literals, num_offsets, false);
        self.codegen_enc.generate(&self.codegen_freq, 7);
        let (size, num_codegens) = self.dynamic_size(false);
        if Self::stored_size(input).is_some_and(|stored| stored < size + (size >> 4)) {
            self.write_stored(input, eof);
            return;
        }
        self.write_dynamic_header(num_literals, num_offsets, num_codegens, eof);
        self.write_tokens(tokens);
    }

    /// Go's `writeBlockHuff`: literals only, with a Huffman code over the byte histogram, or
    /// stored when that is smaller than the coded size plus a sixteenth.
    pub fn write_block_huff(&mut self, eof: bool, input: &[u8]) {
        self.literal_freq = [0; MAX_NUM_LIT];
        for &b in input {
            self.literal_freq[b as usize] += 1;
        }
        self.literal_freq[END_BLOCK_MARKER] = 1;
        let num_literals = END_BLOCK_MARKER + 1;
        // Go sets only the first entry; stale counts elsewhere meet zero-length codes.
        self.offset_freq[0] = 1;
        let num_offsets = 1;
        self.literal_enc.generate(&self.literal_freq, 15);
        self.generate_codegen(num_literals, num_offsets, true);
        self.codegen_enc.generate(&self.codegen_freq, 7);
        let (size, num_codegens) = self.dynamic_size(true);
        if Self::stored_size(input).is_some_and(|stored| stored < size + (size >> 4)) {
            self.write_stored(input, eof);
            return;
        }
        self.write_dynamic_header(num_literals, num_offsets, num_codegens, eof);
        for &b in input {
            let code = self.literal_enc.codes[b as usize];
            self.write_code(code);
        }
        let code = self.literal_enc.codes[END_BLOCK_MARKER];
        self.write_code(code);
    }
}
