//! A gzip writer that produces exactly the bytes of Go's `compress/gzip` at `BestSpeed`, as
//! imgpkg (through go-containerregistry) compresses layers, so that pkgr and imgpkg give the
//! same layer digests for the same input.
//!
//! The DEFLATE stream follows Go's algorithm step for step: the window loop
//! ([`deflate`]), the Snappy-style match finder ([`fast`]), the block writer that chooses
//! between stored, Huffman-only and dynamic blocks ([`block`]) and Go's length-limited Huffman
//! codes ([`huffman`]). Memory is constant: one 64 KiB window and one block of output.
mod block;
mod deflate;
mod fast;
mod huffman;
mod token;

#[cfg(test)]
mod tests;

use deflate::Compressor;
use std::io::{self, Write};

/// Go's gzip header at BestSpeed: no name or comment, mtime 0, XFL 4 (fastest), OS 255.
const HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x04, 0xff];

/// Gzip compression with Go's `gzip.NewWriterLevel(w, gzip.BestSpeed)` output.
///
/// Call [`GoGzipWriter::finish`] to end the stream; dropping the writer loses the tail.
/// `flush` passes through to the inner writer only: a DEFLATE sync flush would add a block
/// that Go's writer (never flushed by go-containerregistry) does not write, and change the
/// digest.
pub struct GoGzipWriter<W: Write> {
    inner: W,
    compressor: Box<Compressor>,
    crc: flate2::Crc,
    wrote_header: bool,
    /// Set after an error of the inner writer: the stream is broken, as in Go.
    failed: bool,
}

impl<W: Write> GoGzipWriter<W> {
    pub fn new(inner: W) -> Self {
        GoGzipWriter {
            inner,
            compressor: Box::new(Compressor::new()),
            crc: flate2::Crc::new(),
            wrote_header: false,
            failed: false,
        }
    }

    fn check(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(
                "the gzip stream is incomplete after an earlier write error; start the layer again",
            ));
        }
        Ok(())
    }

    fn drain(&mut self) -> io::Result<()> {
        let out = &mut self.compressor.writer.out;
        if out.is_empty() {
            return Ok(());
        }
        let result = self.inner.write_all(out);
        out.clear();
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn write_header(&mut self) {
        // Go writes the header on the first Write, so an empty stream gets one at Close.
        if !self.wrote_header {
            self.wrote_header = true;
            self.compressor.writer.out.extend_from_slice(&HEADER);
        }
    }

    /// End the stream (final block, CRC-32 and size trailer) and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.check()?;
        self.write_header();
        self.compressor.close();
        let out = &mut self.compressor.writer.out;
        out.extend_from_slice(&self.crc.sum().to_le_bytes());
        // ISIZE is the length modulo 2^32 (RFC 1952), as Go's uint32 counter wraps.
        out.extend_from_slice(&self.crc.amount().to_le_bytes());
        self.drain()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for GoGzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        self.write_header();
        self.crc.update(buf);
        let mut rest = buf;
        while !rest.is_empty() {
            let n = self.compressor.write_some(rest);
            rest = &rest[n..];
            self.drain()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.drain()?;
        self.inner.flush()
    }
}
