//! Go's BestSpeed compressor loop (`deflate.go`: `write`, `encSpeed`, `close`): input fills a
//! 65535-byte window; a full window is compressed as one block when more input arrives or the
//! stream closes. Block boundaries fall at multiples of 65535 whatever the write sizes, which
//! is why many small writes and one large write give the same bytes.
use super::block::BlockWriter;
use super::fast::DeflateFast;
use super::token::{MAX_STORE_BLOCK_SIZE, Token};

pub(super) struct Compressor {
    window: Box<[u8]>,
    window_end: usize,
    tokens: Vec<Token>,
    fast: DeflateFast,
    pub writer: BlockWriter,
}

impl Compressor {
    pub fn new() -> Self {
        Compressor {
            window: vec![0; MAX_STORE_BLOCK_SIZE].into_boxed_slice(),
            window_end: 0,
            tokens: Vec::with_capacity(MAX_STORE_BLOCK_SIZE + 1),
            fast: DeflateFast::new(),
            writer: BlockWriter::new(),
        }
    }

    #[cfg(test)]
    pub fn fast_mut(&mut self) -> &mut DeflateFast {
        &mut self.fast
    }

    /// Take as much of `b` as fits, compressing the window first if it is full. Returns the
    /// number of bytes taken; compressed bytes collect in `self.writer.out`.
    pub fn write_some(&mut self, b: &[u8]) -> usize {
        self.enc_speed(false);
        let n = b.len().min(MAX_STORE_BLOCK_SIZE - self.window_end);
        self.window[self.window_end..self.window_end + n].copy_from_slice(&b[..n]);
        self.window_end += n;
        n
    }

    /// Compress what remains and write the final empty stored block, byte-aligned.
    pub fn close(&mut self) {
        self.enc_speed(true);
        self.writer.write_stored_header(0, true);
        self.writer.flush();
    }

    fn enc_speed(&mut self, sync: bool) {
        let input = &self.window[..self.window_end];
        if self.window_end < MAX_STORE_BLOCK_SIZE {
            if !sync {
                return;
            }
            // A short final window: too small for the match finder to pay off.
            if self.window_end < 128 {
                match self.window_end {
                    0 => return,
                    1..=16 => {
                        self.writer.write_stored_header(input.len(), false);
                        self.writer.flush();
                        self.writer.out.extend_from_slice(input);
                    }
                    _ => self.writer.write_block_huff(false, input),
                }
                self.window_end = 0;
                self.fast.reset();
                return;
            }
        }
        self.tokens.clear();
        self.fast.encode(&mut self.tokens, input);
        // Mostly literals: a Huffman-only block is as good and cheaper.
        if self.tokens.len() > self.window_end - (self.window_end >> 4) {
            self.writer.write_block_huff(false, input);
        } else {
            self.writer.write_block_dynamic(&mut self.tokens, false, input);
        }
        self.window_end = 0;
    }
}
